import type { Crc32c } from './checksum.js'
import { BATCH_HEADER_BYTES, BATCH_MAGIC, MARKER_OFFSET, RECORD_DEL, RECORD_HEADER_BYTES, RECORD_PUT, align8 } from './constants.js'
import { recordBytes, recordKeyBytes, recordType, recordValueBytes } from './record.js'
import { readU64, writeU64 } from './u64.js'

/**
 * Batches and records.
 *
 * Batch header (32 bytes, little-endian):
 *   0  commit marker: the batch's sequence number as an IEEE-754 double,
 *      written last as one aligned 8-byte store (zero until committed)
 *   8  magic "DXBT" u32, payloadBytes u32 (multiple of 8)
 *  16  seq u64
 *  24  recordCount u32, crc32c u32 of header bytes [8, 28) then the payload
 *  32  payload: recordCount records (record.ts)
 */

/** One operation ready to be laid out: `key` is a byte string (one char per byte, latin1). */
export interface EncodedOp {
  readonly type: typeof RECORD_PUT | typeof RECORD_DEL
  readonly key: string
  readonly value: Uint8Array | undefined
}

/** Bytes a batch of `ops` occupies in the log, header included. */
export function batchBytes(ops: readonly EncodedOp[]): number {
  let n = BATCH_HEADER_BYTES
  for (const op of ops) n += recordBytes(op.key.length, op.value === undefined ? 0 : op.value.length)
  return n
}

/** Keys up to this length are copied byte by byte: cheaper than a call into Buffer.write. */
const SHORT_KEY_BYTES = 64

/**
 * Lays out a batch into `out` from offset 0 with its marker word left zero,
 * and returns its length. `recordOffsets[i]` receives op i's record offset
 * relative to the batch start. `out` must hold batchBytes(ops) bytes, zeroed
 * where padding goes (callers pass a buffer they zero-fill once per use).
 */
export function encodeBatch(out: Buffer, seq: number, ops: readonly EncodedOp[], recordOffsets: number[], crc32c: Crc32c): number {
  let pos = BATCH_HEADER_BYTES
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!
    const keyBytes = op.key.length
    const valueBytes = op.value === undefined ? 0 : op.value.length
    recordOffsets[i] = pos
    // Plain byte stores: this runs for every record written.
    out[pos] = op.type
    out[pos + 1] = 0
    out[pos + 2] = keyBytes & 0xff
    out[pos + 3] = keyBytes >>> 8
    out[pos + 4] = valueBytes & 0xff
    out[pos + 5] = (valueBytes >>> 8) & 0xff
    out[pos + 6] = (valueBytes >>> 16) & 0xff
    out[pos + 7] = valueBytes >>> 24
    const keyAt = pos + RECORD_HEADER_BYTES
    if (keyBytes <= SHORT_KEY_BYTES) for (let k = 0; k < keyBytes; k++) out[keyAt + k] = op.key.charCodeAt(k)
    else out.write(op.key, keyAt, keyBytes, 'latin1')
    if (op.value !== undefined) out.set(op.value, keyAt + keyBytes)
    const end = keyAt + keyBytes + valueBytes
    const next = align8(end)
    for (let z = end; z < next; z++) out[z] = 0
    pos = next
  }
  out.fill(0, MARKER_OFFSET, MARKER_OFFSET + 8)
  out.writeUInt32LE(BATCH_MAGIC, 8)
  out.writeUInt32LE(pos - BATCH_HEADER_BYTES, 12)
  writeU64(out, 16, seq)
  out.writeUInt32LE(ops.length, 24)
  out.writeUInt32LE(crc32c(out, BATCH_HEADER_BYTES, pos - BATCH_HEADER_BYTES, crc32c(out, 8, 20)), CRC_OFFSET)
  return pos
}

/** Offset of the stored crc32c inside a batch header. */
const CRC_OFFSET = 28

/** The stored crc32c of the batch whose header starts at `at` in `view`. */
export function batchChecksum(view: Buffer, at: number): number {
  return view.readUInt32LE(at + CRC_OFFSET)
}

/**
 * Extends a segment's batch fingerprint with the next batch's checksum
 * (FNV-1a step and a final mix over 32-bit words). Not stored in the
 * daxfile: the index checkpoint records it to tell its batches from other
 * batches that carry the same sequence numbers.
 */
export function chainBatch(chain: number, batchCrc: number): number {
  let h = Math.imul((chain ^ batchCrc) >>> 0, 0x01000193)
  h ^= h >>> 15
  return Math.imul(h, 0x2c1b3c6d) >>> 0
}

