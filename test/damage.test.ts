/**
 * Damage that recovery must tell apart from a crash (docs/format.md,
 * "What damage is detected"): a torn tail is cut, but a damaged batch with
 * intact ones after it, a zeroed header over data, or a log that no longer
 * continues the index checkpoint it recorded is DAXKV_CORRUPTION; damage
 * to bytes that hold no data is reported, not refused; and the index
 * checkpoint is never trusted beyond what is checked.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkpointDigest } from '../src/engine/checkpoint.js'
import { FORMAT_VERSION, FORMAT_VERSION_V1, SEGMENT_HEADER_BYTES, SUPERBLOCK_BYTES } from '../src/format/constants.js'
import { decodeCheckpoint, encodeCheckpoint } from '../src/format/checkpoint.js'
import { SEGMENT_FREE_MARK, segmentEndOffset, segmentHeaderOffset } from '../src/format/segment.js'
import { encodeSuperblock, superblockOffset } from '../src/format/superblock.js'
import { DaxKVError, ErrorCode, open, type DaxKV, type OpenOptions } from '../src/index.js'
import { checkpointPath } from '../src/platform/checkpoint-file.js'
import { native } from '../src/platform/native.js'
import { batchesOf, patch, recordCheckpointDigest, superblockOf } from './daxfile-surgery.js'
import { entries, tempDir } from './helpers.js'

const OPTIONS: OpenOptions = { size: '1MiB', segmentSize: '64KiB', valueEncoding: 'utf8', backgroundCompaction: false }

async function openFails(file: string, code: string, options: OpenOptions = OPTIONS): Promise<DaxKVError> {
  let db: DaxKV | undefined
  try {
    db = await open(file, options)
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(DaxKVError)
    expect((error as DaxKVError).code, (error as Error).message).toBe(code)
    return error as DaxKVError
  }
  await db.close()
  throw new Error(`${file} opened, but should have failed with ${code}`)
}

/** A closed store of `puts` puts, one batch each, in 64 KiB segments. */
async function storeOf(puts: number, valueBytes = 100): Promise<{ file: string; model: Map<string, string> }> {
  const file = path.join(tempDir('/dev/shm'), 'db.dax')
  const db = await open<string>(file, OPTIONS)
  const model = new Map<string, string>()
  for (let i = 0; i < puts; i++) {
    const value = `${i}:`.padEnd(valueBytes, 'v')
    db.putSync(`k${String(i).padStart(4, '0')}`, value)
    model.set(`k${String(i).padStart(4, '0')}`, value)
  }
  await db.close()
  return { file, model }
}

describe('a damaged batch followed by intact ones', () => {
  it('in the head segment of a store written with sync: true is DAXKV_CORRUPTION naming the batch, and the file is left as found', async () => {
    const { file } = await storeOf(100)
    const batches = batchesOf(file, 0)
    expect(batches.length).toBe(100)
    const second = batches[1]!
    const byte = fs.readFileSync(file)[second.offset + 40]!
    patch(file, second.offset + 40, Buffer.from([byte ^ 0x08]))
    const before = fs.readFileSync(file)
    const error = await openFails(file, ErrorCode.CORRUPTION, { ...OPTIONS, indexCheckpoint: false })
    expect(error.message).toContain(`batch ${second.seq} at file offset ${second.offset} is invalid (checksum)`)
    expect(error.message).toContain('is intact')
    expect(fs.readFileSync(file).equals(before), 'recovery erased evidence').toBe(true)
  })

  it('in the head segment of a store written with sync: false that crashed is a torn tail: those writes were never promised durable', async () => {
    const dir = tempDir('/dev/shm')
    const file = path.join(dir, 'relaxed.dax')
    const db = await open<string>(file, { ...OPTIONS, sync: false })
    for (let i = 0; i < 50; i++) db.putSync(`k${i}`, `value ${i}`)
    // What a crash leaves: the file as it is while the store is open (RELAXED set).
    const crashed = path.join(dir, 'crashed.dax')
    fs.copyFileSync(file, crashed)
    await db.close()
    expect(superblockOf(crashed).flags & 1).toBe(1)
    const batches = batchesOf(crashed, 0)
    const tenth = batches[9]!
    patch(crashed, tenth.offset + 40, Buffer.from([0xff]))
    const reopened = await open<string>(crashed, { ...OPTIONS, indexCheckpoint: false })
    expect(reopened.recovery.tornTail?.offset).toBe(tenth.offset)
    expect(reopened.count).toBe(9)
    await reopened.close()
  })
})

