/**
 * The space policy's two liveness promises (docs/space.md): background
 * cleaning stops by itself, so an idle store does no work; and a full
 * store never wedges: deletes always succeed, and deleting and compacting
 * always ends with room for puts again.
 */
import { describe, expect, it } from 'vitest'
import { openOnDomain } from '../src/crash/open-on-domain.js'
import { Random } from '../src/crash/random.js'
import { DaxKVError, ErrorCode, open, type DaxKV } from '../src/index.js'
import type { PersistenceDomain } from '../src/platform/domain.js'
import { SimulatedDomain } from '../src/platform/simulated-domain.js'
import { seedNote, SEED, tempDir } from './helpers.js'

const KiB = 1024
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until background cleaning has had time to run, then checks it does nothing more while the store is idle. */
async function expectIdle(db: DaxKV, context: string): Promise<void> {
  await sleep(300)
  const before = db.stats()
  await sleep(700)
  const after = db.stats()
  expect(
    { compactions: after.compactions, bytesCopied: after.bytesCopied },
    `${context}: the idle store kept cleaning (${after.compactions - before.compactions} cleanings, ${after.bytesCopied - before.bytesCopied} bytes copied in 0.7 s)`,
  ).toEqual({ compactions: before.compactions, bytesCopied: before.bytesCopied })
}

function isFull(error: unknown): boolean {
  return error instanceof DaxKVError && error.code === ErrorCode.FULL
}

describe('background cleaning stops on an idle store', () => {
  it('after values of 1.4 MB (a segment holds two, with room for neither a third nor cleaning gains)', async () => {
    const db = await open<Uint8Array>(`${tempDir('/dev/shm')}/big.dax`, { valueEncoding: 'binary' })
    const value = Buffer.alloc(1_468_006, 7)
    for (let i = 0; i < 30; i++) await db.put(`k${i}`, value)
    await expectIdle(db, 'big values')
    expect(db.count).toBe(30)
    await db.close()
  })

  it('after 3,000 small puts in a 512 KiB file, and after deleting every other key', async () => {
    const db = await open<Uint8Array>(`${tempDir('/dev/shm')}/small.dax`, { size: '512KiB', valueEncoding: 'binary' })
    const value = Buffer.alloc(100, 1)
    for (let i = 0; i < 3000; i++) await db.put(`k${i}`, value)
    await expectIdle(db, 'small puts')
    const copiedBefore = db.stats().bytesCopied
    for (let i = 0; i < 3000; i += 2) await db.del(`k${i}`)
    const copied = db.stats().bytesCopied - copiedBefore
    await expectIdle(db, 'after deletes')
    // Cleaning for 1,500 deletes of 128-byte records: far less than a segment per delete.
    expect(copied / 1500, `bytes copied per delete (${copied} in all)`).toBeLessThan(2 * KiB)
    expect(db.verify().problems).toEqual([])
    await db.close()
  })
})

