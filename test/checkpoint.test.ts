/**
 * The index checkpoint (`<daxfile>.index`): a clean close writes it, the
 * next open loads the index from it instead of replaying the log, and any
 * sign that the log moved on since (a crash after more writes, a torn
 * batch, compaction, growth), or any damage to the file, makes open replay
 * the log instead. The state must be the same either way.
 */
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkpointPath } from '../src/db.js'
import { SEGMENT_MAGIC } from '../src/format/constants.js'
import { segmentDataOffset, segmentEndOffset, segmentHeaderOffset } from '../src/format/segment.js'
import { readU64 } from '../src/format/u64.js'
import { open, type DaxKV, type OpenOptions } from '../src/index.js'
import { below, entries, random, seedNote, SEED, tempDir } from './helpers.js'

const OPTIONS: OpenOptions = { size: '1MiB', segmentSize: '64KiB', backgroundCompaction: false, valueEncoding: 'utf8' }

/** Puts, overwrites and deletes over a small key space; returns the model. */
function churn(db: DaxKV<string>, model: Map<string, string>, seed: number, writes: number): void {
  const next = random(seed)
  for (let i = 0; i < writes; i++) {
    const key = `k${String(below(next, 60)).padStart(3, '0')}`
    if (next() < 0.2) {
      db.delSync(key)
      model.delete(key)
    } else {
      const value = `${i}:`.padEnd(20 + below(next, 1500), 'v')
      db.putSync(key, value)
      model.set(key, value)
    }
  }
}

