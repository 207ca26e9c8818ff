import type { Crc32c } from './checksum.js'
import {
  FILE_BYTES_MAX,
  FORMAT_VERSION,
  FORMAT_VERSION_V1,
  SEGMENT_BYTES_MAX,
  SEGMENT_BYTES_MIN,
  SUPERBLOCK_BYTES,
  SUPERBLOCK_BYTES_V1,
  SUPERBLOCK_MAGIC,
  SUPERBLOCK_SLOT_BYTES,
} from './constants.js'
import { readU64, writeU64 } from './u64.js'

/**
 * The superblock: identity and geometry of a daxfile, and what the writer
 * records about the log beyond it. Two copies live in the first two pages;
 * an update writes the copy that is not current with a higher
 * `updateCounter`, so one valid copy survives any crash.
 *
 * Layout of format 2 (128 bytes, little-endian):
 *   0  magic "DAXKV\0SB"                 8
 *   8  formatVersion u32 (2), flags u32 (bit 0: RELAXED)
 *  16  fileBytes u64
 *  24  segmentBytes u32, segmentCount u32
 *  32  updateCounter u64
 *  40  createdMs u64
 *  48  fileId u64
 *  56  segmentsUsed u32, reserved u32 (zero)
 *  64  checkpointDigest: the recorded index checkpoint's crc32c u32 and
 *      length u64, then 4 zero bytes (all zero: none)
 *  80  valueEncoding u8, keyEncoding u8 (codes; 0: not recorded)
 *  82  reserved, zero (42 bytes)
 * 124  crc32c u32 of bytes [0, 124)
 *
 * Format 1 is the first 64 bytes of this with version 1, `flags` zero and
 * the crc32c of bytes [0, 60) at 60. It is still read: flags 0, and
 * segmentsUsed and the digest unknown. Every copy written is format 2.
 * Bytes 80 and 81 were reserved zeros in the first format 2 files, which
 * therefore read as "not recorded"; the daxkv versions that wrote those
 * files ignore the bytes, so recording encodings needed no new version.
 */
export interface Superblock {
  readonly formatVersion: number
  /** SUPERBLOCK_FLAG_* bits. */
  readonly flags: number
  readonly fileBytes: number
  readonly segmentBytes: number
  readonly segmentCount: number
  readonly updateCounter: number
  readonly createdMs: number
  /** Random nonzero 48-bit id; every segment header repeats it. */
  readonly fileId: number
  /**
   * 1 + the highest segment index the writer has ever opened (written
   * before that segment's header), 0 when unknown (format 1). Segments from
   * here on were never used, so they hold nothing but zeros.
   */
  readonly segmentsUsed: number
  /**
   * What identifies the index checkpoint written last for this daxfile,
   * recorded once every batch it describes was durable: its CRC32C (the
   * file's last 4 bytes) and its length (u64), then 4 zero bytes; all zero
   * when there is none.
   */
  readonly checkpointDigest: Uint8Array
  /**
   * The value encoding the store was created with, as an index into
   * {@link VALUE_ENCODING_CODES}; 0 when not recorded (files created before
   * daxkv recorded it, and format 1). Any byte decodes: the public layer
   * refuses an open with a code it does not know.
   */
  readonly valueEncodingCode: number
  /** The key encoding the store was created with, as an index into {@link KEY_ENCODING_CODES}; 0 when not recorded. */
  readonly keyEncodingCode: number
}

/**
 * Value encodings by the code byte 80 records for them. Code 0 is "not
 * recorded"; a new encoding takes the next code, and a code never changes
 * meaning.
 */
export const VALUE_ENCODING_CODES = [undefined, 'msgpack', 'json', 'utf8', 'binary'] as const
/** Key encodings by the code byte 81 records for them; code 0 is "not recorded". */
export const KEY_ENCODING_CODES = [undefined, 'utf8', 'binary'] as const

/**
 * RELAXED: batches may have been appended without being made durable at
 * commit (`sync: false`) since the flag was set. A power failure can then
 * leave a later batch of the head durable while an earlier one is not, so
 * recovery treats a damaged batch followed by intact ones in the head as a
 * torn tail, not as corruption. Cleared once everything is durable.
 */
export const SUPERBLOCK_FLAG_RELAXED = 1

/** Bytes of {@link Superblock.checkpointDigest}. */
export const CHECKPOINT_DIGEST_BYTES = 16
const NO_DIGEST = new Uint8Array(CHECKPOINT_DIGEST_BYTES)

/** A digest of all zeros: no checkpoint recorded. */
export function noCheckpointDigest(): Uint8Array {
  return NO_DIGEST
}

/** Whether two checkpoint digests are the same bytes. */
export function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
}

