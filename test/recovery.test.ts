/**
 * Recovery on the simulated domain: a "crash and reboot" is
 * `SimulatedDomain.fromImage(image)` of an image a power failure could
 * leave, then `openOnDomain` on it. Every check compares the recovered
 * entries with a model of what was acknowledged.
 */
import { describe, expect, it } from 'vitest'
import { type DaxKV, type OpenOptions } from '../src/index.js'
import { openOnDomain } from '../src/crash/open-on-domain.js'
import { SimulatedDomain, type SimulatedGranularity } from '../src/platform/simulated-domain.js'
import { SUPERBLOCK_BYTES } from '../src/format/constants.js'
import { below, entries, random, seedNote, SEED } from './helpers.js'

const KiB = 1024
/** Writers here are dropped without close(); background compaction would keep writing to their domains. */
const QUIET = { backgroundCompaction: false } as const
const GRANULARITIES: readonly SimulatedGranularity[] = ['cache-line', 'page']

type Model = Map<string, unknown>
type Entries = [string, unknown][]

function sorted(model: Model): Entries {
  return [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

/** Records where each commit marker went, so a test knows where each batch starts. */
class RecordingDomain extends SimulatedDomain {
  readonly markers: { offset: number; seq: number }[] = []

  override writeMarker(offset: number, value: number): void {
    this.markers.push({ offset, seq: value })
    super.writeMarker(offset, value)
  }
}

/**
 * Crash and reboot: a fresh domain holding `image`, and a database recovered
 * from it. These handles are dropped without close(), so they run no
 * background compaction (it would keep working on dropped stores).
 */
function reboot(image: Buffer, granularity: SimulatedGranularity, options: OpenOptions = {}): { db: DaxKV; domain: SimulatedDomain } {
  const domain = SimulatedDomain.fromImage(image, granularity)
  return { db: openOnDomain(domain, { ...QUIET, ...options }), domain }
}

type Op =
  | { readonly t: 'put'; readonly key: string; readonly value: unknown }
  | { readonly t: 'del'; readonly key: string }
  | { readonly t: 'batch'; readonly ops: readonly ({ type: 'put'; key: string; value: unknown } | { type: 'del'; key: string })[] }

/** A seeded workload of synchronous writes over a small key space, with some values large enough to roll segments. */
function workload(seed: number, count: number, largeShare = 0.15): Op[] {
  const next = random(seed)
  const key = (): string => `k${String(below(next, 40)).padStart(2, '0')}`
  const value = (): unknown => {
    const r = next()
    if (r < largeShare) return 'L'.repeat(3 * KiB + below(next, 5 * KiB))
    if (r < largeShare + 0.35) return { n: below(next, 1000), s: 'x'.repeat(below(next, 300)) }
    if (r < largeShare + 0.55) return Buffer.from(Array.from({ length: below(next, 64) }, (_, i) => i))
    return `v${below(next, 1e6)}`
  }
  return Array.from({ length: count }, (): Op => {
    const r = next()
    if (r < 0.6) return { t: 'put', key: key(), value: value() }
    if (r < 0.8) return { t: 'del', key: key() }
    return {
      t: 'batch',
      ops: Array.from({ length: 1 + below(next, 4) }, () => (next() < 0.7 ? { type: 'put' as const, key: key(), value: value() } : { type: 'del' as const, key: key() })),
    }
  })
}

function applySync(db: DaxKV, op: Op): void {
  if (op.t === 'put') db.putSync(op.key, op.value)
  else if (op.t === 'del') db.delSync(op.key)
  else db.batchSync(op.ops)
}

function applyModel(model: Model, op: Op): void {
  if (op.t === 'put') model.set(op.key, op.value)
  else if (op.t === 'del') model.delete(op.key)
  else for (const o of op.ops) o.type === 'put' ? model.set(o.key, o.value) : model.delete(o.key)
}

describe.each(GRANULARITIES)('recovery (%s granularity)', (granularity) => {
  it('after every acknowledged synchronous write, the durable image recovers with all acknowledged data, across segment rolls, growth and compaction', () => {
    const domain = new SimulatedDomain(256 * KiB, granularity)
    const db = openOnDomain(domain, { ...QUIET, segmentSize: '64KiB', maxSize: '512KiB' })
    const model: Model = new Map()
    workload(SEED, 250, 0.35).forEach((op, step) => {
      applySync(db, op)
      applyModel(model, op)
      const { db: recovered } = reboot(domain.durableImage(), granularity)
      const context = seedNote(`step ${step} ${op.t}`)
      expect(entries(recovered), context).toEqual(sorted(model))
      expect(recovered.recovery.tornTail, context).toBeUndefined()
    })
    const stats = db.stats()
    expect(stats.segmentsOpened, seedNote('the workload should roll segments')).toBeGreaterThanOrEqual(3)
    expect(stats.compactions, 'the workload should compact').toBeGreaterThan(0)
    expect(db.verify().problems.join('\n')).toBe('')
  })

  it('a crash at any store, flush or drain of a write (compaction and growth included) recovers to the state before it or after it, and after it once acknowledged', () => {
    const domain = new SimulatedDomain(256 * KiB, granularity)
    const db = openOnDomain(domain, { ...QUIET, segmentSize: '64KiB', maxSize: '512KiB' })
    const next = random(SEED + 1)
    const model: Model = new Map()
    let crashPoints = 0
    let sawBefore = 0
    let sawAfter = 0
    for (const [step, op] of workload(SEED + 1, 160, 0.35).entries()) {
      const before = sorted(model)
      const afterModel = new Map(model)
      applyModel(afterModel, op)
      const after = sorted(afterModel)
      domain.onEvent = (kind) => {
        // Two images per crash point: a random subset of the pending units reached the media, and
        // (in turn) none of them or all of them did.
        const images: [string, Buffer][] = [
          ['random subset', domain.crashImage(() => next() < 0.5)],
          crashPoints % 2 === 0 ? ['durable', domain.durableImage()] : ['all pending', domain.crashImage(() => true)],
        ]
        for (const [which, image] of images) {
          const { db: recovered } = reboot(image, granularity)
          const got = entries(recovered)
          const context = seedNote(`step ${step} ${op.t}, crash at ${kind} #${crashPoints}, ${which}`)
          const isBefore = JSON.stringify(got) === JSON.stringify(before)
          const isAfter = JSON.stringify(got) === JSON.stringify(after)
          if (!isBefore && !isAfter) expect(got, `${context}: neither the state before nor after the write`).toEqual(after)
          if (isBefore) sawBefore++
          if (isAfter) sawAfter++
        }
        crashPoints++
      }
      applySync(db, op)
      domain.onEvent = undefined
      model.clear()
      for (const [k, v] of afterModel) model.set(k, v)
      // Acknowledged: nothing the write needs is still pending.
      const { db: recovered } = reboot(domain.durableImage(), granularity)
      expect(entries(recovered), seedNote(`step ${step} acknowledged`)).toEqual(after)
    }
    expect(crashPoints).toBeGreaterThan(300)
    expect(sawBefore).toBeGreaterThan(0)
    expect(sawAfter).toBeGreaterThan(0)
    expect(db.stats().segmentsOpened, seedNote('the workload should roll segments')).toBeGreaterThanOrEqual(3)
    expect(db.stats().compactions, 'the workload should compact').toBeGreaterThan(0)
  })

  it('a torn tail is cut off and reported, and a write after that recovery plus another crash never brings back a stale batch', () => {
    const next = random(SEED + 2)
    let tornSeen = 0
    for (let round = 0; round < 30; round++) {
      const domain = new RecordingDomain(256 * KiB, granularity)
      // A durable base, then batches written with sync: false (stored, never flushed).
      const base = openOnDomain(domain, { ...QUIET, segmentSize: '64KiB' })
      const baseModel: Model = new Map()
      for (let i = 0; i < 5; i++) {
        base.putSync(`base${i}`, i)
        baseModel.set(`base${i}`, i)
      }
      const baseBatches = base.recovery.batches + base.stats().batchesWritten
      const db = openOnDomain(domain, { ...QUIET, sync: false })
      const firstMarker = domain.markers.length
      // Equal-length batches: a new batch written where a torn one was ends exactly where the next stale one starts.
      const n = 12
      const valueBytes = granularity === 'page' ? 1500 : 40
      const prefixes: Entries[] = [sorted(baseModel)]
      const model = new Map(baseModel)
      for (let i = 0; i < n; i++) {
        const key = `t${String(i).padStart(2, '0')}`
        const value = String.fromCharCode(97 + (i % 26)).repeat(valueBytes)
        db.putSync(key, value)
        model.set(key, value)
        prefixes.push(sorted(model))
      }
      const starts = domain.markers.slice(firstMarker).map((m) => m.offset)
      expect(domain.markers.slice(firstMarker).map((m) => m.seq)).toEqual(Array.from({ length: n }, (_, i) => baseBatches + 1 + i))

      // Crash: some random subset of the unflushed units reached the media; in half the rounds, exactly one marker did not.
      const pending = domain.pendingUnits()
      const dropMarker = round % 2 === 0 && granularity === 'cache-line' ? starts[below(next, n)]! : undefined
      const image = domain.crashImage((unit) => (dropMarker === undefined ? next() < 0.7 : unit.offset !== dropMarker))
      const context = seedNote(`round ${round} (${pending.length} pending units${dropMarker === undefined ? '' : `, marker at ${dropMarker} dropped`})`)

      const first = reboot(image, granularity)
      const got = entries(first.db)
      const j = prefixes.findIndex((p) => JSON.stringify(p) === JSON.stringify(got))
      expect(j, `${context}: recovered state is no prefix of the batches`).toBeGreaterThanOrEqual(0)
      if (dropMarker !== undefined) expect(starts[j], context).toBe(dropMarker)
      const torn = first.db.recovery.tornTail
      if (torn !== undefined) {
        tornSeen++
        expect(j, `${context}: a torn tail after all batches`).toBeLessThan(n)
        expect(torn.offset, context).toBe(starts[j])
        expect(torn.bytes, context).toBeGreaterThan(0)
        expect(['marker', 'checksum', 'header', 'zero'], context).toContain(torn.reason)
      }
      if (dropMarker !== undefined) {
        expect(torn?.reason, context).toBe('marker')
      }
      // Recovering the same image again gives the same state and the same report.
      const second = reboot(image, granularity)
      expect(entries(second.db), context).toEqual(got)
      expect({ ...second.db.recovery, durationMs: 0 }, context).toEqual({ ...first.db.recovery, durationMs: 0 })
      // The recovered durable image is clean: recovering it finds no torn tail.
      const third = reboot(first.domain.durableImage(), granularity)
      expect(entries(third.db), context).toEqual(got)
      expect(third.db.recovery.tornTail, context).toBeUndefined()

      // A write of the same length where the torn batch was, then a crash: only acknowledged data comes back.
      const key = `n${String(j).padStart(2, '0')}`
      const value = 'N'.repeat(valueBytes)
      first.db.putSync(key, value)
      const afterWrite = reboot(first.domain.durableImage(), granularity)
      const expected = new Map(got)
      expected.set(key, value)
      expect(entries(afterWrite.db), `${context}: a stale batch came back after the new write`).toEqual(sorted(expected))
      expect(afterWrite.db.recovery.tornTail, context).toBeUndefined()
      // And the store keeps accepting writes.
      afterWrite.db.putSync('later', 1)
      expect(afterWrite.db.get('later')).toBe(1)
    }
    expect(tornSeen, 'some rounds should leave a torn tail').toBeGreaterThan(0)
  })

  it('a crash during recovery (while it zeroes a torn tail) recovers to the same state', () => {
    const next = random(SEED + 3)
    const domain = new SimulatedDomain(256 * KiB, granularity)
    const base = openOnDomain(domain, QUIET)
    base.putSync('a', 1)
    const db = openOnDomain(domain, { ...QUIET, sync: false })
    for (let i = 0; i < 20; i++) db.putSync(`b${i}`, 'y'.repeat(granularity === 'page' ? 900 : 30))
    const image = domain.crashImage(() => next() < 0.5)
    const expected = entries(reboot(image, granularity).db)
    const recovering = SimulatedDomain.fromImage(image, granularity)
    let crashes = 0
    recovering.onEvent = () => {
      for (const crash of [recovering.durableImage(), recovering.crashImage(() => next() < 0.5), recovering.crashImage(() => true)]) {
        expect(entries(reboot(crash, granularity).db), seedNote(`crash ${crashes} during recovery`)).toEqual(expected)
      }
      crashes++
    }
    const recovered = openOnDomain(recovering, QUIET)
    recovering.onEvent = undefined
    expect(entries(recovered)).toEqual(expected)
    if (recovered.recovery.tornTail !== undefined) expect(crashes, seedNote()).toBeGreaterThan(0)
  })

  it('a store that rolled through several segments recovers them all, and keeps writing after recovery', () => {
    const domain = new SimulatedDomain(1024 * KiB, granularity)
    const db = openOnDomain(domain, { ...QUIET, segmentSize: '64KiB' })
    const model: Model = new Map()
    for (let i = 0; i < 300; i++) {
      const key = `r${String(i).padStart(3, '0')}`
      const value = `${i}`.padEnd(1000 + (i % 7) * 300, '.')
      db.putSync(key, value)
      model.set(key, value)
    }
    const inUse = db.stats().segmentsInUse
    expect(inUse).toBeGreaterThanOrEqual(6)
    const { db: recovered, domain: rebooted } = reboot(domain.durableImage(), granularity)
    expect(recovered.stats().segmentsInUse).toBe(inUse)
    expect(recovered.recovery.segmentsInUse).toBe(inUse)
    expect(recovered.recovery.batches).toBe(300)
    expect(entries(recovered)).toEqual(sorted(model))
    for (let i = 0; i < 100; i++) {
      recovered.putSync(`s${i}`, 'z'.repeat(2000))
      model.set(`s${i}`, 'z'.repeat(2000))
    }
    const again = reboot(rebooted.durableImage(), granularity).db
    expect(again.stats().segmentsInUse).toBeGreaterThan(inUse)
    expect(entries(again)).toEqual(sorted(model))
  })
})

describe('openOnDomain', () => {
  it('formats an all-zero domain, and does not format a domain that holds a daxfile', () => {
    const domain = new SimulatedDomain(256 * KiB)
    const db = openOnDomain(domain, QUIET)
    db.putSync('k', 'v')
    const again = openOnDomain(domain, QUIET)
    expect(again.get('k')).toBe('v')
  })

  it('repairs a zeroed first superblock copy from the second instead of formatting over the data', () => {
    const domain = new SimulatedDomain(256 * KiB)
    const db = openOnDomain(domain, QUIET)
    db.putSync('k', 'v')
    const image = domain.durableImage()
    image.fill(0, 0, SUPERBLOCK_BYTES)
    const { db: recovered } = reboot(image, 'cache-line')
    expect(entries(recovered)).toEqual([['k', 'v']])
  })
})
