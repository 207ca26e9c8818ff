import type { Crc32c } from './checksum.js'
import { SEGMENT_HEADER_BYTES } from './constants.js'

/**
 * The index checkpoint: a side file (`<daxfile>.index`) written at a clean
 * close and, while the store is open, in the background. It holds what a
 * replay of the log up to some batch builds (the hash tables of the index
 * and of the tombstones, and the per-segment accounting) together with
 * the log it describes: every segment header byte for byte, each segment's
 * data end, last seq and batch fingerprint, the head and the next sequence
 * numbers. That log is a prefix of the daxfile's log at any later time. An
 * open that finds it checks that the daxfile's log continues it (C1-C3 in
 * docs/format.md, "Index checkpoint": engine/checkpoint.ts), drops the
 * entries of segments freed since, and replays only the batches written
 * after it. The file is not part of the daxfile: losing it, or any damage
 * to it, costs one whole replay and nothing else.
 *
 * Layout (little-endian; f64 for counters, which stay below 2^53):
 *    0  magic "DAXKVCKP"                              8
 *    8  version u32, segmentCount u32
 *   16  fileId f64, createdMs f64, updateCounter f64
 *   40  segmentBytes u32, head i32 (-1: empty log)
 *   48  nextBatchSeq f64, nextSegmentSeq f64
 *   64  index size u32, index slots u32, tombstone size u32, tombstone slots u32
 *   80  per segment: its 64-byte header as in the daxfile, then dataEnd,
 *       lastSeq, liveBytes, deadRecords (f64 each), the fingerprint of its
 *       batches (u32) and the bytes of its largest record (u32; 0 when not
 *       recorded, as in checkpoints of earlier daxkv versions): 104 bytes
 *       the index table (slots x 8 bytes), then the tombstone table
 *  end  crc32c u32 of everything before it
 */
export const CHECKPOINT_MAGIC = Buffer.from('DAXKVCKP', 'latin1')
export const CHECKPOINT_VERSION = 1
const FIXED_BYTES = 80
const SEGMENT_ENTRY_BYTES = SEGMENT_HEADER_BYTES + 40

/** Per-segment facts a checkpoint records. */
export interface CheckpointSegment {
  /** The segment's 64 header bytes as they are in the daxfile. */
  readonly header: Uint8Array
  readonly dataEnd: number
  readonly lastSeq: number
  readonly liveBytes: number
  readonly deadRecords: number
  /** Fingerprint of the segment's batches (engine: chainBatch over their checksums). */
  readonly chain: number
  /** Bytes of the largest record appended to the segment; 0 when unknown. */
  readonly maxRecordBytes: number
}

/** One of the two hash tables: `entries` as KeyIndex keeps them, `size` keys in it. */
export interface CheckpointTable {
  readonly entries: Int32Array
  readonly size: number
}

export interface Checkpoint {
  readonly fileId: number
  readonly createdMs: number
  readonly updateCounter: number
  readonly segmentBytes: number
  readonly head: number
  readonly nextBatchSeq: number
  readonly nextSegmentSeq: number
  readonly segments: readonly CheckpointSegment[]
  readonly index: CheckpointTable
  readonly tombstones: CheckpointTable
}

/** Bytes of a checkpoint of `segments` segments and tables of `indexSlots` and `tombstoneSlots` slots. */
export function checkpointBytes(segments: number, indexSlots: number, tombstoneSlots: number): number {
  return FIXED_BYTES + segments * SEGMENT_ENTRY_BYTES + 8 * (indexSlots + tombstoneSlots) + 4
}

