import fs from 'node:fs'
import path from 'node:path'
import type { ModeRequest } from '../platform/daxfile.js'
import { checkRecovered, readAckLog, type RoundCheck } from './kill-check.js'
import { runKillChild, type ChildRun } from './kill-runner.js'
import type { State } from './model.js'
import { Random } from './random.js'

/** Options of {@link runKillCampaign}; see docs/crash-testing.md. */
export interface KillCampaignOptions {
  /** Directory for the daxfile and acknowledgement file (created if missing). */
  readonly dir: string
  readonly rounds: number
  readonly seed: number
  /** Durability mode of the child and of the reopen. Default `'msync'`. */
  readonly mode?: ModeRequest
  /** Steps one child may run before it stops on its own. Default KILL_STEPS_MAX (kill-settings.ts). */
  readonly stepsPerRoundMax?: number
  /** Size of each daxfile. Default KILL_FILE_BYTES (kill-settings.ts). */
  readonly fileBytes?: number
  /** Longest wait between the child's `ready` and the kill. Default 40 ms. */
  readonly delayMsMax?: number
  /** Stop after this many violations. Default 5. */
  readonly maxViolations?: number
  /** Called after each round. */
  readonly onProgress?: (roundsDone: number, result: KillCampaignResult) => void
}

/** One broken invariant found after a kill. */
export interface KillViolation {
  readonly seed: number
  readonly mode: ModeRequest
  readonly round: number
  /** First workload step of the round's child. */
  readonly firstIndex: number
  readonly acknowledged: number
  /** Steps issued but not acknowledged when the child died. */
  readonly inFlight: readonly number[]
  readonly invariant: string
  readonly explanation: string
  /** Copies of the daxfile as the killed child left it (before recovery) and of the acknowledgement file. */
  readonly keptFiles: readonly string[]
}

export interface KillCampaignResult {
  readonly seed: number
  readonly mode: ModeRequest
  rounds: number
  /** Rounds that ended with the SIGKILL (the others ran out of steps or space first). */
  roundsKilled: number
  /** Rounds whose child died with at least one step in flight. */
  roundsInterrupted: number
  /** Daxfiles used: a fresh one starts whenever the previous one is full. */
  files: number
  stepsIssued: number
  stepsAcknowledged: number
  /** In-flight steps the recovered state shows as applied, and as not applied. */
  inFlightApplied: number
  inFlightNotApplied: number
  /** Reopens that loaded the index checkpoint of the previous clean close (the log was unchanged) rather than replaying the log. */
  reopensFromCheckpoint: number
  readonly violations: KillViolation[]
  durationMs: number
}

/**
 * The process-kill campaign: per round, a child process runs the workload
 * against a real daxfile through the public API and is SIGKILLed after a
 * seeded random delay; the parent then reopens the file, which runs
 * recovery, and checks that it holds every acknowledged write, and of the
 * steps in flight only a prefix in issue order, and that verify() passes.
 * The recovered state is the base of the next round. A killed process
 * loses nothing the kernel already holds, so this exercises recovery from
 * torn batches in the page cache, not power loss (docs/crash-testing.md).
 */
