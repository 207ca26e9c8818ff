/**
 * I/O faults: a drain (fence or msync) that fails once, or forever. The
 * store must fail the write with DAXKV_IO, publish nothing, latch until
 * reopened, and lose nothing it acknowledged.
 */
import { describe, expect, it } from 'vitest'
import { DaxKVError, ErrorCode, type DaxKV } from '../src/index.js'
import { openOnDomain } from '../src/crash/open-on-domain.js'
import { SimulatedDomain, type SimulatedGranularity } from '../src/platform/simulated-domain.js'
import { SEGMENT_FREE_MARK } from '../src/format/segment.js'
import { caught, entries, expectCode, random, rejection, seedNote, SEED } from './helpers.js'

const KiB = 1024

/** A simulated domain whose drains can be made to fail: the failed drain makes nothing durable. */
class FaultyDomain extends SimulatedDomain {
  #failFrom = Number.POSITIVE_INFINITY
  #failUntil = Number.POSITIVE_INFINITY
  #seen = 0
  failures = 0

  /** Fails the `skip`+1-th drain from now and the `count - 1` after it. */
  failDrain(skip: number, count = 1): void {
    this.#failFrom = this.#seen + skip
    this.#failUntil = this.#failFrom + count
  }

  heal(): void {
    this.#failFrom = Number.POSITIVE_INFINITY
    this.#failFreeMark = false
  }

  #failFreeMark = false
  #freeMarkPending = false

  /** Fails the drain that would make a segment's free mark durable (compaction freeing a segment). */
  failFreeMarkDrain(): void {
    this.#failFreeMark = true
  }

  override writeMarker(offset: number, value: number): void {
    if (value === SEGMENT_FREE_MARK) this.#freeMarkPending = true
    super.writeMarker(offset, value)
  }

