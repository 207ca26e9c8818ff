import { describeValue, type Step } from './workload.js'

/**
 * The model of the crash campaigns: what a store may hold after a crash,
 * given the writes it acknowledged and the writes still in flight. Both the
 * simulated power-failure campaign and the process-kill campaign judge a
 * recovered state with it, so they agree on what counts as a violation.
 */

/** Keys and their values (bytes), as a recovered store holds them. */
export type State = Map<string, Buffer>

/** A state that failed the check: which invariant broke and why, in words. */
export interface Judgement {
  readonly invariant: string
  readonly explanation: string
}

/** Applies one step's changes to `state` in place. */
export function applyStep(state: State, step: Step): void {
  for (const [key, value] of step.changes) {
    if (value === undefined) state.delete(key)
    else state.set(key, value)
  }
}

/**
 * The acknowledged state plus each prefix of the in-flight steps, in issue
 * order. The store commits units in the order they were issued, so a crash
 * can only leave a prefix of the in-flight steps applied, never a gap.
 */
export function candidateStates(acked: State, inFlight: readonly Step[]): State[] {
  const out: State[] = [acked]
  let state = acked
  for (const step of inFlight) {
    state = new Map(state)
    applyStep(state, step)
    out.push(state)
  }
  return out
}

/** Index of the first candidate equal to `state`, or -1 when none is. */
export function matchingCandidate(state: State, candidates: readonly State[]): number {
  return candidates.findIndex((c) => firstDifference(c, state) === undefined)
}

/**
 * Undefined when `state` is one of the candidates; otherwise which
 * invariant fails and why. A key whose value is none of the allowed ones is
 * a lost acknowledged write (absent, or a value some step wrote) or a torn
 * value (bytes no step wrote); when every key holds an allowed value but the
 * combination is not a prefix, a batch was applied in part.
 */
export function judge(state: State, acked: State, inFlight: readonly Step[], candidates: readonly State[]): Judgement | undefined {
  if (matchingCandidate(state, candidates) >= 0) return undefined
  const keys = new Set([...acked.keys(), ...state.keys(), ...inFlight.flatMap((s) => s.changes.map(([k]) => k))])
  for (const key of keys) {
    const actual = state.get(key)
    const allowed = [acked.get(key), ...inFlight.flatMap((s) => s.changes.filter(([k]) => k === key).map(([, v]) => v))]
    if (allowed.some((v) => sameValue(v, actual))) continue
    const writers = inFlight.filter((s) => s.changes.some(([k]) => k === key)).map((s) => s.index)
    const expected = `${describeValue(acked.get(key))} (acknowledged)` + (writers.length > 0 ? ` or a value of in-flight step(s) ${writers.join(', ')}` : '')
    // An absent key, an empty value or a value some step wrote is an older
    // version: a lost write. Bytes no step wrote are a torn value.
    const lost = actual === undefined || actual.length === 0 || /written by step/.test(describeValue(actual))
    return {
      invariant: lost ? '(1) every acknowledged write is present' : '(3) no value is torn',
      explanation: `key ${JSON.stringify(key.slice(0, 24))}: expected ${expected}, read ${describeValue(actual)}`,
    }
  }
  return {
    invariant: '(2) every batch is all-or-nothing',
    explanation: `each key holds an allowed value, but no prefix of the in-flight steps ${inFlight.map((s) => s.index).join(', ')} gives this state`,
  }
}

export function sameValue(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b)
}

/** The first key where two states differ, described for a report; undefined when equal. */
export function firstDifference(a: State, b: State): string | undefined {
  for (const [key, value] of a) if (!sameValue(value, b.get(key))) return `key ${JSON.stringify(key.slice(0, 24))}: ${describeValue(value)} vs ${describeValue(b.get(key))}`
  for (const key of b.keys()) if (!a.has(key)) return `key ${JSON.stringify(key.slice(0, 24))}: absent vs ${describeValue(b.get(key))}`
  return undefined
}
