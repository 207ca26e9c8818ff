import { describe, expect, it } from 'vitest'
import { runPowerFailureCampaign, type PowerFailureResult } from '../../src/crash/power-failure.js'
import type { CommitFault } from '../../src/crash/broken-commits.js'
import { SEED as baseSeed } from '../helpers.js'

function summary(r: PowerFailureResult): string {
  return `seed ${r.seed} (${r.granularity}): ${r.stepsRun} steps, ${r.crashPoints} crash points, ${r.images} images, ` +
    `${r.recoveries} recoveries, ${r.recoveryCrashImages} recovery-crash images, ${r.compactions} compactions, ${r.growths} growths, ` +
    `${r.tombstonesDropped} tombstones dropped, ${r.violations.length} violations, ${Math.round(r.durationMs)} ms` +
    r.violations.map((v) => `\n  event ${v.event} (${v.eventKind}), in flight ${v.inFlight.join(',')}: ${v.invariant}: ${v.explanation} [${v.image}]`).join('')
}

describe('simulated power failure', () => {
  for (const granularity of ['cache-line', 'page'] as const) {
    it(`${granularity}: every crash image of a mixed workload recovers to an allowed state`, async () => {
      const r = await runPowerFailureCampaign({ seed: baseSeed, steps: 120, granularity })
      console.log(summary(r))
      expect(r.violations, summary(r)).toEqual([])
      expect(r.images, summary(r)).toBeGreaterThan(500)
    })
  }

  for (const granularity of ['cache-line', 'page'] as const) {
    it(`${granularity}: compaction, tombstones and growth under crashes never lose or resurrect a key`, async () => {
      const r = await runPowerFailureCampaign({
        seed: baseSeed + 1,
        steps: 160,
        granularity,
        fileBytes: 128 * 1024,
        maxFileBytes: 1024 * 1024,
        shape: { compactRatio: 0.04, deleteRatio: 0.3, keys: 40 },
        samplesPerPoint: 3,
        exhaustiveUnits: 6,
      })
      console.log(summary(r))
      expect(r.violations, summary(r)).toEqual([])
      expect(r.images, summary(r)).toBeGreaterThan(300)
      expect(r.compactions, `the workload compacted: ${summary(r)}`).toBeGreaterThan(0)
      expect(r.growths, `the workload grew the file: ${summary(r)}`).toBeGreaterThan(0)
    })
  }

  // The broken protocols of src/crash/broken-commits.ts: each must be caught.
  const mutations: { fault: CommitFault; granularity: 'cache-line' | 'page' }[] = [
    { fault: 'skipDataDrain', granularity: 'cache-line' },
    { fault: 'markerBeforeData', granularity: 'cache-line' },
    { fault: 'flushOneLineShort', granularity: 'cache-line' },
    { fault: 'skipMarkerDrain', granularity: 'cache-line' },
    { fault: 'skipMarkerDrain', granularity: 'page' },
  ]
  for (const { fault, granularity } of mutations) {
    it(`catches the broken protocol: ${fault} (${granularity})`, async () => {
      const r = await runPowerFailureCampaign({ seed: baseSeed, steps: 60, granularity, maxViolations: 1, fault })
      console.log(`${fault}: ${summary(r)}`)
      expect(r.violations.length, summary(r)).toBeGreaterThan(0)
    })
  }
})
