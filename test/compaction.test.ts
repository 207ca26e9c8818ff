/**
 * Space: segment cleaning (compaction), segment reuse and file growth. The
 * logical state must never change because of them, across reopens and
 * crashes, and they must make room when room can be made.
 */
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { DaxKVError, ErrorCode, open, type DaxKV, type OpenOptions } from '../src/index.js'
import { openOnDomain } from '../src/crash/open-on-domain.js'
import { SimulatedDomain } from '../src/platform/simulated-domain.js'
import { below, compactBounded, entries, random, seedNote, SEED, tempDir } from './helpers.js'

const KiB = 1024

function sorted(model: Map<string, unknown>): [string, unknown][] {
  return [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

/** Crash and reboot; the handle is dropped without close(), so it runs no background compaction. */
function reboot(image: Buffer, granularity: 'cache-line' | 'page' = 'cache-line', options: OpenOptions = {}): DaxKV {
  return openOnDomain(SimulatedDomain.fromImage(image, granularity), { backgroundCompaction: false, ...options })
}

/** Overwrites a small key space many times, so sealed segments fill with superseded records. */
function churn(db: DaxKV, model: Map<string, unknown>, seed: number, writes: number, valueBytes = 2000): void {
  const next = random(seed)
  for (let i = 0; i < writes; i++) {
    const key = `k${String(below(next, 20)).padStart(2, '0')}`
    if (next() < 0.15) {
      db.delSync(key)
      model.delete(key)
    } else {
      const value = `${i}:`.padEnd(valueBytes / 2 + below(next, valueBytes), 'v')
      db.putSync(key, value)
      model.set(key, value)
    }
  }
}

describe('compaction', () => {
  it('compact() reclaims superseded records: fewer segments in use, same data, before and after a reopen', async () => {
    const file = path.join(tempDir('/dev/shm'), 'db.dax')
    const db = await open(file, { size: '1MiB', segmentSize: '64KiB', backgroundCompaction: false })
    const model = new Map<string, unknown>()
    churn(db, model, SEED, 300)
    const before = db.stats()
    expect(before.garbageRatio).toBeGreaterThan(0.3)
    const result = await compactBounded(db)
    const after = db.stats()
    expect(result.segmentsCleaned).toBeGreaterThan(0)
    expect(after.segmentsInUse, seedNote()).toBeLessThan(before.segmentsInUse)
    expect(after.usedBytes, seedNote()).toBeLessThan(before.usedBytes)
    expect(entries(db), seedNote()).toEqual(sorted(model))
    expect(db.verify().problems.join('\n')).toBe('')
    await db.close()
    const again = await open(file)
    expect(entries(again), seedNote()).toEqual(sorted(model))
    expect(again.verify().problems.join('\n')).toBe('')
    await again.close()
  })

  it('compact() finishes, cleaning each segment about once, even when the live values are too large to pack together', async () => {
    const db = openOnDomain(new SimulatedDomain(256 * KiB), { segmentSize: '64KiB', valueEncoding: 'utf8', backgroundCompaction: false })
    db.putSync('a', 'a'.repeat(50_000))
    db.putSync('b', 'b'.repeat(50_000))
    const result = await compactBounded(db)
    expect(result.segmentsCleaned).toBeLessThanOrEqual(db.stats().segments)
    expect([db.get('a'), db.get('b')]).toEqual(['a'.repeat(50_000), 'b'.repeat(50_000)])
    await db.close()
  })

  it('a put that fits once the file grows is not refused with DAXKV_FULL while the file is below maxSize', async () => {
    // Four keys of 20-50 KB in 64 KiB segments: less than 200 KB live, against a maxSize of 1 MiB.
    const sizes: [string, number][] = [['k3', 29991], ['k0', 22455], ['k0', 35254], ['k0', 49215], ['k2', 40724], ['k3', 31074], ['k2', 46276], ['k1', 45000]]
    const db = openOnDomain<string>(new SimulatedDomain(256 * KiB), { segmentSize: '64KiB', maxSize: '1MiB', valueEncoding: 'utf8', backgroundCompaction: false })
    const model = new Map<string, string>()
    for (const [step, [key, size]] of sizes.entries()) {
      let outcome = 'stored'
      try {
        db.putSync(key, key.repeat(size / 2))
        model.set(key, key.repeat(size / 2))
      } catch (error) {
        const stats = db.stats()
        outcome = `${String(error).slice(0, 60)}... with the file at ${stats.fileBytes} of ${stats.maxFileBytes} bytes after ${stats.compactions} compactions`
      }
      expect(outcome, `put ${step} (${key}, ${size} bytes)`).toBe('stored')
    }
    expect(entries(db)).toEqual(sorted(model))
    expect(db.stats().fileBytes).toBeLessThanOrEqual(1024 * KiB)
    await db.close()
  })

  it('live-space accounting stays exact when compaction drops a tombstone while an older tombstone of the same key survives', async () => {
    const domain = new SimulatedDomain(256 * KiB)
    const db = openOnDomain<string>(domain, { segmentSize: '64KiB', valueEncoding: 'utf8', backgroundCompaction: false })
    db.delSync('k') // segment 0: a tombstone for a key that never existed
    db.putSync('pad0', 'x'.repeat(36_000)) // segment 0
    db.putSync('k', 'y'.repeat(38_000)) // segment 1: supersedes the old tombstone
    db.delSync('k') // segment 1: the latest record of k
    db.putSync('pad1', 'z'.repeat(38_000)) // segment 2
    expect(db.verify().problems.join('\n')).toBe('')
    // No free segment for this put, so segment 1 is cleaned. Dropping its tombstone would re-expose the one in
    // segment 0 to a replay; keeping it (or accounting for that) is what keeps memory and log in agreement.
    db.putSync('pad2', 'w'.repeat(33_000))
    expect(db.stats().compactions).toBeGreaterThan(0)
    expect(db.has('k')).toBe(false)
    expect(db.verify().problems.join('\n')).toBe('')
    // The figures in memory are the figures a reopen computes from the log.
    const liveBefore = db.stats().liveBytes
    await db.close()
    const reopened = openOnDomain(domain, { backgroundCompaction: false })
    expect(reopened.stats().liveBytes).toBe(liveBefore)
    expect(reopened.has('k')).toBe(false)
  })

  it('a deleted key never comes back after its tombstone is compacted away, through reopen and crash', async () => {
    const domain = new SimulatedDomain(512 * KiB)
    const db = openOnDomain(domain, { segmentSize: '64KiB', backgroundCompaction: false })
    const model = new Map<string, unknown>()
    // Old versions of the victims sit in the first segments; then they are deleted; then more churn.
    for (let i = 0; i < 10; i++) {
      db.putSync(`victim${i}`, 'old'.repeat(500))
      db.putSync(`victim${i}`, 'older'.repeat(400))
    }
    churn(db, model, SEED + 1, 80)
    for (let i = 0; i < 10; i++) db.delSync(`victim${i}`)
    churn(db, model, SEED + 2, 120)
    await compactBounded(db)
    churn(db, model, SEED + 3, 60)
    await compactBounded(db)
    expect(db.stats().compactions).toBeGreaterThan(1)
    for (let i = 0; i < 10; i++) expect(db.get(`victim${i}`), seedNote()).toBeUndefined()
    expect(entries(db), seedNote()).toEqual(sorted(model))
    const crashed = reboot(domain.durableImage())
    expect(entries(crashed), seedNote('after a crash')).toEqual(sorted(model))
    await db.close()
    const reopened = openOnDomain(domain, {})
    expect(entries(reopened), seedNote('after a reopen')).toEqual(sorted(model))
    expect(reopened.verify().problems.join('\n')).toBe('')
  })

  for (const granularity of ['cache-line', 'page'] as const) {
    it(`a crash at any store, flush or drain of compact() recovers the same data (${granularity})`, async () => {
      const next = random(SEED + 4)
      const domain = new SimulatedDomain(512 * KiB, granularity)
      const db = openOnDomain(domain, { segmentSize: '64KiB', backgroundCompaction: false })
      const model = new Map<string, unknown>()
      // A key written once between bursts of churn keeps live data in every segment, so cleaning any victim
      // copies records (without it, some seeds clean only segments that hold nothing but garbage).
      for (let part = 0; part < 10; part++) {
        churn(db, model, SEED + 5 + part, 15, 1500)
        db.putSync(`pinned${part}`, 'p'.repeat(300))
        model.set(`pinned${part}`, 'p'.repeat(300))
      }
      const expected = sorted(model)
      let crashPoints = 0
      domain.onEvent = (kind) => {
        const image = crashPoints % 2 === 0 ? domain.crashImage(() => next() < 0.5) : domain.durableImage()
        const recovered = reboot(image, granularity)
        expect(entries(recovered), seedNote(`crash ${crashPoints} at a ${kind} during compaction`)).toEqual(expected)
        crashPoints++
      }
      const result = await compactBounded(db)
      domain.onEvent = undefined
      expect(result.segmentsCleaned, seedNote()).toBeGreaterThan(0)
      expect(result.bytesCopied, seedNote()).toBeGreaterThan(0)
      expect(crashPoints, seedNote()).toBeGreaterThan(10)
      // And the store goes on: reused segments never bring back what they held before.
      churn(db, model, SEED + 6, 100, 1500)
      expect(entries(reboot(domain.durableImage(), granularity)), seedNote('after reuse')).toEqual(sorted(model))
    })
  }

  it('writes after compaction reuse freed segments, and a crash at any point of reopening one keeps the data', () => {
    const next = random(SEED + 7)
    const domain = new SimulatedDomain(256 * KiB)
    // No growth: space must come from freed segments.
    const db = openOnDomain(domain, { segmentSize: '64KiB', autoGrow: false, backgroundCompaction: false })
    const model = new Map<string, unknown>()
    let crashPoints = 0
    for (let round = 0; round < 6; round++) {
      const expectedBefore = sorted(model)
      const key = `big${round % 3}`
      const value = String(round).repeat(30_000)
      const afterModel = new Map(model)
      afterModel.set(key, value)
      const expectedAfter = sorted(afterModel)
      domain.onEvent = () => {
        const got = entries(reboot(domain.crashImage(() => next() < 0.5)))
        const ok = JSON.stringify(got) === JSON.stringify(expectedBefore) || JSON.stringify(got) === JSON.stringify(expectedAfter)
        expect(ok, seedNote(`round ${round}, crash ${crashPoints}: neither before nor after`)).toBe(true)
        crashPoints++
      }
      db.putSync(key, value)
      domain.onEvent = undefined
      model.set(key, value)
    }
    expect(db.stats().compactions, 'the rounds should reuse compacted segments').toBeGreaterThan(0)
    expect(entries(reboot(domain.durableImage()))).toEqual(sorted(model))
  })

  it('with backgroundCompaction off nothing is cleaned until compact(); with it on, idle turns clean garbage', async () => {
    const model = new Map<string, unknown>()
    const off = openOnDomain(new SimulatedDomain(1024 * KiB), { segmentSize: '64KiB', backgroundCompaction: false })
    churn(off, model, SEED + 8, 300)
    for (let i = 0; i < 50; i++) await new Promise<void>((resolve) => setImmediate(resolve))
    expect(off.stats().compactions).toBe(0)
    const on = openOnDomain(new SimulatedDomain(1024 * KiB), { segmentSize: '64KiB' })
    const model2 = new Map<string, unknown>()
    churn(on, model2, SEED + 8, 300)
    await on.put('kick', 1)
    model2.set('kick', 1)
    for (let i = 0; i < 200 && on.stats().compactions === 0; i++) await new Promise<void>((resolve) => setImmediate(resolve))
    expect(on.stats().compactions, seedNote()).toBeGreaterThan(0)
    expect(entries(on), seedNote()).toEqual(sorted(model2))
  })
})

describe('growth', () => {
  it('a real daxfile grows by whole preallocated segments up to maxSize, and reopens at its new size with all its data', async () => {
    const file = path.join(tempDir(), 'db.dax')
    const db = await open<string>(file, { size: '256KiB', segmentSize: '64KiB', maxSize: '1MiB', valueEncoding: 'utf8' })
    const model = new Map<string, string>()
    let refused: unknown
    for (let i = 0; i < 200 && refused === undefined; i++) {
      try {
        db.putSync(`g${i}`, String(i).padEnd(8000, '.'))
        model.set(`g${i}`, String(i).padEnd(8000, '.'))
      } catch (error) {
        refused = error
      }
    }
    expect(refused).toBeInstanceOf(DaxKVError)
    expect((refused as DaxKVError).code).toBe(ErrorCode.FULL)
    const stats = db.stats()
    expect(stats.growths).toBeGreaterThan(0)
    expect(stats.fileBytes).toBeLessThanOrEqual(1024 * KiB)
    expect(stats.fileBytes % (64 * KiB)).toBe(0)
    expect(fs.statSync(file).size).toBe(stats.fileBytes)
    // The live data needs most of maxSize before the file is declared full.
    expect(model.size * 8000, 'full well before maxSize').toBeGreaterThan(0.7 * 1024 * KiB)
    await db.close()
    const again = await open<string>(file, { maxSize: '1MiB', valueEncoding: 'utf8' })
    expect(again.stats().fileBytes).toBe(stats.fileBytes)
    expect(entries(again)).toEqual(sorted(model))
    expect(again.verify().problems.join('\n')).toBe('')
    await again.close()
  })
})
