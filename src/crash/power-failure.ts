import type { DaxKV } from '../db.js'
import { native } from '../platform/native.js'
import { SimulatedDomain, type SimulatedGranularity } from '../platform/simulated-domain.js'
import { withCommitFault, type CommitFault } from './broken-commits.js'
import { openOnDomain } from './open-on-domain.js'
import { Random } from './random.js'
import { applyStep, candidateStates, firstDifference, judge, type State } from './model.js'
import { makeWorkload, runStepAsync, runStepSync, type Step, type WorkloadShape } from './workload.js'

/** Options of a simulated power-failure campaign; see docs/crash-testing.md. */
export interface PowerFailureOptions {
  readonly seed: number
  /** Workload steps (puts, deletes, batches). */
  readonly steps: number
  /** 'cache-line' simulates DAX persistent memory, 'page' simulates msync on a disk. */
  readonly granularity: SimulatedGranularity
  /** Crash images enumerated exhaustively while this many units or fewer are pending. */
  readonly exhaustiveUnits?: number
  /** Crash images sampled at random per crash point beyond that. */
  readonly samplesPerPoint?: number
  readonly fileBytes?: number
  readonly segmentBytes?: number
  /** Let the simulated file grow (autoGrow) up to this size; default: no growth. */
  readonly maxFileBytes?: number
  readonly shape?: Partial<WorkloadShape>
  /** Also crash during recovery (while it zeroes a torn tail) and recover again. */
  readonly recoveryCrashes?: boolean
  /** Stop after this many violations. */
  readonly maxViolations?: number
  /** Called after each workload step. */
  readonly onProgress?: (stepsDone: number, result: PowerFailureResult) => void
  /** Receives a sample of crash images (one in `imageSampleEvery`), e.g. to open them as real files. */
  readonly onImage?: (image: Buffer, expect: (state: ReadonlyMap<string, Buffer>) => string | undefined) => void
  readonly imageSampleEvery?: number
  /** Break the workload's commits this way (a negative control: the campaign must then report violations). */
  readonly fault?: CommitFault
}

/** One broken invariant, with enough context to replay and understand it. */
export interface Violation {
  readonly seed: number
  readonly granularity: SimulatedGranularity
  /** The crash point: the n-th store/flush/drain event of the workload. */
  readonly event: number
  readonly eventKind: string
  /** Workload steps in flight at the crash (not yet acknowledged). */
  readonly inFlight: readonly number[]
  /** Which pending units reached the media in this image. */
  readonly image: string
  readonly invariant: string
  readonly explanation: string
}

export interface PowerFailureResult {
  readonly seed: number
  readonly granularity: SimulatedGranularity
  stepsRun: number
  crashPoints: number
  images: number
  recoveries: number
  recoveryCrashImages: number
  /** What the workload itself did to the file: segments cleaned, growths, tombstones dropped. */
  compactions: number
  growths: number
  tombstonesDropped: number
  readonly violations: Violation[]
  durationMs: number
}


interface Recovered {
  readonly state: State
  readonly problem: { invariant: string; explanation: string } | undefined
}

const DB_OPTIONS = { valueEncoding: 'binary', cacheSize: 0 } as const
const PROBE_KEY = '\u0001probe'

/**
 * Drives a seeded workload through the simulated persistence domain and, at
 * every store, flush and drain event, builds the images a power failure
 * could leave (everything durable plus any subset of the pending units),
 * recovers each, and checks the invariants of docs/crash-testing.md:
 * (1) every acknowledged write is present with its exact value; (2) every
 * batch is all-or-nothing; (3) no value is torn; (4) the store opens,
 * verifies and accepts writes; (5) recovering an image twice gives the same
 * state, also after a crash during recovery. On cache-line hardware it also
 * checks the ordering the protocol promises: no batch's marker is durable
 * before its data.
 */
