/**
 * The model test: random sequences of writes, reopens and crashes, checked
 * after every step against a plain Map, on the simulated domain (cache-line
 * and page granularity) and on real files in msync mode (tmpfs).
 */
import fs from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DaxKVError, ErrorCode, open, type DaxKV, type RangeOptions } from '../src/index.js'
import { openOnDomain } from '../src/crash/open-on-domain.js'
import { SimulatedDomain } from '../src/platform/simulated-domain.js'
import { checkAsyncProperty, compactBounded, compareBytes, random, tempDir } from './helpers.js'

/** A small file that may grow a little: overwrites soon need compaction and segment reuse. */
const FILE_OPTIONS = { size: '256KiB', segmentSize: '64KiB', maxSize: '1MiB' } as const
/** What a reopen passes: the limits are options of the handle, not of the file. */
const REOPEN_OPTIONS = { maxSize: '1MiB' } as const

// ------------------------------------------------------------------ values

type ValueSpec =
  | { readonly kind: 'object'; readonly n: number; readonly s: string; readonly list: readonly boolean[] }
  | { readonly kind: 'string'; readonly s: string }
  | { readonly kind: 'buffer'; readonly bytes: readonly number[] }
  | { readonly kind: 'large'; readonly size: number; readonly fill: string }
  | { readonly kind: 'null' }

function materialize(spec: ValueSpec): unknown {
  switch (spec.kind) {
    case 'object':
      // Math.abs: msgpack (like JSON) does not keep the sign of -0, which n % 7 can produce.
      return { n: spec.n, s: spec.s, list: [...spec.list], nested: { at: Math.abs(spec.n % 7) } }
    case 'string':
      return spec.s
    case 'buffer':
      return Buffer.from(spec.bytes)
    case 'large':
      return spec.fill.repeat(spec.size)
    case 'null':
      return null
  }
}

const valueArb: fc.Arbitrary<ValueSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('object' as const), n: fc.integer(), s: fc.string({ maxLength: 12 }), list: fc.array(fc.boolean(), { maxLength: 4 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('string' as const), s: fc.string({ unit: 'grapheme', maxLength: 20 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('buffer' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('large' as const), size: fc.integer({ min: 4000, max: 20_000 }), fill: fc.constantFrom('a', 'ß', '✓') }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'null' as const }) },
)

// A small key space, so keys are overwritten and deleted; it includes NUL and non-ASCII characters.
const keyArb: fc.Arbitrary<string> = fc
  .array(fc.constantFrom('a', 'b', 'Z', '0', '\u0000', 'é', 'ß', '日', '\u{1F600}', '\uFFFD'), { minLength: 1, maxLength: 2 })
  .map((chars) => chars.join(''))

// ---------------------------------------------------------------- commands

type Write = { readonly type: 'put'; readonly key: string; readonly value: ValueSpec } | { readonly type: 'del'; readonly key: string }

type Command =
  | { readonly t: 'put' | 'putSync'; readonly key: string; readonly value: ValueSpec }
  | { readonly t: 'del' | 'delSync'; readonly key: string }
  | { readonly t: 'batch' | 'batchSync'; readonly ops: readonly Write[] }
  | { readonly t: 'group'; readonly ops: readonly Write[] }
  | { readonly t: 'reopen' }
  | { readonly t: 'compact' }
  | { readonly t: 'idle'; readonly turns: number }
  | { readonly t: 'crash'; readonly seed: number }
  | { readonly t: 'range'; readonly options: RangeOptions }

const writeArb: fc.Arbitrary<Write> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant('put' as const), key: keyArb, value: valueArb }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('del' as const), key: keyArb }) },
)