export async function runKillCampaign(options: KillCampaignOptions): Promise<KillCampaignResult> {
  const started = performance.now()
  const { dir, seed } = options
  const mode = options.mode ?? 'msync'
  const delayMsMax = options.delayMsMax ?? 40
  const maxViolations = options.maxViolations ?? 5
  const result: KillCampaignResult = {
    seed,
    mode,
    rounds: 0,
    roundsKilled: 0,
    roundsInterrupted: 0,
    files: 0,
    stepsIssued: 0,
    stepsAcknowledged: 0,
    inFlightApplied: 0,
    inFlightNotApplied: 0,
    reopensFromCheckpoint: 0,
    violations: [],
    durationMs: 0,
  }
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, 'kill.dax')
  const ackFile = path.join(dir, 'kill.acks')
  const beforeCheck = path.join(dir, 'kill-before-check.dax')
  const random = new Random(seed ^ 0x1b873593)
  let base: State = new Map()
  let fresh = true
  let firstIndex = 0
  for (let round = 0; round < options.rounds && result.violations.length < maxViolations; round++) {
    if (fresh) {
      fs.rmSync(file, { force: true })
      base = new Map()
      result.files++
      fresh = false
    }
    fs.writeFileSync(ackFile, '')
    // Some rounds are killed at once, so kills also land in the first steps after recovery.
    const delayMs = random.chance(0.15) ? 0 : random.int(0, delayMsMax)
    const run = await runKillChild({
      file,
      ackFile,
      seed,
      firstIndex,
      mode,
      delayMs,
      ...(options.stepsPerRoundMax === undefined ? {} : { stepsMax: options.stepsPerRoundMax }),
      ...(options.fileBytes === undefined ? {} : { fileBytes: options.fileBytes }),
    })
    const acks = readAckLog(ackFile)
    // Recovery rewrites the tail the kill left; keep the file as it was, in
    // case the check fails and someone wants to look at it.
    if (fs.existsSync(file)) fs.copyFileSync(file, beforeCheck)
    else fs.rmSync(beforeCheck, { force: true })
    const childFailure = run.ended === 'failed' ? `the child failed: ${firstLine(run.stderr)}` : undefined
    const check: RoundCheck = childFailure !== undefined && !fs.existsSync(file)
      ? { state: undefined, acknowledged: 0, inFlight: [], applied: -1, problem: { invariant: '(4) the store opens', explanation: childFailure }, fromCheckpoint: false }
      : await checkRecovered({ file, mode, seed, base, acks })
    result.rounds++
    if (run.ended === 'killed') result.roundsKilled++
    if (check.inFlight.length > 0) result.roundsInterrupted++
    if (check.fromCheckpoint) result.reopensFromCheckpoint++
    result.stepsIssued += acks.issued.length
    result.stepsAcknowledged += check.acknowledged
    if (check.applied >= 0) {
      result.inFlightApplied += check.applied
      result.inFlightNotApplied += check.inFlight.length - check.applied
    }
    const problem = check.problem ?? (childFailure === undefined ? undefined : { invariant: '(4) the store opens and accepts writes', explanation: childFailure })
    if (problem !== undefined) {
      const keptFiles = keepForInspection(beforeCheck, ackFile, round)
      const steps = acks.issued.length > 0 ? `steps ${firstIndex}..${Math.max(...acks.issued)}` : 'no step issued'
      result.violations.push({
        seed,
        mode,
        round,
        firstIndex,
        acknowledged: check.acknowledged,
        inFlight: check.inFlight,
        invariant: problem.invariant,
        explanation: `round ${round} (${steps}, ${howItEnded(run, delayMs)}, in flight: ${check.inFlight.join(', ') || 'none'}): ${problem.explanation}`,
        keptFiles,
      })
    }
    // The next child continues the workload after every step issued so far,
    // on the recovered state; a full, failed or unreadable file is replaced.
    if (acks.issued.length > 0) firstIndex = Math.max(firstIndex, Math.max(...acks.issued) + 1)
    if (check.state === undefined || run.ended === 'full' || run.ended === 'failed') fresh = true
    else base = check.state
    options.onProgress?.(result.rounds, result)
  }
  for (const f of [file, ackFile, beforeCheck]) for (const leftover of [f, `${f}.index`]) fs.rmSync(leftover, { force: true })
  result.durationMs = performance.now() - started
  return result
}

function howItEnded(run: ChildRun, delayMs: number): string {
  if (run.ended === 'killed') return `killed ${delayMs} ms after ready`
  return run.ended === 'failed' ? 'the child failed' : `the child stopped on its own (${run.ended})`
}

/** The first line of a child's error output that says something (node's own stack lines come after it). */
function firstLine(stderr: string): string {
  return stderr.split('\n').find((line) => line.trim() !== '')?.trim() ?? '(no error output)'
}

/** Copies the daxfile as the child left it and the acknowledgement file aside, so a violation can be examined later. */
function keepForInspection(file: string, ackFile: string, round: number): string[] {
  const kept: string[] = []
  for (const [from, suffix] of [[file, 'dax'], [ackFile, 'acks']] as const) {
    const to = path.join(path.dirname(file), `violation-round-${round}.${suffix}`)
    try {
      fs.copyFileSync(from, to)
      kept.push(to)
    } catch {
      // A file that does not exist (the child died before creating it) has nothing to keep.
    }
  }
  return kept
}

