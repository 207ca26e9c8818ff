/**
 * The index checkpoint (`<daxfile>.index`): a clean close writes it, and the
 * next open loads the index from it and replays only the batches written
 * after it (none after a clean close; after a crash, what the crashed run
 * appended, cleaned or grew). A checkpoint that is damaged, foreign, or
 * newer than the log makes open replay the whole log. The state must be the
 * one a whole replay gives, every time.
 */
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkpointPath } from '../src/platform/checkpoint-file.js'
import { decodeCheckpoint, encodeCheckpoint } from '../src/format/checkpoint.js'
import { SEGMENT_MAGIC } from '../src/format/constants.js'
import { checkpointDigest } from '../src/engine/checkpoint.js'
import { recordCheckpointDigest } from './daxfile-surgery.js'
import { hashKey } from '../src/format/key-hash.js'
import { segmentDataOffset, segmentEndOffset, segmentHeaderOffset } from '../src/format/segment.js'
import { readU64 } from '../src/format/u64.js'
import { open, type DaxKV, type OpenOptions, type RecoveryReport } from '../src/index.js'
import { below, entries, random, seedNote, SEED, tempDir } from './helpers.js'
import { native } from '../src/platform/native.js'

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

  it('after a crash that followed more writes, only the batches written after the checkpoint are replayed', async () => {
    const { file, model } = await storeWithHistory()
    const db = await open<string>(file, OPTIONS)
    expect(db.recovery.source).toBe('checkpoint')
    db.putSync('after', 'the checkpoint')
    model.set('after', 'the checkpoint')
    const first = sorted(model)[0]![0]
    db.delSync(first)
    model.delete(first)
    const copy = crashCopy(file)
    await db.close()
    const crashed = await expectSameAsReplay(copy, model)
    expect(crashed.source).toBe('checkpoint')
    expect(crashed.recordsReplayed).toBe(2)
  })

  it('cleaning, reuse and growth after the checkpoint: the rest of the log replays onto it to the state a whole replay gives', async () => {
    const { file, model } = await storeWithHistory()
    const db = await open<string>(file, OPTIONS)
    expect(db.recovery.source).toBe('checkpoint')
    const before = db.stats()
    const first = await db.compact()
    expect(first.segmentsCleaned, seedNote()).toBeGreaterThan(0)
    churn(db, model, SEED + 3, 600)
    // More live data than the file holds: it grows.
    for (let i = 0; i < 800; i++) {
      db.putSync(`bulk${i}`, `${i}`.padEnd(1200, 'b'))
      model.set(`bulk${i}`, `${i}`.padEnd(1200, 'b'))
    }
    await db.compact()
    churn(db, model, SEED + 4, 200)
    // Freed segments were reused, and the file grew.
    expect(db.stats().compactions, seedNote()).toBeGreaterThan(1)
    expect(db.stats().fileBytes, seedNote()).toBeGreaterThan(before.fileBytes)
    const copy = crashCopy(file)
    await db.close()
    const crashed = await expectSameAsReplay(copy, model)
    expect(crashed.source).toBe('checkpoint')
    expect(crashed.recordsReplayed).toBeGreaterThan(600)
  })

  it('random runs of writes, cleaning, clean closes and crashes: every open from a checkpoint equals a whole replay', async () => {
    const next = random(SEED + 5)
    let file = path.join(tempDir('/dev/shm'), 'db.dax')
    // Background checkpoints too, so crashes also land between them.
    const options: OpenOptions = { ...OPTIONS, size: '256KiB', checkpointInterval: '32KiB' }
    let db = await open<string>(file, options)
    const model = new Map<string, string>()
    const seen = { clean: 0, resumed: 0, replayed: 0, background: 0 }
    for (let round = 0; round < 60; round++) {
      churn(db, model, SEED + 100 + round, below(next, 150))
      if (next() < 0.4) await db.compact()
      // Let background checkpoints be encoded and written (or not yet: both happen).
      if (next() < 0.5) await new Promise((resolve) => setTimeout(resolve, below(next, 3)))
      if (next() < 0.5) {
        await db.close()
        db = await open<string>(file, options)
        expect(db.recovery.source, seedNote(`round ${round}`)).toBe('checkpoint')
        expect(db.recovery.recordsReplayed).toBe(0)
        seen.clean++
      } else {
        seen.background += db.stats().checkpointsWritten
        const copy = crashCopy(file)
        await db.close()
        const report = await expectSameAsReplay(copy, model, `round ${round}`)
        if (report.source === 'checkpoint') seen.resumed++
        else seen.replayed++
        file = copy
        db = await open<string>(file, options)
      }
      expect(entries(db), seedNote(`round ${round}`)).toEqual(sorted(model))
    }
    await db.close()
    console.log(`checkpoint runs: ${JSON.stringify(seen)}`)
    // Both kinds of open happened, and crashes were resumed from a checkpoint.
    expect(seen.clean, seedNote(JSON.stringify(seen))).toBeGreaterThan(0)
    expect(seen.resumed, seedNote(JSON.stringify(seen))).toBeGreaterThan(0)
  })

  it('a checkpoint newer than the log (the daxfile restored from an older copy) is refused', async () => {
    const { file, model } = await storeWithHistory()
    const older = path.join(tempDir('/dev/shm'), 'older.dax')
    fs.copyFileSync(file, older)
    const db = await open<string>(file, OPTIONS)
    churn(db, new Map(model), SEED + 6, 50)
    await db.close()
    fs.copyFileSync(checkpointPath(file), checkpointPath(older))
    const restored = await open<string>(older, OPTIONS)
    expect(restored.recovery.source).toBe('log')
    // The older daxfile's superblock records the checkpoint of its own last close, not this one.
    expect(restored.recovery.checkpointRejected).toMatch(/not the checkpoint this daxfile recorded last/)
    expect(entries(restored), seedNote()).toEqual(sorted(model))
    expect(restored.verify().problems.join('\n')).toBe('')
    await restored.close()
  })

  for (const [what, puts] of [
    ['in the head segment', 3],
    ['across a segment roll', 120],
  ] as const) {
    it(`a checkpoint of a diverged copy (same sequence numbers, other batches ${what}) is refused`, async () => {
      const { file, model } = await storeWithHistory()
      const copy = path.join(tempDir('/dev/shm'), 'copy.dax')
      fs.copyFileSync(file, copy)
      fs.copyFileSync(checkpointPath(file), checkpointPath(copy))
      // Both copies get the same number of batches of the same sizes, with other contents.
      const write = async (target: string, tag: string, into: Map<string, string>): Promise<void> => {
        const db = await open<string>(target, OPTIONS)
        expect(db.recovery.source).toBe('checkpoint')
        for (let i = 0; i < puts; i++) {
          db.putSync(`diverged${String(i).padStart(3, '0')}`, tag.repeat(700))
          into.set(`diverged${String(i).padStart(3, '0')}`, tag.repeat(700))
        }
        await db.close()
      }
      const original = new Map(model)
      const diverged = new Map(model)
      await write(file, 'a', original)
      await write(copy, 'b', diverged)
      // The original's checkpoint now describes batches the copy holds under the same numbers.
      fs.copyFileSync(checkpointPath(file), checkpointPath(copy))
      const db = await open<string>(copy, OPTIONS)
      expect(db.recovery.source).toBe('log')
      expect(db.recovery.checkpointRejected).toMatch(/not the checkpoint this daxfile recorded last/)
      expect(entries(db), seedNote()).toEqual(sorted(diverged))
      expect(db.verify().problems.join('\n')).toBe('')
      await db.close()
    })
  }

  it('a batch torn after the checkpoint is cut, and the checkpoint still used', async () => {
    const { file, model } = await storeWithHistory()
    const probe = await open<string>(file, OPTIONS)
    const segmentBytes = probe.stats().segmentBytes
    await probe.close()
    // Bytes of a batch whose writer died before its marker: nonzero, invalid, right after the last batch.
    const tailAt = findLogEnd(file, segmentBytes)
    const fd = fs.openSync(file, 'r+')
    fs.writeSync(fd, Buffer.alloc(40, 0xa5), 0, 40, tailAt + 8)
    fs.closeSync(fd)
    const db = await open<string>(file, OPTIONS)
    expect(db.recovery.source).toBe('checkpoint')
    expect(db.recovery.tornTail?.offset).toBe(tailAt)
    expect(entries(db), seedNote()).toEqual(sorted(model))
    expect(db.verify().problems.join('\n')).toBe('')
    await db.close()
  })

  it('background checkpoints while the store is open: a crash replays only what was written after the last one', async () => {
    const { file, model } = await storeWithHistory()
    const db = await open<string>(file, { ...OPTIONS, checkpointInterval: '64KiB' })
    let written = 0
    for (let round = 0; round < 20 && db.stats().checkpointsWritten === 0; round++) {
      churn(db, model, SEED + 200 + round, 40)
      written += 40
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(db.stats().checkpointsWritten, seedNote()).toBeGreaterThan(0)
    for (let i = 0; i < 5; i++) {
      db.putSync(`late${i}`, 'after the background checkpoint')
      model.set(`late${i}`, 'after the background checkpoint')
    }
    const copy = crashCopy(file)
    await db.close()
    const crashed = await expectSameAsReplay(copy, model)
    expect(crashed.source).toBe('checkpoint')
    expect(crashed.recordsReplayed, seedNote()).toBeGreaterThanOrEqual(5)
    expect(crashed.recordsReplayed, seedNote()).toBeLessThan(written + 5)
  })

  it('a background checkpoint still being written when the store closes never replaces the one written at close', async () => {
    const { file, model } = await storeWithHistory()
    const db = await open<string>(file, { ...OPTIONS, checkpointInterval: '16KiB' })
    churn(db, model, SEED + 7, 60)
    // The background checkpoint is encoded in the next turn of the event loop, and its file written after.
    await new Promise((resolve) => setImmediate(resolve))
    db.putSync('after', 'the background checkpoint was encoded')
    model.set('after', 'the background checkpoint was encoded')
    await db.close()
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['db.dax', 'db.dax.index'])
    const again = await open<string>(file, OPTIONS)
    expect(again.recovery.source).toBe('checkpoint')
    expect(again.recovery.recordsReplayed).toBe(0)
    expect(entries(again), seedNote()).toEqual(sorted(model))
    await again.close()
  })

  it('a checkpoint temporary left by a process that died inside close is removed at the next open', async () => {
    const { file, model } = await storeWithHistory()
    const leftover = path.join(path.dirname(file), `.${path.basename(checkpointPath(file))}.tmp-999999`)
    fs.writeFileSync(leftover, 'half a checkpoint')
    const db = await open<string>(file, OPTIONS)
    expect(fs.existsSync(leftover)).toBe(false)
    expect(db.recovery.source).toBe('checkpoint')
    expect(entries(db), seedNote()).toEqual(sorted(model))
    await db.close()
    // A close writes through a temporary of that name and leaves none behind.
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['db.dax', 'db.dax.index'])
  })

  it('a recorded checkpoint whose checksum holds but whose table points outside the file is refused, and the log replayed', async () => {
    const { file, model } = await storeWithHistory()
    const key = sorted(model)[0]![0]
    const decoded = decodeCheckpoint(fs.readFileSync(checkpointPath(file)), native.crc32c)
    if (!decoded.ok) throw new Error(decoded.reason)
    const { entries: table } = decoded.checkpoint.index
    let forged = 0
    for (let i = 0; i < table.length; i += 2) {
      if (table[i] !== -1 && table[i + 1] === (hashKey(key) | 0)) {
        table[i] = 0x7fff_fff8
        forged++
      }
    }
    expect(forged).toBe(1)
    fs.writeFileSync(checkpointPath(file), encodeCheckpoint(decoded.checkpoint, native.crc32c))
    // A write of that key after the checkpoint makes the replay look the forged entry up.
    const db = await open<string>(file, { ...OPTIONS, indexCheckpoint: false })
    db.putSync(key, 'rewritten')
    model.set(key, 'rewritten')
    const copy = crashCopy(file)
    await db.close()
    fs.writeFileSync(checkpointPath(copy), encodeCheckpoint(decoded.checkpoint, native.crc32c))
    recordCheckpointOf(copy)
    const reopened = await open<string>(copy, OPTIONS)
    expect(reopened.recovery.source).toBe('log')
    expect(reopened.recovery.checkpointRejected).toMatch(/inconsistent: an entry of the index table points outside/)
    expect(entries(reopened), seedNote()).toEqual(sorted(model))
    await reopened.close()
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
      ['empty', Buffer.alloc(0), /not a daxkv index checkpoint|not the checkpoint this daxfile recorded last/],
      ['of another daxfile', fs.readFileSync(checkpointPath(other)), /another daxfile/],
    ]
    for (const [what, bytes, reason] of cases) {
      fs.writeFileSync(checkpointPath(file), bytes)
      // Not recorded: refused for that alone. Recorded (as if the writer had written it so): refused for what it is.
      let db = await open<string>(file, { ...OPTIONS, indexCheckpoint: false })
      await db.close()
      fs.writeFileSync(checkpointPath(file), bytes)
      db = await open<string>(file, OPTIONS)
      expect(db.recovery.checkpointRejected, what).toMatch(/not the checkpoint this daxfile recorded last/)
      await db.close()
      fs.writeFileSync(checkpointPath(file), bytes)
      recordCheckpointOf(file)
      db = await open<string>(file, OPTIONS)
      expect(db.recovery.source, what).toBe('log')
      expect(db.recovery.checkpointRejected, what).toMatch(reason)
      expect(entries(db), `${what}; ${seedNote()}`).toEqual(sorted(model))
      await db.close()
    }
  })
})