/** Encodes `sb` in format 2 (whatever format it was read in). */
export function encodeSuperblock(sb: Superblock, crc32c: Crc32c): Buffer {
  const buf = Buffer.alloc(SUPERBLOCK_BYTES)
  SUPERBLOCK_MAGIC.copy(buf, 0)
  buf.writeUInt32LE(FORMAT_VERSION, 8)
  buf.writeUInt32LE(sb.flags, 12)
  writeU64(buf, 16, sb.fileBytes)
  buf.writeUInt32LE(sb.segmentBytes, 24)
  buf.writeUInt32LE(sb.segmentCount, 28)
  writeU64(buf, 32, sb.updateCounter)
  writeU64(buf, 40, sb.createdMs)
  writeU64(buf, 48, sb.fileId)
  buf.writeUInt32LE(sb.segmentsUsed, 56)
  buf.set(sb.checkpointDigest.subarray(0, CHECKPOINT_DIGEST_BYTES), 64)
  buf.writeUInt8(sb.valueEncodingCode, 80)
  buf.writeUInt8(sb.keyEncodingCode, 81)
  buf.writeUInt32LE(crc32c(buf, 0, SUPERBLOCK_BYTES - 4), SUPERBLOCK_BYTES - 4)
  return buf
}

/** Why one superblock copy was rejected; `ok` carries the decoded copy. */
export type SuperblockCheck =
  | { readonly ok: true; readonly superblock: Superblock }
  | { readonly ok: false; readonly reason: 'magic' | 'checksum' | 'version' | 'geometry'; readonly detail: string }

/** Decodes and validates one copy of format 1 or 2. `buf` holds at least SUPERBLOCK_BYTES bytes. */
export function decodeSuperblock(buf: Buffer, crc32c: Crc32c): SuperblockCheck {
  if (!buf.subarray(0, 8).equals(SUPERBLOCK_MAGIC)) {
    return { ok: false, reason: 'magic', detail: 'magic bytes are not "DAXKV\\0SB"' }
  }
  const formatVersion = buf.readUInt32LE(8)
  const known = formatVersion === FORMAT_VERSION || formatVersion === FORMAT_VERSION_V1
  // A version this daxkv does not know is reported as such only when a checksum of one of the
  // known layouts vouches for it; otherwise it is a damaged copy, which the other one repairs.
  const lengths = known ? [formatVersion === FORMAT_VERSION_V1 ? SUPERBLOCK_BYTES_V1 : SUPERBLOCK_BYTES] : [SUPERBLOCK_BYTES, SUPERBLOCK_BYTES_V1]
  const intact = lengths.some((bytes) => buf.readUInt32LE(bytes - 4) === crc32c(buf, 0, bytes - 4))
  if (!intact) {
    const bytes = lengths[0]!
    return { ok: false, reason: 'checksum', detail: `crc32c stored ${hex(buf.readUInt32LE(bytes - 4))} computed ${hex(crc32c(buf, 0, bytes - 4))}` }
  }
  if (!known) {
    return { ok: false, reason: 'version', detail: `format version ${formatVersion}, this daxkv reads ${FORMAT_VERSION_V1} and ${FORMAT_VERSION}` }
  }
  const v1 = formatVersion === FORMAT_VERSION_V1
  const superblock: Superblock = {
    formatVersion,
    flags: v1 ? 0 : buf.readUInt32LE(12),
    fileBytes: readU64(buf, 16),
    segmentBytes: buf.readUInt32LE(24),
    segmentCount: buf.readUInt32LE(28),
    updateCounter: readU64(buf, 32),
    createdMs: readU64(buf, 40),
    fileId: readU64(buf, 48),
    segmentsUsed: v1 ? 0 : buf.readUInt32LE(56),
    checkpointDigest: v1 ? NO_DIGEST : new Uint8Array(buf.subarray(64, 64 + CHECKPOINT_DIGEST_BYTES)),
    valueEncodingCode: v1 ? 0 : buf.readUInt8(80),
    keyEncodingCode: v1 ? 0 : buf.readUInt8(81),
  }
  const { fileBytes, segmentBytes, segmentCount } = superblock
  const pow2 = segmentBytes > 0 && (segmentBytes & (segmentBytes - 1)) === 0
  const sizes = segmentBytes >= SEGMENT_BYTES_MIN && segmentBytes <= SEGMENT_BYTES_MAX && fileBytes <= FILE_BYTES_MAX
  if (!pow2 || !sizes || segmentCount < 2 || fileBytes !== segmentBytes * segmentCount || superblock.fileId <= 0) {
    return {
      ok: false,
      reason: 'geometry',
      detail: `impossible geometry: ${segmentCount} segments of ${segmentBytes} bytes in ${fileBytes} bytes`,
    }
  }
  if (superblock.segmentsUsed > segmentCount || (superblock.flags & ~SUPERBLOCK_FLAG_RELAXED) !== 0) {
    return { ok: false, reason: 'geometry', detail: `impossible fields: ${superblock.segmentsUsed} segments used of ${segmentCount}, flags ${hex(superblock.flags)}` }
  }
  return { ok: true, superblock }
}

/** Byte offset of superblock copy `slot` (0 or 1). */
export function superblockOffset(slot: 0 | 1): number {
  return slot * SUPERBLOCK_SLOT_BYTES
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0')
}
