import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkRecovered, readAckLog } from '../../src/crash/kill-check.js'
import { runKillChild } from '../../src/crash/kill-runner.js'
import { KILL_SHAPE } from '../../src/crash/kill-settings.js'
import { runKillCampaign, type KillCampaignResult } from '../../src/crash/process-kill.js'
import { makeWorkload } from '../../src/crash/workload.js'
import { SEED as baseSeed, tempDir } from '../helpers.js'

function summary(r: KillCampaignResult): string {
  return `seed ${r.seed} (${r.mode}): ${r.rounds} rounds, ${r.roundsKilled} killed, ${r.roundsInterrupted} with steps in flight, ` +
    `${r.files} files, ${r.stepsIssued} steps issued, ${r.stepsAcknowledged} acknowledged, in flight: ${r.inFlightApplied} applied, ` +
    `${r.inFlightNotApplied} not applied, ${r.reopensFromCheckpoint} reopened from the index checkpoint, ${r.violations.length} violations, ${Math.round(r.durationMs)} ms (replay: DAXKV_TEST_SEED=${r.seed})` +
    r.violations.map((v) => `\n  ${v.invariant}: ${v.explanation}`).join('')
}

const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()

describe('process kill', () => {
  it(`${shm}: every acknowledged write survives a SIGKILL, and in-flight steps recover as a prefix`, async () => {
    const r = await runKillCampaign({ dir: tempDir(shm), rounds: 20, seed: baseSeed, mode: 'msync' })
    console.log(summary(r))
    expect(r.violations, summary(r)).toEqual([])
    expect(r.rounds, summary(r)).toBe(20)
    // The kills must land while work is going on, or the campaign proves nothing.
    expect(r.roundsKilled, summary(r)).toBeGreaterThan(12)
    expect(r.roundsInterrupted, summary(r)).toBeGreaterThan(0)
    expect(r.stepsAcknowledged, summary(r)).toBeGreaterThan(r.rounds)
  })

  it(`${os.tmpdir()}: the same on the disk filesystem`, async () => {
    const r = await runKillCampaign({ dir: tempDir(os.tmpdir()), rounds: 5, seed: baseSeed + 1, mode: 'msync' })
    console.log(summary(r))
    expect(r.violations, summary(r)).toEqual([])
    expect(r.roundsKilled, summary(r)).toBeGreaterThan(0)
  })

  it('negative control: a claimed acknowledgement of a write that never happened is reported', async () => {
    const dir = tempDir(shm)
    const file = path.join(dir, 'kill.dax')
    const ackFile = path.join(dir, 'kill.acks')
    const replay = `seed ${baseSeed} (replay: DAXKV_TEST_SEED=${baseSeed})`
    const run = await runKillChild({ file, ackFile, seed: baseSeed, firstIndex: 0, mode: 'msync', delayMs: 5 })
    expect(['killed', 'done'], `${replay}: ${run.stderr}`).toContain(run.ended)
    const honest = readAckLog(ackFile)
    const clean = await checkRecovered({ file, mode: 'msync', seed: baseSeed, base: new Map(), acks: honest })
    expect(clean.problem, replay).toBeUndefined()

    // Claim that a later put was acknowledged. Its value carries its own step
    // index, so no write that did happen can stand in for it; its key is one
    // no in-flight step touches, so no allowed prefix can explain it either.
    const next = honest.issued.length === 0 ? 0 : Math.max(...honest.issued) + 1
    const inFlightKeys = new Set(
      makeWorkload(baseSeed, Math.max(next, 1), KILL_SHAPE)
        .filter((s) => honest.issued.includes(s.index) && !honest.acknowledged.has(s.index))
        .flatMap((s) => s.changes.map(([key]) => key)),
    )
    const phantom = makeWorkload(baseSeed, 500, KILL_SHAPE, next).find(
      (s) => s.kind === 'put' && s.changes[0]![1]!.length >= 16 && !inFlightKeys.has(s.changes[0]![0]),
    )!
    fs.appendFileSync(ackFile, `I ${phantom.index}\nA ${phantom.index}\n`)
    const check = await checkRecovered({ file, mode: 'msync', seed: baseSeed, base: new Map(), acks: readAckLog(ackFile) })
    // The key holds whatever it held before (absent, or an earlier value,
    // which the checker names a lost write, or a torn one when that value is
    // too short to carry its step's tag): either way the phantom's value is
    // reported as missing.
    const found = `${replay}, phantom step ${phantom.index}: ${check.problem?.invariant}: ${check.problem?.explanation}`
    expect(check.problem, found).toBeDefined()
    expect(['(1) every acknowledged write is present', '(3) no value is torn'], found).toContain(check.problem?.invariant)
    expect(check.problem?.explanation, found).toContain(`written by step ${phantom.index} (acknowledged)`)
  })

  it('negative control: damage to an acknowledged batch is reported', async () => {
    const dir = tempDir(shm)
    const file = path.join(dir, 'kill.dax')
    const ackFile = path.join(dir, 'kill.acks')
    // A child that runs a few steps to the end, so every one is acknowledged.
    const replay = `seed ${baseSeed} (replay: DAXKV_TEST_SEED=${baseSeed})`
    const run = await runKillChild({ file, ackFile, seed: baseSeed, firstIndex: 0, mode: 'msync', delayMs: 10_000, stepsMax: 8 })
    expect(run.ended, `${replay}: ${run.stderr}`).toBe('done')
    const acks = readAckLog(ackFile)
    expect(acks.acknowledged.size, replay).toBe(8)
    // Flip one byte inside the first batch (past the superblocks and the
    // first segment header): its checksum fails, and recovery may not keep
    // what follows, so acknowledged writes are missing.
    const fd = fs.openSync(file, 'r+')
    const at = 8192 + 64 + 40
    const byte = Buffer.alloc(1)
    fs.readSync(fd, byte, 0, 1, at)
    byte[0]! ^= 0xff
    fs.writeSync(fd, byte, 0, 1, at)
    fs.closeSync(fd)
    const check = await checkRecovered({ file, mode: 'msync', seed: baseSeed, base: new Map(), acks })
    expect(check.problem, `the checker must notice lost acknowledged writes; ${replay}`).toBeDefined()
  })
})