describe('headers and unused bytes', () => {
  it('a sealed segment whose header and first batch header are zeroed is DAXKV_CORRUPTION, not a free segment', async () => {
    const { file } = await storeOf(1200)
    const sb = superblockOf(file)
    expect(batchesOf(file, 1).length).toBeGreaterThan(0)
    expect(batchesOf(file, 2).length, 'segment 1 is sealed').toBeGreaterThan(0)
    patch(file, segmentHeaderOffset(1, sb.segmentBytes), Buffer.alloc(SEGMENT_HEADER_BYTES + 32))
    const error = await openFails(file, ErrorCode.CORRUPTION, { ...OPTIONS, indexCheckpoint: false })
    expect(error.message).toMatch(/segment 1 has a damaged header but holds batches/)
  })

  it('a flipped bit in the unused end of a sealed segment, which the next segment continues, is reported and the data intact', async () => {
    const { file, model } = await storeOf(1200)
    const sb = superblockOf(file)
    const sealed = batchesOf(file, 0)
    const last = sealed[sealed.length - 1]!
    const slack = last.offset + last.length
    expect(segmentEndOffset(0, sb.segmentBytes) - slack, 'segment 0 has an unused end').toBeGreaterThan(64)
    patch(file, segmentEndOffset(0, sb.segmentBytes) - 16, Buffer.from([0x04]))
    const db = await open<string>(file, { ...OPTIONS, indexCheckpoint: false })
    expect(db.recovery.unusedEndDamage).toEqual([{ segment: 0, offset: slack, bytes: segmentEndOffset(0, sb.segmentBytes) - 15 - slack, reason: 'zero' }])
    expect(entries(db)).toEqual([...model.entries()].sort(([a], [b]) => (a < b ? -1 : 1)))
    expect(db.verify().problems.join('\n')).toMatch(/segment 0 holds \d+ non-zero bytes in its unused end/)
    await db.close()
  })

  it('a daxfile of format 1 opens with all its data and is rewritten in format 2', async () => {
    const { file, model } = await storeOf(300)
    // Rewrite both copies as format 1: the first 56 bytes, version 1, sealed at 60, nothing after.
    for (const slot of [0, 1] as const) {
      const sb = superblockOf(file, slot)
      const v1 = Buffer.alloc(SUPERBLOCK_BYTES)
      encodeSuperblock(sb, native.crc32c).copy(v1, 0, 0, 56)
      v1.writeUInt32LE(FORMAT_VERSION_V1, 8)
      v1.writeUInt32LE(0, 12)
      v1.writeUInt32LE(native.crc32c(v1, 0, 60), 60)
      patch(file, superblockOffset(slot), v1)
    }
    expect(superblockOf(file).formatVersion).toBe(FORMAT_VERSION_V1)
    const db = await open<string>(file, OPTIONS)
    expect(db.count).toBe(model.size)
    for (const [key, value] of model) expect(db.get(key)).toBe(value)
    expect(db.verify().problems.join('\n')).toBe('')
    await db.close()
    const upgraded = [superblockOf(file, 0), superblockOf(file, 1)].sort((a, b) => b.updateCounter - a.updateCounter)[0]!
    expect(upgraded.formatVersion).toBe(FORMAT_VERSION)
    expect(upgraded.segmentsUsed).toBeGreaterThanOrEqual(1)
  })
})

