import { describe, expect, it } from 'vitest'
import { openOnDomain } from '../../src/db.js'
import { Random } from '../../src/crash/random.js'
import { SimulatedDomain } from '../../src/platform/simulated-domain.js'

const baseSeed = Number(process.env.DAXKV_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31))
const options = { valueEncoding: 'utf8', cacheSize: 0, segmentSize: 64 * 1024 } as const

class Killed extends Error {}

/**
 * A process killed in the middle of a commit leaves batches that exist only
 * in caches. The next process recovers them and acknowledges new writes
 * after them; a power failure after that must not lose any of those
 * acknowledged writes (recovery makes the replayed log durable first).
 */
describe('process crash, then more writes, then power failure', () => {
  for (const granularity of ['cache-line', 'page'] as const) {
    for (const sync of [true, false]) {
      it(`${granularity}, first process sync: ${sync}: writes acknowledged by the second process survive`, () => {
        for (let round = 0; round < 40; round++) {
          const seed = baseSeed + round
          const random = new Random(seed)
          const first = new SimulatedDomain(512 * 1024, granularity)
          const db1 = openOnDomain<string>(first, { ...options, sync })
          const killAt = first.stores + first.flushes + first.drains + random.int(1, 60)
          first.onEvent = () => {
            if (first.stores + first.flushes + first.drains >= killAt) throw new Killed()
          }
          try {
            for (let i = 0; i < 50; i++) db1.putSync(`a${i % 7}`, `first-${i}-${'x'.repeat(random.int(0, 300))}`)
          } catch (error) {
            // The kill surfaces as the store's I/O error wrapping Killed.
            if (!(error instanceof Killed) && !(error instanceof Error && error.cause instanceof Killed)) throw error
          }
          first.onEvent = undefined
          const second = first.afterProcessCrash()
          const db2 = openOnDomain<string>(second, options)
          const acknowledged = new Map<string, string>()
          for (let i = 0; i < 30; i++) {
            const key = `b${i % 5}`
            const value = `second-${i}-${'y'.repeat(random.int(0, 300))}`
            db2.putSync(key, value)
            acknowledged.set(key, value)
          }
          const image = second.crashImage(() => random.chance(0.5))
          const db3 = openOnDomain<string>(SimulatedDomain.fromImage(image, granularity), options)
          for (const [key, value] of acknowledged) {
            expect(db3.get(key), `seed ${seed}: key ${key} acknowledged by the second process`).toBe(value)
          }
          expect(db3.verify().problems, `seed ${seed}`).toEqual([])
        }
      })
    }
  }
})
