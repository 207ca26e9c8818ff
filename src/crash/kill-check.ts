import fs from 'node:fs'
import type { DaxKV } from '../db.js'
import { open } from '../open.js'
import type { ModeRequest } from '../platform/daxfile.js'
import { KILL_DB_OPTIONS, KILL_SHAPE } from './kill-settings.js'
import { applyStep, candidateStates, firstDifference, judge, type Judgement, type State } from './model.js'
import { makeWorkload, type Step } from './workload.js'

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
