import { describe, expect, it } from 'vitest'
import type { DaxKV } from '../../src/db.js'
import { openOnDomain } from '../../src/crash/open-on-domain.js'
import { applyStep, candidateStates, firstDifference, judge, type State } from '../../src/crash/model.js'
import { makeWorkload, runStepSync, type Step } from '../../src/crash/workload.js'
import { Random } from '../../src/crash/random.js'
import { SimulatedDomain } from '../../src/platform/simulated-domain.js'
import { SEED as baseSeed } from '../helpers.js'

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

describe('process crash during cleaning or growth, then more writes, then power failure', () => {
  const spaceOptions = {
    valueEncoding: 'binary',
    cacheSize: 0,
    segmentSize: 64 * 1024,
    autoGrow: true,
    maxSize: 1024 * 1024,
    backgroundCompaction: false,
  } as const

  async function runSteps(db: DaxKV<Buffer>, steps: readonly Step[], acked: State, inFlight: Step[]): Promise<void> {
    for (const step of steps) {
      if (step.kind === 'compact') {
        await db.compact()
        continue
      }
      inFlight.push(step)
      runStepSync(db, step)
      inFlight.pop()
      applyStep(acked, step)
    }
  }

  function stateOf(db: DaxKV<Buffer>): State {
    return new Map([...db.range()].map(([k, v]) => [k as string, v]))
  }

  for (const granularity of ['cache-line', 'page'] as const) {
    it(`${granularity}: what the second process acknowledged survives, and no deleted key returns`, async () => {
      const shape = { compactRatio: 0.06, deleteRatio: 0.3, keys: 30, syncRatio: 1 }
      for (let round = 0; round < 25; round++) {
        const seed = baseSeed + 1000 + round
        const random = new Random(seed)
        const first = new SimulatedDomain(128 * 1024, granularity)
        const db1 = openOnDomain<Buffer>(first, spaceOptions)
        const acked: State = new Map()
        const inFlight: Step[] = []
        // Kill right after the n-th store to file metadata (a superblock
        // copy, a segment header or free mark) or to a whole segment body
        // (zeroing): the narrow windows before their persist.
        const segmentBytes = spaceOptions.segmentSize
        let metadataStores = 0
        const killAfter = random.int(1, 12)
        first.onEvent = (kind, offset, length) => {
          if (kind !== 'store') return
          const metadata = offset < 8192 || offset === 8192 || offset % segmentBytes === 0 || length >= segmentBytes - 8192
          if (metadata && ++metadataStores >= killAfter) throw new Killed()
        }
        try {
          await runSteps(db1, makeWorkload(seed, 150, shape), acked, inFlight)
        } catch (error) {
          if (!(error instanceof Killed) && !(error instanceof Error && error.cause instanceof Killed)) throw error
        }
        first.onEvent = undefined
        const second = first.afterProcessCrash()
        const db2 = openOnDomain<Buffer>(second, spaceOptions)
        const recovered = stateOf(db2)
        const candidates = candidateStates(acked, inFlight)
        expect(judge(recovered, acked, inFlight, candidates), `seed ${seed}: first process`).toBeUndefined()
        const expected: State = new Map(recovered)
        await runSteps(db2, makeWorkload(seed + 7, 60, shape, 150), expected, [])
        const image = second.crashImage(() => random.chance(0.5))
        const db3 = openOnDomain<Buffer>(SimulatedDomain.fromImage(image, granularity), spaceOptions)
        expect(firstDifference(expected, stateOf(db3)), `seed ${seed}: after the power failure`).toBeUndefined()
        expect(db3.verify().problems, `seed ${seed}`).toEqual([])
      }
    })
  }
})
