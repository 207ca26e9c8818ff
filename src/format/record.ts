import { RECORD_HEADER_BYTES, align8 } from './constants.js'
import { hashBytes } from './key-hash.js'

/**
 * Records, and the one set of accessors every reader of a record uses.
 *
 * Record (8-byte header, then key and value bytes, zero-padded to 8):
 *   0  type u8 (1 put, 2 del), flags u8 (zero), keyBytes u16, valueBytes u32
 *   8  key, value, padding
 *
 * Each accessor takes the buffer holding the record and the record's offset
 * `at` in it. They trust the record: a batch's checksum and its record
 * parse (batch.ts, checkBatch) are checked before any record of it is read.
 * They use plain byte loads, as they run on every get and every replayed
 * record.
 */

/** Bytes a record with these key and value lengths occupies, padding included. */
export function recordBytes(keyBytes: number, valueBytes: number): number {
  return align8(RECORD_HEADER_BYTES + keyBytes + valueBytes)
}

export function recordType(buf: Uint8Array, at: number): number {
  return buf[at]!
}

export function recordKeyBytes(buf: Uint8Array, at: number): number {
  return buf[at + 2]! | (buf[at + 3]! << 8)
}

export function recordValueBytes(buf: Uint8Array, at: number): number {
  return (buf[at + 4]! | (buf[at + 5]! << 8) | (buf[at + 6]! << 16)) + buf[at + 7]! * 0x1000000
}

/** Bytes the record at `at` occupies, padding included. */
export function recordLength(buf: Uint8Array, at: number): number {
  return recordBytes(recordKeyBytes(buf, at), recordValueBytes(buf, at))
}

/** Offset of the record's first key byte. */
export function recordKeyStart(at: number): number {
  return at + RECORD_HEADER_BYTES
}

/** Offset of the record's first value byte. */
export function recordValueStart(buf: Uint8Array, at: number): number {
  return at + RECORD_HEADER_BYTES + recordKeyBytes(buf, at)
}

/** The record's key as a byte string (one char per byte, latin1). */
export function recordKey(buf: Buffer, at: number): string {
  const start = at + RECORD_HEADER_BYTES
  return buf.toString('latin1', start, start + recordKeyBytes(buf, at))
}

/** The record's value bytes: a view into `buf`, not a copy. */
export function recordValue(buf: Buffer, at: number): Buffer {
  const start = recordValueStart(buf, at)
  return buf.subarray(start, start + recordValueBytes(buf, at))
}

/** True when the record's key is `key` (a byte string). */
export function recordKeyEquals(buf: Uint8Array, at: number, key: string): boolean {
  if (recordKeyBytes(buf, at) !== key.length) return false
  const start = at + RECORD_HEADER_BYTES
  for (let i = 0; i < key.length; i++) if (buf[start + i] !== key.charCodeAt(i)) return false
  return true
}

/** True when the records at `a[at]` and `b[bt]` have the same key. */
export function recordKeysEqual(a: Uint8Array, at: number, b: Uint8Array, bt: number): boolean {
  const length = recordKeyBytes(a, at)
  if (recordKeyBytes(b, bt) !== length) return false
  const sa = at + RECORD_HEADER_BYTES
  const sb = bt + RECORD_HEADER_BYTES
  for (let i = 0; i < length; i++) if (a[sa + i] !== b[sb + i]) return false
  return true
}

/** hashKey (key-hash.ts) of the record's key. */
export function recordKeyHash(buf: Uint8Array, at: number): number {
  const start = at + RECORD_HEADER_BYTES
  return hashBytes(buf, start, start + recordKeyBytes(buf, at))
}