describe('a full store does not wedge', () => {
  it('deleting every other key of a store filled until DAXKV_FULL succeeds, and puts work again after compact()', async () => {
    const db = await open<Uint8Array>(`${tempDir('/dev/shm')}/full.dax`, { size: '512KiB', segmentSize: '64KiB', autoGrow: false, valueEncoding: 'binary' })
    const value = Buffer.alloc(100, 3)
    let n = 0
    for (;;) {
      try {
        await db.put(`k${n}`, value)
        n++
      } catch (error) {
        expect(isFull(error), String(error)).toBe(true)
        break
      }
    }
    expect(n).toBeGreaterThan(2000)
    for (let i = 0; i < n; i += 2) await db.del(`k${i}`)
    expect(db.count).toBe(Math.floor(n / 2))
    await db.compact()
    for (let i = 0; i < 100; i++) await db.put(`again${i}`, value)
    for (let i = 1; i < n; i += 2) expect(db.get(`k${i}`), `k${i}`).toEqual(value)
    expect(db.verify().problems).toEqual([])
    await db.close()
  })

  it('random fills, then deletes in random order and groups: no delete ever fails, and the emptied store takes puts again', async () => {
    const random = new Random(SEED ^ 0x3c6ef372)
    for (let round = 0; round < 12; round++) {
      const context = seedNote(`round ${round}`)
      const segments = random.int(4, 16)
      const db = openOnDomain<Uint8Array>(new SimulatedDomain(segments * 64 * KiB), {
        segmentSize: '64KiB',
        autoGrow: false,
        valueEncoding: 'binary',
        cacheSize: 0,
        backgroundCompaction: random.chance(0.5),
      })
      const valueMax = random.pick([0, 16, 300, 3000])
      // Half the rounds fill the store until DAXKV_FULL, the others stop at a random level.
      const puts = random.chance(0.5) ? Number.POSITIVE_INFINITY : random.int(1, 600)
      const keys: string[] = []
      // Fill, overwriting some keys on the way.
      for (let i = 0; i < puts; i++) {
        const key = random.chance(0.2) && keys.length > 0 ? random.pick(keys) : `key-${i}-${'x'.repeat(random.int(0, 40))}`
        try {
          db.putSync(key, Buffer.alloc(random.int(0, valueMax), i & 0xff))
        } catch (error) {
          expect(isFull(error), `${context}: ${String(error)}`).toBe(true)
          break
        }
        if (!keys.includes(key)) keys.push(key)
      }
      // Delete everything, in random order: one at a time, in batches, and some in one tick.
      const order = keys.map((key) => ({ key, r: random.next() })).sort((a, b) => a.r - b.r).map(({ key }) => key)
      let i = 0
      while (i < order.length) {
        const group = order.slice(i, i + random.int(1, 8))
        i += group.length
        const how = random.int(0, 3)
        try {
          if (how === 0) for (const key of group) db.delSync(key)
          else if (how === 1) db.batchSync(group.map((key) => ({ type: 'del', key })))
          else if (how === 2) await Promise.all(group.map((key) => db.del(key)))
          else await db.batch(group.map((key) => ({ type: 'del', key })))
        } catch (error) {
          throw new Error(`${context}: deleting key ${i} of ${order.length} (${segments} segments, values up to ${valueMax} bytes) failed: ${String(error)}`)
        }
        if (random.chance(0.02)) await db.compact()
      }
      expect(db.count, context).toBe(0)
      await db.compact()
      await db.compact()
      for (let k = 0; k < 20; k++) db.putSync(`after-${k}`, Buffer.alloc(64, k))
      expect(db.count, context).toBe(20)
      expect(db.verify().problems, context).toEqual([])
      await db.close()
    }
  })

  it('says the filesystem is out of space, not that the file is at its maximum, when growth cannot allocate', async () => {
    const domain = new SimulatedDomain(256 * KiB)
    const refusing: PersistenceDomain = new Proxy(domain, {
      get(target, property) {
        if (property === 'grow') {
          return () => {
            throw new DaxKVError(ErrorCode.FULL, 'not enough disk space to allocate 65536 bytes for the daxfile (simulated ENOSPC)')
          }
        }
        const member = Reflect.get(target, property) as unknown
        return typeof member === 'function' ? (member as (...args: unknown[]) => unknown).bind(target) : member
      },
    })
    const db = openOnDomain<Uint8Array>(refusing, { segmentSize: '64KiB', maxSize: '64MiB', valueEncoding: 'binary' })
    let failure: unknown
    for (let i = 0; i < 10_000 && failure === undefined; i++) {
      try {
        db.putSync(`k${i}`, Buffer.alloc(200))
      } catch (error) {
        failure = error
      }
    }
    expect(isFull(failure), String(failure)).toBe(true)
    const message = (failure as Error).message
    expect(message).toContain('the filesystem has no space left')
    expect(message).not.toContain('maximum size')
  })
})