const rangeArb: fc.Arbitrary<RangeOptions> = fc
  .record(
    {
      gt: keyArb,
      gte: keyArb,
      lt: keyArb,
      lte: keyArb,
      reverse: fc.boolean(),
      limit: fc.integer({ min: -1, max: 5 }),
    },
    { requiredKeys: [] },
  )
  // One lower and one upper bound at most: which wins when both are given is not part of the contract.
  .map((o) => {
    const options: RangeOptions = { ...o }
    if (options.gt !== undefined && options.gte !== undefined) delete options.gt
    if (options.lt !== undefined && options.lte !== undefined) delete options.lt
    return options
  })

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constantFrom('put' as const, 'putSync' as const), key: keyArb, value: valueArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constantFrom('del' as const, 'delSync' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constantFrom('batch' as const, 'batchSync' as const), ops: fc.array(writeArb, { maxLength: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('group' as const), ops: fc.array(writeArb, { minLength: 2, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'compact' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('idle' as const), turns: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crash' as const), seed: fc.integer() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('range' as const), options: rangeArb }) },
)

// ----------------------------------------------------------------- targets

/** Where the database lives, and what reopening and crashing mean there. */
interface Target {
  readonly db: DaxKV
  reopen(): Promise<void>
  /** Loses the process (and, on the simulated domain, the power) without closing; then recovers. */
  crash(seed: number): Promise<void>
  dispose(): Promise<void>
}

function simulatedTarget(granularity: 'cache-line' | 'page'): () => Promise<Target> {
  return async () => {
    let domain = new SimulatedDomain(256 * 1024, granularity)
    let db: DaxKV = openOnDomain(domain, FILE_OPTIONS)
    return {
      get db() {
        return db
      },
      async reopen() {
        await db.close()
        db = openOnDomain(domain, REOPEN_OPTIONS)
      },
      async crash(seed) {
        // Power failure: whatever was still pending reaches the media or not, at random.
        const next = random(seed)
        const image = domain.crashImage(() => next() < 0.5)
        // The old handle is dead: close it so its background compaction stops (it writes only to the old domain).
        await db.close()
        domain = SimulatedDomain.fromImage(image, granularity)
        db = openOnDomain(domain, REOPEN_OPTIONS)
      },
      async dispose() {
        if (!db.closed) await db.close()
      },
    }
  }
}

function fileTarget(parent: string): () => Promise<Target> {
  return async () => {
    const dir = tempDir(parent)
    let generation = 0
    let file = path.join(dir, `db-${generation}.dax`)
    let db: DaxKV = await open(file, FILE_OPTIONS)
    return {
      get db() {
        return db
      },
      async reopen() {
        await db.close()
        db = await open(file, { ...REOPEN_OPTIONS, create: false })
      },
      async crash() {
        // Process crash: what the mapping holds now (the page cache) is what survives. The copy is
        // taken before the old handle is closed, so close() cannot add anything to it.
        const image = fs.readFileSync(file)
        const crashed = path.join(dir, `db-${++generation}.dax`)
        fs.writeFileSync(crashed, image)
        await db.close()
        fs.rmSync(file)
        file = crashed
        db = await open(file, { ...REOPEN_OPTIONS, create: false })
      },
      async dispose() {
        if (!db.closed) await db.close()
        fs.rmSync(dir, { recursive: true, force: true })
      },
    }
  }
}

// ------------------------------------------------------------------- model

type Model = Map<string, unknown>

function byUtf8([a]: [string, unknown], [b]: [string, unknown]): number {
  return compareBytes(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

function modelRange(model: Model, options: RangeOptions): [string, unknown][] {
  const key = (k: string): Buffer => Buffer.from(k, 'utf8')
  let out = [...model.entries()].sort(byUtf8).filter(([k]) => {
    const b = key(k)
    if (options.gte !== undefined && compareBytes(b, key(options.gte as string)) < 0) return false
    if (options.gt !== undefined && compareBytes(b, key(options.gt as string)) <= 0) return false
    if (options.lte !== undefined && compareBytes(b, key(options.lte as string)) > 0) return false
    if (options.lt !== undefined && compareBytes(b, key(options.lt as string)) >= 0) return false
    return true
  })
  if (options.reverse === true) out = out.reverse()
  if (options.limit !== undefined && options.limit >= 0) out = out.slice(0, options.limit)
  return out
}

function applyWrite(model: Model, write: Write): void {
  if (write.type === 'put') model.set(write.key, materialize(write.value))
  else model.delete(write.key)
}

function toOperation(write: Write): { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string } {
  return write.type === 'put' ? { type: 'put', key: write.key, value: materialize(write.value) } : { type: 'del', key: write.key }
}

/**
 * Runs `attempt` and says whether it was applied. DAXKV_FULL means "not
 * applied" (there is no space reclamation yet), and so does `alsoRefused`
 * (a batch bigger than a segment); anything else fails the test.
 */
async function applied(attempt: () => Promise<void> | void, alsoRefused?: string): Promise<boolean> {
  try {
    await attempt()
    return true
  } catch (error) {
    if (error instanceof DaxKVError && (error.code === ErrorCode.FULL || error.code === alsoRefused)) return false
    throw error
  }
}

/** What a run exercised, summed over every handle it opened (counters restart at each open). */
interface Exercised {
  compactions: number
  growths: number
  mostSegments: number
}

async function run(target: Target, commands: readonly Command[]): Promise<Exercised> {
  const model: Model = new Map()
  const exercised: Exercised = { compactions: 0, growths: 0, mostSegments: 0 }
  const tally = (): void => {
    const stats = target.db.stats()
    exercised.compactions += stats.compactions
    exercised.growths += stats.growths
    exercised.mostSegments = Math.max(exercised.mostSegments, stats.segmentsInUse)
  }
  for (const [step, command] of commands.entries()) {
    const db = target.db
    if (command.t === 'reopen' || command.t === 'crash') tally()
    const touched: string[] = []
    switch (command.t) {
      case 'put':
      case 'putSync': {
        const value = materialize(command.value)
        if (await applied(() => (command.t === 'put' ? db.put(command.key, value) : db.putSync(command.key, value)))) model.set(command.key, value)
        touched.push(command.key)
        break
      }
      case 'del':
      case 'delSync': {
        if (await applied(() => (command.t === 'del' ? db.del(command.key) : db.delSync(command.key)))) model.delete(command.key)
        touched.push(command.key)
        break
      }
      case 'batch':
      case 'batchSync': {
        const operations = command.ops.map(toOperation)
        // All or nothing: a refused batch must leave no trace, which the checks below verify.
        const attempt = (): Promise<void> | void => (command.t === 'batch' ? db.batch(operations) : db.batchSync(operations))
        if (await applied(attempt, ErrorCode.VALUE_TOO_LARGE)) for (const write of command.ops) applyWrite(model, write)
        touched.push(...command.ops.map((w) => w.key))
        break
      }
      case 'group': {
        // Issued in one tick: group-committed. Each resolves or fails on its own; apply those that resolved, in order.
        const promises = command.ops.map((write) => (write.type === 'put' ? db.put(write.key, materialize(write.value)) : db.del(write.key)))
        const results = await Promise.allSettled(promises)
        results.forEach((result, i) => {
          const write = command.ops[i]!
          if (result.status === 'fulfilled') applyWrite(model, write)
          else if (!(result.reason instanceof DaxKVError && result.reason.code === ErrorCode.FULL)) throw result.reason
        })
        touched.push(...command.ops.map((w) => w.key))
        break
      }
      case 'reopen':
        await target.reopen()
        break
      case 'compact':
        await compactBounded(db)
        break
      case 'idle':
        // Event-loop turns, in which background compaction runs.
        for (let i = 0; i < command.turns; i++) await new Promise<void>((resolve) => setImmediate(resolve))
        break
      case 'crash':
        await target.crash(command.seed)
        expect(target.db.recovery.tornTail, `step ${step}: acknowledged writes left a torn tail`).toBeUndefined()
        break
      case 'range':
        expect([...target.db.range(command.options)], `step ${step}: range ${JSON.stringify(command.options)}`).toEqual(modelRange(model, command.options))
        break
    }
    const now = target.db
    for (const key of touched) expect(now.get(key), `step ${step} ${command.t}: get(${JSON.stringify(key)})`).toEqual(model.get(key))
    expect([...now.range()], `step ${step} ${command.t}: full range`).toEqual([...model.entries()].sort(byUtf8))
    expect(now.count, `step ${step} ${command.t}: count`).toBe(model.size)
  }
  // Finally, the store's own consistency check, and what a clean reopen finds.
  expect(target.db.verify().problems.join('\n'), 'verify() at the end').toBe('')
  tally()
  await target.reopen()
  expect([...target.db.range()], 'after the final reopen').toEqual([...model.entries()].sort(byUtf8))
  expect(target.db.verify().problems.join('\n'), 'verify() after the final reopen').toBe('')
  return exercised
}

const TARGETS: [string, () => Promise<Target>, number][] = [
  ['the simulated domain, cache-line granularity', simulatedTarget('cache-line'), 60],
  ['the simulated domain, page granularity', simulatedTarget('page'), 60],
  ...(fs.existsSync('/dev/shm') ? [['real files in msync mode on tmpfs', fileTarget('/dev/shm'), 40] as [string, () => Promise<Target>, number]] : []),
]

describe('the store behaves like a Map through writes, reopens and crashes', () => {
  for (const [name, makeTarget, numRuns] of TARGETS) {
    it(`on ${name}, every get, count and range agrees with the model after every step`, async () => {
      let mostSegments = 0
      let compactions = 0
      let growths = 0
      await checkAsyncProperty(
        fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 60, size: 'max' }), async (commands) => {
          const target = await makeTarget()
          try {
            const exercised = await run(target, commands)
            mostSegments = Math.max(mostSegments, exercised.mostSegments)
            compactions += exercised.compactions
            growths += exercised.growths
          } finally {
            await target.dispose()
          }
        }),
        numRuns,
        // Shrinking a long failing run can take minutes; report what it has by then.
        15_000,
      )
      // The runs must have exercised segment rolls, or the small file proves little.
      expect(mostSegments).toBeGreaterThanOrEqual(3)
      expect(compactions, 'some runs should compact').toBeGreaterThan(0)
      expect(growths, 'some runs should grow the file').toBeGreaterThan(0)
    })
  }
})