describe('the index checkpoint', () => {
  it('a sealed segment holding live records, zeroed whole or given a free mark after a clean close, is DAXKV_CORRUPTION', async () => {
    for (const damage of ['zeroed', 'free mark'] as const) {
      const { file } = await storeOf(1000)
      expect(batchesOf(file, 1).length, 'the store should fill segment 1').toBeGreaterThan(100)
      const start = segmentHeaderOffset(1, 64 * 1024)
      if (damage === 'zeroed') patch(file, start, Buffer.alloc(segmentEndOffset(1, 64 * 1024) - start))
      else {
        const mark = Buffer.alloc(8)
        mark.writeDoubleLE(SEGMENT_FREE_MARK)
        patch(file, start, mark)
      }
      const error = await openFails(file, ErrorCode.CORRUPTION)
      expect(error.message, damage).toContain('segment 1 held live records at the checkpoint')
    }
  })

  it('a log rolled back under the checkpoint it recorded is DAXKV_CORRUPTION, not a silent replay', async () => {
    const { file } = await storeOf(50)
    const older = fs.readFileSync(file)
    const db = await open<string>(file, OPTIONS)
    for (let i = 0; i < 20; i++) db.putSync(`later${i}`, 'acknowledged')
    await db.close()
    // Every segment restored from the older copy; the superblock (which recorded the newer checkpoint) kept.
    patch(file, 2 * 4096, older.subarray(2 * 4096))
    const error = await openFails(file, ErrorCode.CORRUPTION)
    expect(error.message).toMatch(/does not continue the index checkpoint this daxfile recorded/)
  })

  it('a recorded checkpoint whose table has no empty slot, or an entry no lookup reaches, is refused without hanging', async () => {
    const { file, model } = await storeOf(40)
    const good = fs.readFileSync(checkpointPath(file))
    const decoded = decodeCheckpoint(good, native.crc32c)
    if (!decoded.ok) throw new Error(decoded.reason)
    const table = decoded.checkpoint.index.entries
    const full = new Int32Array(table.length).fill(8192 + 64)
    const moved = Int32Array.from(table)
    // Move one entry to the slot before its home, where a probe from home never looks.
    const occupied = [...Array(table.length / 2).keys()].find((i) => table[2 * i] !== -1)!
    const home = table[2 * occupied + 1]! & (table.length / 2 - 1)
    const before = (home - 1 + table.length / 2) % (table.length / 2)
    if (table[2 * before] === -1) {
      moved[2 * before] = table[2 * occupied]!
      moved[2 * before + 1] = table[2 * occupied + 1]!
      moved[2 * occupied] = -1
    }
    for (const [what, entriesOf, reason] of [
      ['no empty slot', full, /holds \d+ entries, not the 40/],
      ['an entry before its home slot', moved, /where no lookup of its key reaches it/],
    ] as const) {
      const forged = { ...decoded.checkpoint, index: { entries: entriesOf, size: what === 'no empty slot' ? 40 : decoded.checkpoint.index.size } }
      const bytes = encodeCheckpoint(forged, native.crc32c)
      fs.writeFileSync(checkpointPath(file), bytes)
      recordCheckpointDigest(file, checkpointDigest(bytes))
      const db = await open<string>(file, OPTIONS)
      expect(db.recovery.source, what).toBe('log')
      expect(db.recovery.checkpointRejected, what).toMatch(reason)
      expect(db.count, what).toBe(model.size)
      for (const [key, value] of model) expect(db.get(key), what).toBe(value)
      await db.close()
    }
  })

  it('a FIFO, a link to /dev/zero or an oversized sparse file in its place costs a replay, and nothing else', async () => {
    const { file, model } = await storeOf(40)
    const index = checkpointPath(file)
    const places: [string, () => void][] = [
      ['a FIFO', () => execFileSync('mkfifo', [index])],
      ['a symbolic link to /dev/zero', () => fs.symlinkSync('/dev/zero', index)],
      ['a sparse file of 8 GiB', () => fs.truncateSync((fs.writeFileSync(index, ''), index), 8 * 1024 ** 3)],
    ]
    for (const [what, make] of places) {
      fs.rmSync(index, { force: true })
      make()
      const db = await open<string>(file, OPTIONS)
      expect(db.recovery.source, what).toBe('log')
      expect(db.count, what).toBe(model.size)
      await db.close()
    }
  })
})