export async function runPowerFailureCampaign(options: PowerFailureOptions): Promise<PowerFailureResult> {
  const started = performance.now()
  const { seed, granularity } = options
  const exhaustiveUnits = options.exhaustiveUnits ?? 8
  const samples = options.samplesPerPoint ?? 6
  const maxViolations = options.maxViolations ?? 5
  const sampleEvery = options.imageSampleEvery ?? 50
  const dbOptions = {
    ...DB_OPTIONS,
    segmentSize: options.segmentBytes ?? 64 * 1024,
    autoGrow: options.maxFileBytes !== undefined,
    backgroundCompaction: false,
    ...(options.maxFileBytes === undefined ? {} : { maxSize: options.maxFileBytes }),
  }
  const result: PowerFailureResult = {
    seed,
    granularity,
    stepsRun: 0,
    crashPoints: 0,
    images: 0,
    recoveries: 0,
    recoveryCrashImages: 0,
    compactions: 0,
    growths: 0,
    tombstonesDropped: 0,
    violations: [],
    durationMs: 0,
  }
  const random = new Random(seed ^ 0x2545f491)
  const domain = new SimulatedDomain(options.fileBytes ?? 512 * 1024, granularity)
  const faulty = options.fault === undefined ? { domain } : withCommitFault(options.fault, domain)
  const db = openOnDomain<Buffer>(faulty.domain, dbOptions, '(simulated)', faulty.commit === undefined ? {} : { commit: faulty.commit })
  const acked: State = new Map()
  const inFlight: Step[] = []
  const recoveredByImage = new Map<string, Recovered>()
  let event = 0

  const recoverImage = (image: Buffer): Recovered => {
    result.recoveries++
    let reopened: DaxKV<Buffer>
    let recoveryDomain: SimulatedDomain
    const captured: Buffer[] = []
    try {
      recoveryDomain = SimulatedDomain.fromImage(image, granularity)
      if (options.recoveryCrashes !== false) {
        // Crash points inside recovery: images its own writes could leave,
        // a seeded sample of at most `samples` per recovery (reservoir).
        let seen = 0
        recoveryDomain.onEvent = () => {
          for (const img of imagesOf(recoveryDomain, random, exhaustiveUnits, samples)) {
            seen++
            if (captured.length < samples) captured.push(img.image)
            else if (random.next() * seen < samples) captured[random.int(0, samples - 1)] = img.image
          }
        }
      }
      reopened = openOnDomain<Buffer>(recoveryDomain, dbOptions)
      recoveryDomain.onEvent = undefined
    } catch (error) {
      return { state: new Map(), problem: { invariant: '(4) the store opens', explanation: `recovery threw: ${String(error)}` } }
    }
    const state = stateOf(reopened)
    const torn = reopened.recovery.tornTail
    if (granularity === 'cache-line' && torn !== undefined && torn.reason !== 'marker' && torn.reason !== 'zero') {
      return {
        state,
        problem: {
          invariant: 'ordering: a marker is durable only after its batch',
          explanation: `batch at offset ${torn.offset} has a durable commit marker but its ${torn.reason} check fails: the marker reached the media before the data`,
        },
      }
    }
    const verify = reopened.verify()
    if (!verify.ok) return { state, problem: { invariant: '(4) the store verifies', explanation: verify.problems.join('; ') } }
    try {
      reopened.putSync(PROBE_KEY, Buffer.from('probe'))
      if (reopened.get(PROBE_KEY)?.toString() !== 'probe') throw new Error('probe value did not read back')
    } catch (error) {
      return { state, problem: { invariant: '(4) the store accepts writes', explanation: String(error) } }
    }
    let again: State
    try {
      again = stateOf(openOnDomain<Buffer>(SimulatedDomain.fromImage(image, granularity), dbOptions))
    } catch (error) {
      return { state, problem: { invariant: '(5) recovery is repeatable', explanation: `second recovery threw: ${String(error)}` } }
    }
    const diff = firstDifference(state, again)
    if (diff !== undefined) return { state, problem: { invariant: '(5) recovery is repeatable', explanation: `second recovery differs: ${diff}` } }
    for (const crashed of captured) {
      result.recoveryCrashImages++
      let after: State
      try {
        after = stateOf(openOnDomain<Buffer>(SimulatedDomain.fromImage(crashed, granularity), dbOptions))
      } catch (error) {
        return { state, problem: { invariant: '(5) a crash during recovery is harmless', explanation: `recovery after a crash in recovery threw: ${String(error)}` } }
      }
      const d = firstDifference(state, after)
      if (d !== undefined) return { state, problem: { invariant: '(5) a crash during recovery is harmless', explanation: d } }
    }
    return { state, problem: undefined }
  }

  const checkPoint = (eventKind: string): void => {
    if (result.violations.length >= maxViolations) return
    result.crashPoints++
    const candidates = candidateStates(acked, inFlight)
    for (const { image, description } of imagesOf(domain, random, exhaustiveUnits, samples)) {
      result.images++
      const key = imageKey(image)
      let recovered = recoveredByImage.get(key)
      if (recovered === undefined) {
        recovered = recoverImage(image)
        recoveredByImage.set(key, recovered)
      }
      const problem = recovered.problem ?? judge(recovered.state, acked, inFlight, candidates)
      if (options.onImage !== undefined && result.images % sampleEvery === 0) {
        options.onImage(image, (state) => judge(new Map(state), acked, inFlight, candidates)?.explanation)
      }
      if (problem !== undefined) {
        result.violations.push({
          seed,
          granularity,
          event,
          eventKind,
          inFlight: inFlight.map((s) => s.index),
          image: description,
          ...problem,
        })
        if (result.violations.length >= maxViolations) return
      }
    }
  }

  domain.onEvent = (kind) => {
    event++
    checkPoint(kind)
  }
  const steps = makeWorkload(seed, options.steps, options.shape)
  for (let i = 0; i < steps.length && result.violations.length < maxViolations; ) {
    const step = steps[i]!
    if (step.kind === 'compact') {
      await db.compact()
      i++
    } else if (step.sync) {
      inFlight.push(step)
      runStepSync(db, step)
      acknowledge(acked, inFlight, step)
      i++
    } else {
      // Consecutive promise-API steps go out in one tick: one group commit.
      const group: Step[] = []
      while (i < steps.length && !steps[i]!.sync && steps[i]!.kind !== 'compact' && group.length < 4) group.push(steps[i++]!)
      const promises = group.map((s) => {
        inFlight.push(s)
        return runStepAsync(db, s).then(() => acknowledge(acked, inFlight, s))
      })
      await Promise.all(promises)
    }
    result.stepsRun = i
    options.onProgress?.(i, result)
  }
  domain.onEvent = undefined
  const stats = db.stats()
  result.compactions = stats.compactions
  result.growths = stats.growths
  result.tombstonesDropped = stats.tombstonesDropped
  await db.close()
  result.durationMs = performance.now() - started
  return result
}

