import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { open, type DaxKV } from '../db.js'
import type { ModeRequest } from '../platform/daxfile.js'
import { applyStep, candidateStates, firstDifference, judge, type Judgement, type State } from './model.js'
import { Random } from './random.js'
import { makeWorkload, type Step, type WorkloadShape } from './workload.js'

/** Store options of the child and of the parent's reopen; they must agree. */
/** Background index checkpoints every 128 KiB of log, so kills also land while one is being taken or written. */
export const KILL_DB_OPTIONS = { valueEncoding: 'binary', cacheSize: 0, segmentSize: 64 * 1024, checkpointInterval: 128 * 1024 } as const
/** The daxfile of a kill campaign: a few MiB, so a fresh one is cheap to make. */
export const KILL_FILE_BYTES = 4 * 1024 * 1024
/**
 * The child's file may grow to this size (growth is one of the things a
 * kill should interrupt), and no further: a child that reaches it stops
 * with `full` and the next round starts a fresh file.
 */
export const KILL_FILE_BYTES_MAX = 16 * 1024 * 1024
/**
 * The workload mix; the child and the parent generate the same steps from
 * it. A few full compactions join the background cleaning, so kills also
 * land inside compact().
 */
export const KILL_SHAPE: Partial<WorkloadShape> = { compactRatio: 0.02 }
/** Steps one child runs at most before it stops on its own. */
export const KILL_STEPS_MAX = 3000

/** Options of {@link runKillCampaign}; see docs/crash-testing.md. */
export interface KillCampaignOptions {
  /** Directory for the daxfile and acknowledgement file (created if missing). */
  readonly dir: string
  readonly rounds: number
  readonly seed: number
  /** Durability mode of the child and of the reopen. Default `'msync'`. */
  readonly mode?: ModeRequest
  /** Steps one child may run before it stops on its own. Default {@link KILL_STEPS_MAX}. */
  readonly stepsPerRoundMax?: number
  /** Size of each daxfile. Default {@link KILL_FILE_BYTES}. */
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

/** How a child run ended. */
export interface ChildRun {
  /** `killed` by the parent, stopped on its own (`full`, `done`), or `failed` (exited with an error). */
  readonly ended: 'killed' | 'full' | 'done' | 'failed'
  readonly stderr: string
}

/** What the acknowledgement file says; indices in the order they appear. */
export interface AckLog {
  readonly issued: readonly number[]
  readonly acknowledged: ReadonlySet<number>
  readonly refused: ReadonlySet<number>
}

/** The recovered state of a daxfile checked against the model. */
export interface RoundCheck {
  /** The recovered state, or undefined when the store did not open. */
  readonly state: State | undefined
  readonly acknowledged: number
  readonly inFlight: readonly number[]
  /** How many in-flight steps the recovered state has applied (-1 when it matches no allowed state). */
  readonly applied: number
  readonly problem: Judgement | undefined
  /** Whether the reopen loaded the index checkpoint (the child died before changing the log) instead of replaying the log. */
  readonly fromCheckpoint: boolean
}

const READY_TIMEOUT_MS = 30_000
const STDERR_BYTES_MAX = 8192

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
  for (const f of [file, ackFile, beforeCheck]) fs.rmSync(f, { force: true })
  result.durationMs = performance.now() - started
  return result
}

/** One child run: what to run, and when to kill it. */
export interface ChildInput {
  readonly file: string
  readonly ackFile: string
  readonly seed: number
  readonly firstIndex: number
  readonly mode: ModeRequest
  /** Time between the child's `ready` and the SIGKILL. */
  readonly delayMs: number
  readonly stepsMax?: number
  readonly fileBytes?: number
}

/**
 * Starts the child, waits for `ready`, waits `delayMs`, SIGKILLs it and
 * waits for it to exit. A child that stops on its own first (full, done or
 * failed) is reported as such.
 */
export async function runKillChild(input: ChildInput): Promise<ChildRun> {
  const script = childScript()
  const child = spawn(
    process.execPath,
    [
      script,
      '--file', input.file,
      '--acks', input.ackFile,
      '--seed', String(input.seed),
      '--first', String(input.firstIndex),
      '--mode', input.mode,
      '--size', String(input.fileBytes ?? KILL_FILE_BYTES),
      '--steps', String(input.stepsMax ?? KILL_STEPS_MAX),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  let killed = false
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', () => resolve())
  })
  let onReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => (onReady = resolve))
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    if (/^ready$/m.test(stdout)) onReady()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < STDERR_BYTES_MAX) stderr += chunk
  })
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), READY_TIMEOUT_MS)))
  const first = await Promise.race([ready.then(() => 'ready' as const), exited.then(() => 'exited' as const), timeout])
  clearTimeout(timer)
  if (first === 'timeout') {
    child.kill('SIGKILL')
    await exited
    return { ended: 'failed', stderr: `the child did not report ready within ${READY_TIMEOUT_MS} ms\n${stderr}` }
  }
  if (first === 'ready') {
    if (input.delayMs > 0) {
      let delay: NodeJS.Timeout | undefined
      await Promise.race([exited, new Promise((resolve) => (delay = setTimeout(resolve, input.delayMs)))])
      clearTimeout(delay)
    }
    if (child.exitCode === null && child.signalCode === null) killed = child.kill('SIGKILL')
  }
  await exited
  if (killed && child.signalCode === 'SIGKILL') return { ended: 'killed', stderr }
  if (child.exitCode === 0 && /^full$/m.test(stdout)) return { ended: 'full', stderr }
  if (child.exitCode === 0 && /^done$/m.test(stdout)) return { ended: 'done', stderr }
  return { ended: 'failed', stderr: stderr === '' ? `the child exited with ${child.exitCode ?? child.signalCode}` : stderr }
}