function sorted(model: Map<string, string>): [string, string][] {
  return [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

/** What must not depend on how the index was rebuilt. */
function state(db: DaxKV<string>) {
  const s = db.stats()
  return {
    entries: entries(db),
    count: db.count,
    liveBytes: s.liveBytes,
    usedBytes: s.usedBytes,
    segmentsInUse: s.segmentsInUse,
    segmentsFree: s.segmentsFree,
  }
}

/** A copy of the daxfile and its checkpoint as they are now: what a crash of the open process would leave (tmpfs). */
function crashCopy(file: string): string {
  const copy = path.join(tempDir('/dev/shm'), 'crashed.dax')
  fs.copyFileSync(file, copy)
  if (fs.existsSync(checkpointPath(file))) fs.copyFileSync(checkpointPath(file), checkpointPath(copy))
  return copy
}

async function storeWithHistory(): Promise<{ file: string; model: Map<string, string> }> {
  const file = path.join(tempDir('/dev/shm'), 'db.dax')
  const db = await open<string>(file, OPTIONS)
  const model = new Map<string, string>()
  churn(db, model, SEED, 400)
  await db.compact()
  churn(db, model, SEED + 1, 100)
  await db.close()
  return { file, model }
}

describe('index checkpoint', () => {
  it('a clean close writes it and the next open loads it: same keys, values and accounting as a log replay', async () => {
    const { file, model } = await storeWithHistory()
    expect(fs.existsSync(checkpointPath(file))).toBe(true)
    const loaded = await open<string>(file, OPTIONS)
    expect(loaded.recovery.source).toBe('checkpoint')
    expect(loaded.recovery.checkpointRejected).toBeUndefined()
    const fromCheckpoint = state(loaded)
    expect(fromCheckpoint.entries, seedNote()).toEqual(sorted(model))
    expect(loaded.verify().problems.join('\n')).toBe('')
    await loaded.close()
    const replayed = await open<string>(file, { ...OPTIONS, indexCheckpoint: false })
    expect(replayed.recovery.source).toBe('log')
    expect(state(replayed), seedNote()).toEqual(fromCheckpoint)
    await replayed.close()
    // indexCheckpoint: false does not keep one.
    expect(fs.existsSync(checkpointPath(file))).toBe(false)
  })

  it('a store opened from its checkpoint takes writes, compaction and range scans, and closes into a new checkpoint', async () => {
    const { file, model } = await storeWithHistory()
    let db = await open<string>(file, OPTIONS)
    expect(db.recovery.source).toBe('checkpoint')
    churn(db, model, SEED + 2, 300)
    await db.compact()
    expect(entries(db), seedNote()).toEqual(sorted(model))
    expect([...db.keys({ gte: 'k010', lt: 'k020' })]).toEqual(sorted(model).map(([k]) => k).filter((k) => k >= 'k010' && k < 'k020'))
    expect(db.verify().problems.join('\n')).toBe('')
    await db.close()
    db = await open<string>(file, OPTIONS)
    expect(db.recovery.source).toBe('checkpoint')
    expect(entries(db), seedNote()).toEqual(sorted(model))
    expect(db.verify().problems.join('\n')).toBe('')
    await db.close()
  })

  it('after a crash that followed more writes, the stale checkpoint is refused and the log replayed', async () => {
    const { file, model } = await storeWithHistory()
    const db = await open<string>(file, OPTIONS)
    expect(db.recovery.source).toBe('checkpoint')
    // Writes into the head segment only: the headers stay as recorded, the head's end moves.
    db.putSync('after', 'the checkpoint')
    model.set('after', 'the checkpoint')
    db.delSync(sorted(model)[0]![0])
    model.delete(sorted(model)[0]![0])
    const copy = crashCopy(file)
    await db.close()
    const crashed = await open<string>(copy, OPTIONS)
    expect(crashed.recovery.source).toBe('log')
    expect(crashed.recovery.checkpointRejected).toMatch(/log continues after the checkpoint/)
    expect(entries(crashed), seedNote()).toEqual(sorted(model))
    // The refused checkpoint is gone, and a clean close writes a current one.
    expect(fs.existsSync(checkpointPath(copy))).toBe(false)
    await crashed.close()
    const again = await open<string>(copy, OPTIONS)
    expect(again.recovery.source).toBe('checkpoint')
    expect(entries(again), seedNote()).toEqual(sorted(model))
    await again.close()
  })

  it('a segment opened, sealed or freed after the checkpoint makes it stale', async () => {
    const { file, model } = await storeWithHistory()
    const db = await open<string>(file, OPTIONS)
    expect(db.recovery.source).toBe('checkpoint')
    const result = await db.compact()
    expect(result.segmentsCleaned, seedNote()).toBeGreaterThan(0)
    const copy = crashCopy(file)
    await db.close()
    const crashed = await open<string>(copy, OPTIONS)
    expect(crashed.recovery.source).toBe('log')
    expect(crashed.recovery.checkpointRejected).toMatch(/segment \d+ was opened, sealed or freed|log continues/)
    expect(entries(crashed), seedNote()).toEqual(sorted(model))
    await crashed.close()
  })

  it('growth after the checkpoint makes it stale', async () => {
    const file = path.join(tempDir('/dev/shm'), 'db.dax')
    let db = await open<string>(file, { ...OPTIONS, size: '256KiB' })
    db.putSync('a', 'b')
    await db.close()
    db = await open<string>(file, { ...OPTIONS, size: '256KiB' })
    expect(db.recovery.source).toBe('checkpoint')
    const model = new Map<string, string>([['a', 'b']])
    for (let i = 0; i < 300; i++) {
      db.putSync(`grow${i}`, 'g'.repeat(1000))
      model.set(`grow${i}`, 'g'.repeat(1000))
    }
    expect(db.stats().fileBytes).toBeGreaterThan(256 * 1024)
    const copy = crashCopy(file)
    await db.close()
    const crashed = await open<string>(copy, OPTIONS)
    expect(crashed.recovery.source).toBe('log')
    expect(entries(crashed)).toEqual(sorted(model))
    await crashed.close()
  })

  it('a batch torn after the recorded end is found: the log is replayed and the torn bytes cut', async () => {
    const { file, model } = await storeWithHistory()
    // Where the log ends now, from a replay (which leaves the checkpoint alone: it writes none at close).
    const probe = await open<string>(file, { ...OPTIONS, indexCheckpoint: false })
    const head = probe.stats()
    await probe.close()
    // The probe's close removed the checkpoint; write a current one.
    await (await open<string>(file, OPTIONS)).close()
    const checkpoint = fs.readFileSync(checkpointPath(file))
    // Bytes of a batch whose writer died before its marker: nonzero, invalid, right after the last batch.
    const fd = fs.openSync(file, 'r+')
    const tailAt = findLogEnd(file, head.segmentBytes)
    fs.writeSync(fd, Buffer.alloc(40, 0xa5), 0, 40, tailAt + 8)
    fs.closeSync(fd)
    expect(fs.readFileSync(checkpointPath(file)).equals(checkpoint)).toBe(true)
    const db = await open<string>(file, OPTIONS)
    expect(db.recovery.source).toBe('log')
    expect(db.recovery.checkpointRejected).toMatch(/log continues/)
    expect(db.recovery.tornTail?.offset).toBe(tailAt)
    expect(entries(db), seedNote()).toEqual(sorted(model))
    expect(db.verify().problems.join('\n')).toBe('')
    await db.close()
  })

  it('a damaged, truncated or foreign checkpoint is refused, and the data is intact', async () => {
    const { file, model } = await storeWithHistory()
    const good = fs.readFileSync(checkpointPath(file))
    const other = path.join(tempDir('/dev/shm'), 'other.dax')
    const otherDb = await open<string>(other, OPTIONS)
    otherDb.putSync('x', 'y')
    await otherDb.close()
    const flipped = Buffer.from(good)
    flipped[Math.floor(good.length / 2)]! ^= 0x10
    const cases: [string, Buffer, RegExp][] = [
      ['one flipped bit', flipped, /checksum/],
      ['truncated', good.subarray(0, good.length - 100), /implies/],
      ['empty', Buffer.alloc(0), /not a daxkv index checkpoint/],
      ['of another daxfile', fs.readFileSync(checkpointPath(other)), /another daxfile/],
    ]
    for (const [what, bytes, reason] of cases) {
      fs.writeFileSync(checkpointPath(file), bytes)
      const db = await open<string>(file, OPTIONS)
      expect(db.recovery.source, what).toBe('log')
      expect(db.recovery.checkpointRejected, what).toMatch(reason)
      expect(entries(db), `${what}; ${seedNote()}`).toEqual(sorted(model))
      await db.close()
    }
  })
})

/** File offset one past the last batch of the head segment (the in-use segment with the highest segmentSeq). */
function findLogEnd(file: string, segmentBytes: number): number {
  const bytes = fs.readFileSync(file)
  let head = -1
  let headSeq = 0
  for (let i = 0; (i + 1) * segmentBytes <= bytes.length; i++) {
    const at = segmentHeaderOffset(i, segmentBytes)
    if (bytes.readUInt32LE(at) !== SEGMENT_MAGIC) continue
    const seq = readU64(bytes, at + 16)
    if (seq > headSeq) {
      headSeq = seq
      head = i
    }
  }
  expect(head).toBeGreaterThanOrEqual(0)
  // The log ends where the rest of the segment is zero (batches are 8-byte aligned).
  let last = segmentEndOffset(head, segmentBytes)
  while (last > segmentDataOffset(head, segmentBytes) && bytes[last - 1] === 0) last--
  return Math.ceil(last / 8) * 8
}