/** Records `file`'s checkpoint as it is now in the daxfile's superblock (daxfile-surgery.ts). */
function recordCheckpointOf(file: string): void {
  recordCheckpointDigest(file, checkpointDigest(fs.readFileSync(checkpointPath(file))))
}

/**
 * Opens `file` (with its checkpoint) and a copy of it without one (a whole
 * replay), and checks that both give the model and the same accounting,
 * and that the first verifies. Returns the first open's recovery report.
 */
async function expectSameAsReplay(file: string, model: Map<string, string>, context = ''): Promise<RecoveryReport> {
  const plain = path.join(path.dirname(file), `replayed-${path.basename(file)}`)
  fs.copyFileSync(file, plain)
  const db = await open<string>(file, OPTIONS)
  const replayed = await open<string>(plain, { ...OPTIONS, indexCheckpoint: false })
  try {
    expect(replayed.recovery.source).toBe('log')
    const report = db.recovery
    const note = seedNote(`${context}; opened from ${report.source}${report.checkpointRejected === undefined ? '' : ` (${report.checkpointRejected})`}`)
    expect(entries(db), note).toEqual(sorted(model))
    expect(state(db), note).toEqual(state(replayed))
    expect(db.verify().problems.join('\n'), note).toBe('')
    return report
  } finally {
    await db.close()
    await replayed.close()
    fs.rmSync(plain, { force: true })
  }
}

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