/**
 * Reads an acknowledgement file. A last line without its newline was cut
 * short by the kill and is ignored: for an intent, the step had not been
 * issued yet; for an acknowledgement, treating the step as in flight is
 * the weaker claim.
 */
export function readAckLog(ackFile: string): AckLog {
  const text = fs.readFileSync(ackFile, 'utf8')
  const complete = text.slice(0, text.lastIndexOf('\n') + 1)
  const issued: number[] = []
  const acknowledged = new Set<number>()
  const refused = new Set<number>()
  for (const line of complete.split('\n')) {
    if (line === '') continue
    const match = /^([IAR]) (\d+)$/.exec(line)
    if (match === null) throw new Error(`${ackFile}: malformed line ${JSON.stringify(line)}`)
    const index = Number(match[2])
    if (match[1] === 'I') issued.push(index)
    else if (match[1] === 'A') acknowledged.add(index)
    else refused.add(index)
  }
  return { issued, acknowledged, refused }
}

/**
 * Reopens the daxfile (which runs recovery) and checks it against the
 * model: the state must be the base with every acknowledged step applied
 * plus a prefix of the in-flight steps in issue order, and verify() must
 * pass. The caller guarantees the file is not open elsewhere.
 */
export async function checkRecovered(input: {
  readonly file: string
  readonly mode: ModeRequest
  readonly seed: number
  readonly base: State
  readonly acks: AckLog
}): Promise<RoundCheck> {
  const { acks } = input
  const steps = stepsOf(input.seed, [...acks.issued, ...acks.acknowledged])
  const sorted = (indices: Iterable<number>): Step[] => [...new Set(indices)].sort((a, b) => a - b).map((i) => steps.get(i)!)
  const ackedSteps = sorted(acks.acknowledged)
  const inFlight = sorted(acks.issued.filter((i) => !acks.acknowledged.has(i) && !acks.refused.has(i)))
  const acked: State = new Map(input.base)
  for (const step of ackedSteps) applyStep(acked, step)
  const inFlightIndices = inFlight.map((s) => s.index)
  let fromCheckpoint = false
  const outcome = (state: State | undefined, applied: number, problem: Judgement | undefined): RoundCheck => ({
    state,
    acknowledged: ackedSteps.length,
    inFlight: inFlightIndices,
    applied,
    problem,
    fromCheckpoint,
  })
  let db: DaxKV<Buffer>
  try {
    // No background compaction: the check should find the file as recovery left it.
    db = await open<Buffer>(input.file, { ...KILL_DB_OPTIONS, mode: input.mode, create: false, backgroundCompaction: false })
    fromCheckpoint = db.recovery.source === 'checkpoint'
  } catch (error) {
    return outcome(undefined, -1, { invariant: '(4) the store opens', explanation: `reopening after the kill threw: ${String(error)}` })
  }
  try {
    const state: State = new Map()
    for (const [key, value] of db.range()) state.set(key as string, value)
    const candidates = candidateStates(acked, inFlight)
    // Several prefixes can give the same state (a step may rewrite a value
    // already there); count the longest one as applied.
    let applied = candidates.length - 1
    while (applied >= 0 && firstDifference(candidates[applied]!, state) !== undefined) applied--
    const problem = applied >= 0 ? undefined : judge(state, acked, inFlight, candidates)
    if (problem !== undefined) return outcome(state, applied, problem)
    const verify = db.verify()
    if (!verify.ok) return outcome(state, applied, { invariant: '(4) the store verifies', explanation: verify.problems.join('; ') })
    return outcome(state, applied, undefined)
  } finally {
    await db.close()
  }
}

/** The workload steps with the given indices, generated from the seed. */
function stepsOf(seed: number, indices: readonly number[]): Map<number, Step> {
  const out = new Map<number, Step>()
  if (indices.length === 0) return out
  const lo = Math.min(...indices)
  const hi = Math.max(...indices)
  for (const step of makeWorkload(seed, hi - lo + 1, KILL_SHAPE, lo)) out.set(step.index, step)
  return out
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

/**
 * The compiled child script. From dist/ it sits next to this module; under
 * vitest this module runs from src/, and the child must still run as plain
 * JavaScript, so it points to the build in dist/ (the test setup builds it).
 */
export function childScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const script = import.meta.url.endsWith('.ts')
    ? path.resolve(here, '../../dist/crash/kill-child.js')
    : path.join(here, 'kill-child.js')
  if (!fs.existsSync(script)) throw new Error(`the kill campaign's child ${script} does not exist; build first (npm run build)`)
  return script
}