/** Why the log ends at a batch position (see docs/format.md, "valid if and only if"). */
export type BatchEnd =
  /** The header is all zero: the log simply ends here. */
  | 'zero'
  /** Not enough room left in the segment for a batch header. */
  | 'space'
  /** The commit marker does not equal the expected sequence number. */
  | 'marker'
  /** The header is inconsistent (magic, seq, length beyond the segment). */
  | 'header'
  /** The crc32c of header and payload does not match. */
  | 'checksum'
  /** The checksum matched but the records do not parse: a bug or a crc collision. */
  | 'records'

export type BatchCheck =
  | { readonly ok: true; readonly length: number; readonly recordCount: number }
  | { readonly ok: false; readonly end: BatchEnd }

/**
 * A batch at the start of `view` is valid if and only if: its marker word
 * equals `expectedSeq`; its magic is "DXBT"; its header's seq equals
 * `expectedSeq`; header plus payload fit in `view`; the crc32c of header
 * bytes [8, 28) and the payload equals the stored crc; and the payload
 * parses into exactly recordCount well-formed records.
 */
export function checkBatch(view: Buffer, expectedSeq: number, crc32c: Crc32c): BatchCheck {
  if (view.length < BATCH_HEADER_BYTES) return { ok: false, end: 'space' }
  if (view.readDoubleLE(MARKER_OFFSET) !== expectedSeq) {
    return { ok: false, end: isZero(view, 0, BATCH_HEADER_BYTES) ? 'zero' : 'marker' }
  }
  const payloadBytes = view.readUInt32LE(12)
  const length = BATCH_HEADER_BYTES + payloadBytes
  if (
    view.readUInt32LE(8) !== BATCH_MAGIC ||
    readU64(view, 16) !== expectedSeq ||
    payloadBytes % 8 !== 0 ||
    length > view.length
  ) {
    return { ok: false, end: 'header' }
  }
  const crc = crc32c(view, BATCH_HEADER_BYTES, payloadBytes, crc32c(view, 8, 20))
  if (crc !== batchChecksum(view, 0)) return { ok: false, end: 'checksum' }
  const recordCount = view.readUInt32LE(24)
  if (!recordsWellFormed(view, length, recordCount)) return { ok: false, end: 'records' }
  return { ok: true, length, recordCount }
}

function recordsWellFormed(view: Buffer, length: number, recordCount: number): boolean {
  let pos = BATCH_HEADER_BYTES
  for (let i = 0; i < recordCount; i++) {
    if (pos + RECORD_HEADER_BYTES > length) return false
    const type = recordType(view, pos)
    const keyBytes = recordKeyBytes(view, pos)
    const valueBytes = recordValueBytes(view, pos)
    if ((type !== RECORD_PUT && type !== RECORD_DEL) || (type === RECORD_DEL && valueBytes !== 0)) return false
    pos += recordBytes(keyBytes, valueBytes)
  }
  return pos === length
}

/**
 * Calls `visit` for each record of a batch already accepted by checkBatch,
 * with the record's offset relative to `view`.
 */
export function forEachRecord(
  view: Buffer,
  recordCount: number,
  visit: (type: number, recordOffset: number, keyBytes: number, valueBytes: number) => void,
): void {
  let pos = BATCH_HEADER_BYTES
  for (let i = 0; i < recordCount; i++) {
    const keyBytes = recordKeyBytes(view, pos)
    const valueBytes = recordValueBytes(view, pos)
    visit(recordType(view, pos), pos, keyBytes, valueBytes)
    pos += recordBytes(keyBytes, valueBytes)
  }
}

/** True when buf[start, end) holds only zero bytes. */
export function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i += ZERO_CHUNK.length) {
    const n = Math.min(ZERO_CHUNK.length, end - i)
    if (!buf.subarray(i, i + n).equals(ZERO_CHUNK.subarray(0, n))) return false
  }
  return true
}

/** One past the last nonzero byte of buf[start, end), or `start` when all are zero. */
export function nonZeroEnd(buf: Buffer, start: number, end: number): number {
  for (let hi = end; hi > start; ) {
    const lo = Math.max(start, hi - ZERO_CHUNK.length)
    if (!isZero(buf, lo, hi)) {
      for (let i = hi - 1; i >= lo; i--) if (buf[i] !== 0) return i + 1
    }
    hi = lo
  }
  return start
}

const ZERO_CHUNK = Buffer.alloc(64 * 1024)
