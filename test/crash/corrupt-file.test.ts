/**
 * The corrupt-file campaign (src/crash/corrupt/): a seeded sample of
 * damaged files must all end in a typed error or a correct state, and the
 * judge must catch each kind of wrong outcome it exists to catch.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCorruptCampaign, type CorruptCampaignResult } from '../../src/crash/corrupt/campaign.js'
import { judge, RSS_LIMIT_BYTES, type JudgedCase } from '../../src/crash/corrupt/judge.js'
import { mapDaxfile } from '../../src/crash/corrupt/layout.js'
import type { CaseRun } from '../../src/crash/corrupt/pool.js'
import type { CaseReply } from '../../src/crash/corrupt/protocol.js'
import { buildBase } from '../../src/crash/corrupt/stores.js'
import { SEED, tempDir } from '../helpers.js'

const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()

function summary(r: CorruptCampaignResult): string {
  const rows = Object.entries(r.table).map(([c, row]) => `\n  ${c}: ${JSON.stringify(row)}`)
  const violations = r.violations.map((v) => `\n  VIOLATION case ${v.case} (${v.shape}, ${v.damageClass}: ${v.detail}): ${v.invariant}: ${v.explanation}`)
  return `seed ${r.seed}: ${r.cases} cases ${JSON.stringify(r.casesPerShape)}, skipped ${JSON.stringify(r.basesSkipped)}, ${Math.round(r.durationMs)} ms (replay: DAXKV_TEST_SEED=${r.seed})${rows.join('')}${violations.join('')}`
}

function total(r: CorruptCampaignResult, outcome: string): number {
  return Object.values(r.table).reduce((n, row) => n + ((row as Record<string, number>)[outcome] ?? 0), 0)
}

describe('corrupt-file campaign', () => {
  it(`${shm}: a seeded sample of damaged files all end in a typed error or a correct state`, async () => {
    const r = await runCorruptCampaign({ dir: tempDir(shm), seed: SEED, cases: 600, mode: 'msync' })
    console.log(summary(r))
    expect(r.violations, summary(r)).toEqual([])
    expect(r.cases, summary(r)).toBe(600)
    for (const shape of ['small', 'multi-segment', 'compacted', 'grown', 'killed'] as const) expect(r.casesPerShape[shape], `${shape}: ${summary(r)}`).toBeGreaterThan(50)
    // The damage must reach every kind of outcome, or the sample proves little.
    expect(total(r, 'refused at open'), summary(r)).toBeGreaterThan(100)
    expect(total(r, 'opened intact'), summary(r)).toBeGreaterThan(100)
    expect(total(r, 'opened, torn tail cut'), summary(r)).toBeGreaterThan(0)
    expect(Object.keys(r.table).length, summary(r)).toBeGreaterThan(25)
  })

  it(`${os.tmpdir()}: the same on the disk filesystem`, async () => {
    const r = await runCorruptCampaign({ dir: tempDir(os.tmpdir()), seed: SEED + 1, cases: 120, mode: 'msync' })
    expect(r.violations, summary(r)).toEqual([])
    expect(r.cases, summary(r)).toBe(120)
  })
})

describe('the corrupt-file judge', async () => {
  const base = await buildBase('small', path.join(tempDir(shm), 'small'), SEED, 'msync')
  const layout = mapDaxfile(base.image)
  const reference = base.acknowledged!
  const lastBatch = layout.batches.at(-1)!
  const tailKey = lastBatch.records[0]!.key
  const keptKey = [...reference.keys()].find((k) => !lastBatch.records.some((r) => r.key === k))!
  const unusedEnd = layout.segments.find((s) => s.state === 'used')!.unusedEnd!
  const note = `seed ${SEED}`

  function reply(entries: Map<string, string>, more: Partial<CaseReply> = {}): CaseRun {
    return { kind: 'reply', reply: { opened: true, entries: [...entries], getMismatches: [], problems: [], error: undefined, maxRssBytes: 1e8, ...more } }
  }
  function damaged(change: (image: Buffer) => void, more: Partial<JudgedCase> = {}): JudgedCase {
    const image = Buffer.from(base.image)
    change(image)
    return { base, layout, reference, damageClass: 'test', image, index: { kind: 'absent' }, forged: false, ...more }
  }
  const without = (key: string): Map<string, string> => new Map([...reference].filter(([k]) => k !== key))
  const flipUnusedEnd = (image: Buffer): void => void (image[unusedEnd.start + 1] = image[unusedEnd.start + 1]! ^ 1)
  const zeroLastBatch = (image: Buffer): void => void image.fill(0, lastBatch.start, lastBatch.end)

  it('finds the keys it needs in the base store', () => {
    expect(reference.size, note).toBeGreaterThan(2)
    expect(keptKey, note).toBeDefined()
    expect(unusedEnd.end, note).toBeGreaterThan(unusedEnd.start + 1)
  })

  it('passes the undamaged state, and a torn tail the damage touched', () => {
    expect(judge(damaged(flipUnusedEnd), reply(new Map(reference))).outcome, note).toBe('opened intact')
    const tail = judge(damaged(zeroLastBatch), reply(without(tailKey)))
    // The key may have had its last value before this batch too: then its loss is a rollback, also allowed.
    expect(tail.outcome, `${note}: ${tail.explanation}`).toBe(reference.has(tailKey) ? 'opened, torn tail cut' : 'opened intact')
  })

  it('reports a loss the damage did not touch, and a torn tail the recorded checkpoint covers', () => {
    const lost = judge(damaged(flipUnusedEnd), reply(without(keptKey)))
    expect(lost.outcome, note).toBe('violation')
    expect(lost.explanation, note).toContain('silently lost')
    if (base.index !== undefined && reference.has(tailKey)) {
      const covered = judge(damaged(zeroLastBatch, { index: { kind: 'bytes', bytes: base.index } }), reply(without(tailKey)))
      expect(covered.outcome, note).toBe('violation')
    }
  })

  it('reports a resurrected key, and a value the key never had', () => {
    const value = reference.get(keptKey)!
    const resurrected = judge({ ...damaged(flipUnusedEnd), reference: without(keptKey) }, reply(new Map(reference)))
    expect(resurrected.explanation, note).toContain('resurrected')
    const wrong = judge(damaged(flipUnusedEnd), reply(new Map([...reference, [keptKey, `${value}0`]])))
    expect(wrong.explanation, note).toContain('a value it never had')
  })

  it('reports a hang, a crash, an untyped error, an unbounded allocation and get() disagreeing with range()', () => {
    const c = damaged(flipUnusedEnd)
    expect(judge(c, { kind: 'hang', ms: 20_000 }).invariant).toContain('hang')
    expect(judge(c, { kind: 'died', how: 'killed by SIGSEGV', stderr: '' }).invariant).toContain('crashes')
    const untyped = reply(new Map(), { opened: false, error: { stage: 'open', code: undefined, message: 'RangeError' } })
    expect(judge(c, untyped).invariant).toContain('typed')
    expect(judge(c, reply(new Map(reference), { maxRssBytes: RSS_LIMIT_BYTES + 1 })).invariant).toContain('allocates')
    expect(judge(c, reply(new Map(reference), { getMismatches: [keptKey] })).invariant).toContain('get()')
    const typed = reply(new Map(), { opened: false, error: { stage: 'open', code: 'DAXKV_CORRUPTION', message: 'x' } })
    expect(judge(c, typed).outcome).toBe('refused at open')
  })

  it('counts a forged checkpoint that is believed apart, and still catches a hang with one', () => {
    const forged = damaged(() => undefined, { forged: true })
    expect(judge(forged, reply(without(keptKey))).outcome, note).toBe('opened, forged checkpoint believed')
    expect(judge(forged, { kind: 'hang', ms: 1 }).outcome).toBe('violation')
  })
})