/** The images a crash at this moment could leave, with a description of each. */
function* imagesOf(
  domain: SimulatedDomain,
  random: Random,
  exhaustiveUnits: number,
  samples: number,
): Generator<{ image: Buffer; description: string }> {
  const pending = domain.pendingUnits()
  const n = pending.length
  const describe = (reached: boolean[]): string => {
    const offsets = pending.filter((_, i) => reached[i]).map((u) => u.offset)
    return `${offsets.length} of ${n} pending ${domain.unitBytes}-byte units reached the media` + (offsets.length > 0 && offsets.length <= 8 ? ` (at ${offsets.join(', ')})` : '')
  }
  if (n <= exhaustiveUnits) {
    for (let mask = 0; mask < 2 ** n; mask++) {
      const reached = pending.map((_, i) => (mask & (1 << i)) !== 0)
      yield { image: domain.crashImage((_, i) => reached[i]!), description: describe(reached) }
    }
    return
  }
  const choices: boolean[][] = [pending.map(() => false), pending.map(() => true)]
  for (let s = 0; s < samples; s++) {
    const p = random.next()
    choices.push(pending.map(() => random.chance(p)))
  }
  for (const reached of choices) yield { image: domain.crashImage((_, i) => reached[i]!), description: describe(reached) }
}

function imageKey(image: Buffer): string {
  return `${native.crc32c(image, 0, image.length)}:${native.crc32c(image, 0, image.length, 0x9e3779b9)}`
}

function stateOf(db: DaxKV<Buffer>): State {
  const state: State = new Map()
  for (const [key, value] of db.range()) if (key !== PROBE_KEY) state.set(key as string, value)
  return state
}

function acknowledge(acked: State, inFlight: Step[], step: Step): void {
  applyStep(acked, step)
  inFlight.splice(inFlight.indexOf(step), 1)
}