export function encodeCheckpoint(c: Checkpoint, crc32c: Crc32c): Buffer {
  const count = c.segments.length
  const buf = Buffer.allocUnsafe(checkpointBytes(count, c.index.entries.length / 2, c.tombstones.entries.length / 2))
  CHECKPOINT_MAGIC.copy(buf, 0)
  buf.writeUInt32LE(CHECKPOINT_VERSION, 8)
  buf.writeUInt32LE(count, 12)
  buf.writeDoubleLE(c.fileId, 16)
  buf.writeDoubleLE(c.createdMs, 24)
  buf.writeDoubleLE(c.updateCounter, 32)
  buf.writeUInt32LE(c.segmentBytes, 40)
  buf.writeInt32LE(c.head, 44)
  buf.writeDoubleLE(c.nextBatchSeq, 48)
  buf.writeDoubleLE(c.nextSegmentSeq, 56)
  buf.writeUInt32LE(c.index.size, 64)
  buf.writeUInt32LE(c.index.entries.length / 2, 68)
  buf.writeUInt32LE(c.tombstones.size, 72)
  buf.writeUInt32LE(c.tombstones.entries.length / 2, 76)
  let at = FIXED_BYTES
  for (const s of c.segments) {
    if (s.header.length !== SEGMENT_HEADER_BYTES) throw new RangeError('a segment header is 64 bytes')
    buf.set(s.header, at)
    buf.writeDoubleLE(s.dataEnd, at + 64)
    buf.writeDoubleLE(s.lastSeq, at + 72)
    buf.writeDoubleLE(s.liveBytes, at + 80)
    buf.writeDoubleLE(s.deadRecords, at + 88)
    buf.writeUInt32LE(s.chain, at + 96)
    buf.writeUInt32LE(s.maxRecordBytes, at + 100)
    at += SEGMENT_ENTRY_BYTES
  }
  for (const table of [c.index.entries, c.tombstones.entries]) {
    buf.set(new Uint8Array(table.buffer, table.byteOffset, table.byteLength), at)
    at += table.byteLength
  }
  buf.writeUInt32LE(crc32c(buf, 0, at), at)
  return buf
}

/**
 * Decodes a checkpoint, or returns why it cannot be used. Only the file's
 * own consistency is checked here; whether it describes the daxfile as it
 * is now is the engine's question (engine/checkpoint.ts compares it with
 * the log).
 */
export function decodeCheckpoint(buf: Buffer, crc32c: Crc32c): { ok: true; checkpoint: Checkpoint } | { ok: false; reason: string } {
  if (buf.length < FIXED_BYTES + 4 || !buf.subarray(0, 8).equals(CHECKPOINT_MAGIC)) return { ok: false, reason: 'not a daxkv index checkpoint' }
  if (buf.readUInt32LE(8) !== CHECKPOINT_VERSION) return { ok: false, reason: `checkpoint version ${buf.readUInt32LE(8)}` }
  const count = buf.readUInt32LE(12)
  const indexSlots = buf.readUInt32LE(68)
  const tombstoneSlots = buf.readUInt32LE(76)
  const end = checkpointBytes(count, indexSlots, tombstoneSlots) - 4
  if (end + 4 !== buf.length) return { ok: false, reason: `checkpoint is ${buf.length} bytes, its header implies ${end + 4}` }
  if (buf.readUInt32LE(end) !== crc32c(buf, 0, end)) return { ok: false, reason: 'checkpoint checksum mismatch' }
  const powerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0
  if (!powerOfTwo(indexSlots) || !powerOfTwo(tombstoneSlots)) return { ok: false, reason: 'checkpoint table sizes are not powers of two' }
  const segments: CheckpointSegment[] = []
  let at = FIXED_BYTES
  for (let i = 0; i < count; i++) {
    segments.push({
      header: buf.subarray(at, at + SEGMENT_HEADER_BYTES),
      dataEnd: buf.readDoubleLE(at + 64),
      lastSeq: buf.readDoubleLE(at + 72),
      liveBytes: buf.readDoubleLE(at + 80),
      deadRecords: buf.readDoubleLE(at + 88),
      chain: buf.readUInt32LE(at + 96),
      maxRecordBytes: buf.readUInt32LE(at + 100),
    })
    at += SEGMENT_ENTRY_BYTES
  }
  // The index table is used in place when its bytes are 4-byte aligned in memory (a file read into its
  // own allocation is), else copied once. The tombstone table, usually small, is always copied, so it
  // never keeps the whole file's memory alive after the index has outgrown it.
  const table = (slots: number, inPlace: boolean): Int32Array => {
    const offset = buf.byteOffset + at
    const entries =
      inPlace && offset % 4 === 0
        ? new Int32Array(buf.buffer, offset, 2 * slots)
        : new Int32Array(new Uint8Array(buf.subarray(at, at + 8 * slots)).buffer)
    at += 8 * slots
    return entries
  }
  const indexEntries = table(indexSlots, true)
  const tombstoneEntries = table(tombstoneSlots, false)
  return {
    ok: true,
    checkpoint: {
      fileId: buf.readDoubleLE(16),
      createdMs: buf.readDoubleLE(24),
      updateCounter: buf.readDoubleLE(32),
      segmentBytes: buf.readUInt32LE(40),
      head: buf.readInt32LE(44),
      nextBatchSeq: buf.readDoubleLE(48),
      nextSegmentSeq: buf.readDoubleLE(56),
      segments,
      index: { entries: indexEntries, size: buf.readUInt32LE(64) },
      tombstones: { entries: tombstoneEntries, size: buf.readUInt32LE(72) },
    },
  }
}