  override drain(): void {
    const n = this.#seen++
    const freeMark = this.#freeMarkPending
    this.#freeMarkPending = false
    if ((n >= this.#failFrom && n < this.#failUntil) || (freeMark && this.#failFreeMark)) {
      this.failures++
      throw new DaxKVError(ErrorCode.IO, `injected failure of drain #${n}`)
    }
    super.drain()
  }
}

/** Handles here are dropped without close(); keep background compaction from writing behind the test's back. */
const QUIET = { backgroundCompaction: false } as const

function sorted(model: Map<string, unknown>): [string, unknown][] {
  return [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

function reboot(image: Buffer, granularity: SimulatedGranularity): DaxKV {
  return openOnDomain(SimulatedDomain.fromImage(image, granularity), QUIET)
}

function withBase(granularity: SimulatedGranularity): { domain: FaultyDomain; db: DaxKV; model: Map<string, unknown> } {
  const domain = new FaultyDomain(256 * KiB, granularity)
  const db = openOnDomain(domain, { ...QUIET, segmentSize: '64KiB' })
  const model = new Map<string, unknown>()
  for (let i = 0; i < 20; i++) {
    db.putSync(`base${i}`, { i })
    model.set(`base${i}`, { i })
  }
  return { domain, db, model }
}

/** The recovered state must be the acknowledged state, or that plus the failed write applied whole. */
function expectAbsentOrWhole(got: [string, unknown][], model: Map<string, unknown>, failedKey: string, failedValue: unknown, context: string): void {
  const withFailed = new Map(model)
  withFailed.set(failedKey, failedValue)
  const ok = JSON.stringify(got) === JSON.stringify(sorted(model)) || JSON.stringify(got) === JSON.stringify(sorted(withFailed))
  expect(ok, `${context}: recovered ${JSON.stringify(got).slice(0, 200)}`).toBe(true)
}

describe.each(['cache-line', 'page'] as const)('faults (%s granularity)', (granularity) => {
  // Cache-line commits drain twice (data, then marker); page commits once (data and marker together).
  const drainsPerCommit = granularity === 'cache-line' ? 2 : 1

  for (let which = 0; which < drainsPerCommit; which++) {
    it(`a failed drain (#${which + 1} of a commit) fails the write with DAXKV_IO, publishes nothing, and latches every later write`, async () => {
      const { domain, db, model } = withBase(granularity)
      domain.failDrain(which)
      expectCode(caught(() => db.putSync('failed', 'value')), ErrorCode.IO, 'the write whose drain failed')
      expect(domain.failures).toBe(1)
      // Not published: a write is visible only once committed.
      expect(db.get('failed')).toBeUndefined()
      expect(db.has('failed')).toBe(false)
      // Reads keep working.
      expect(entries(db)).toEqual(sorted(model))
      // Latched, although the device works again.
      expectCode(caught(() => db.putSync('after', 1)), ErrorCode.IO, 'putSync after the failure')
      expectCode(caught(() => db.delSync('base0')), ErrorCode.IO, 'delSync after the failure')
      expectCode(await rejection(db.put('after', 1)), ErrorCode.IO, 'put after the failure')
      expectCode(await rejection(db.batch([{ type: 'del', key: 'base1' }])), ErrorCode.IO, 'batch after the failure')
      expect(domain.failures).toBe(1)
      expect(db.get('base0')).toEqual({ i: 0 })
      // close() still releases the store.
      await db.close()
      expect(db.closed).toBe(true)
    })

    it(`after a failed drain (#${which + 1}) and a crash or reopen, every acknowledged write is there and the failed one is absent or whole`, async () => {
      const next = random(SEED)
      const { domain, db, model } = withBase(granularity)
      domain.failDrain(which)
      expectCode(caught(() => db.putSync('failed', 'value')), ErrorCode.IO)
      // Power failure, in several ways.
      expectAbsentOrWhole(entries(reboot(domain.durableImage(), granularity)), model, 'failed', 'value', 'durable image')
      for (let i = 0; i < 10; i++) {
        expectAbsentOrWhole(entries(reboot(domain.crashImage(() => next() < 0.5), granularity)), model, 'failed', 'value', seedNote(`crash image ${i}`))
      }
      // Or the process goes on: close and reopen the same (healed) domain.
      await db.close()
      const reopened = openOnDomain(domain, QUIET)
      expectAbsentOrWhole(entries(reopened), model, 'failed', 'value', 'reopen')
      reopened.putSync('later', 'works')
      expect(reopened.get('later')).toBe('works')
    })
  }

  it('a device whose drains always fail never acknowledges a write, and loses nothing acknowledged before', () => {
    const { domain, db, model } = withBase(granularity)
    domain.failDrain(0, Number.POSITIVE_INFINITY)
    for (let i = 0; i < 5; i++) expectCode(caught(() => db.putSync(`never${i}`, i)), ErrorCode.IO, `write ${i}`)
    expect(entries(db)).toEqual(sorted(model))
    expect(entries(reboot(domain.durableImage(), granularity))).toEqual(sorted(model))
  })

  it('a failed drain while background compaction frees a segment latches the store: the next write fails with DAXKV_IO', async () => {
    const domain = new FaultyDomain(512 * KiB, granularity)
    const db = openOnDomain(domain, { segmentSize: '64KiB' })
    const model = new Map<string, unknown>()
    // Fill the first segments, then overwrite every key: they hold only dead records, so cleaning one copies nothing and only frees it.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 60; i++) {
        db.putSync(`k${i}`, `${round}`.padEnd(1500, 'x'))
        model.set(`k${i}`, `${round}`.padEnd(1500, 'x'))
      }
    }
    domain.failFreeMarkDrain()
    // Small writes with event-loop turns between them, until background compaction frees a segment and hits the fault.
    let writesAfterFault = 0
    for (let i = 0; i < 300 && writesAfterFault === 0; i++) {
      const failuresBefore = domain.failures
      try {
        await db.put(`kick${i}`, i)
        model.set(`kick${i}`, i)
      } catch (error) {
        expectCode(error, ErrorCode.IO, `kick ${i}`)
        break
      }
      if (failuresBefore > 0) writesAfterFault++
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    expect(domain.failures, 'compaction should have freed a segment and hit the fault').toBeGreaterThan(0)
    domain.heal()
    expect(writesAfterFault, 'writes accepted after the failed drain').toBe(0)
    expectCode(caught(() => db.putSync('after', 1)), ErrorCode.IO, 'the first write after the failed drain')
    await db.close()
    const reopened = openOnDomain(domain, QUIET)
    expect(entries(reopened)).toEqual(sorted(model))
  })

  it('a failed drain at any point of compact() fails it with DAXKV_IO, latches the store, and loses nothing', async () => {
    // The fault point advances one drain at a time until compact() runs past all of them.
    const unlatched: string[] = []
    let points = 0
    for (let skip = 0; ; skip++) {
      const next = random(SEED + skip)
      const domain = new FaultyDomain(512 * KiB, granularity)
      const db = openOnDomain(domain, { ...QUIET, segmentSize: '64KiB' })
      const model = new Map<string, unknown>()
      for (let i = 0; i < 150; i++) {
        const key = `k${Math.floor(next() * 15)}`
        const value = `${i}`.padEnd(1500, 'x')
        db.putSync(key, value)
        model.set(key, value)
      }
      domain.failDrain(skip)
      let compactError: unknown
      try {
        await db.compact()
      } catch (error) {
        compactError = error
      }
      if (domain.failures === 0) break
      points++
      const context = seedNote(`drain ${skip} of compact()`)
      expectCode(compactError, ErrorCode.IO, context)
      expect(entries(db), context).toEqual(sorted(model))
      domain.heal()
      try {
        db.putSync('after', 1)
        // Accepted (the bug this test reports): from here on it is acknowledged data like any other.
        unlatched.push(`drain ${skip}`)
        model.set('after', 1)
      } catch (error) {
        expectCode(error, ErrorCode.IO, context)
      }
      expect(entries(reboot(domain.durableImage(), granularity)), context).toEqual(sorted(model))
      await db.close()
      const reopened = openOnDomain(domain, QUIET)
      expect(entries(reopened), context).toEqual(sorted(model))
      expect(reopened.verify().problems.join('\n'), context).toBe('')
    }
    // compact() makes a few drains (copies, persist, free mark) however the seeded workload falls.
    expect(points).toBeGreaterThanOrEqual(3)
    expect(unlatched, 'compact() failed with DAXKV_IO, yet these fault points left the store accepting writes').toEqual([])
  })
})
