import type { Crc32c } from './checksum.js'
import {
  FILE_BYTES_MAX,
  FORMAT_VERSION,
  SEGMENT_BYTES_MAX,
  SEGMENT_BYTES_MIN,
  SUPERBLOCK_BYTES,
  SUPERBLOCK_MAGIC,
  SUPERBLOCK_SLOT_BYTES,
} from './constants.js'
import { readU64, writeU64 } from './u64.js'

/**
 * The superblock: identity and geometry of a daxfile. Two copies live in the
 * first two pages; an update writes the copy that is not current with a
 * higher `updateCounter`, so one valid copy survives any crash.
 *
 * Layout (64 bytes, little-endian):
 *   0  magic "DAXKV\0SB"          8
 *   8  formatVersion u32, flags u32
 *  16  fileBytes u64
 *  24  segmentBytes u32, segmentCount u32
 *  32  updateCounter u64
 *  40  createdMs u64
 *  48  fileId u64
 *  56  reserved u32 (zero), crc32c u32 of bytes [0, 60)
 */
export interface Superblock {
  readonly formatVersion: number
  readonly fileBytes: number
  readonly segmentBytes: number
  readonly segmentCount: number
  readonly updateCounter: number
  readonly createdMs: number
  /** Random nonzero 48-bit id; every segment header repeats it. */
  readonly fileId: number
}

export function encodeSuperblock(sb: Superblock, crc32c: Crc32c): Buffer {
  const buf = Buffer.alloc(SUPERBLOCK_BYTES)
  SUPERBLOCK_MAGIC.copy(buf, 0)
  buf.writeUInt32LE(sb.formatVersion, 8)
  buf.writeUInt32LE(0, 12)
  writeU64(buf, 16, sb.fileBytes)
  buf.writeUInt32LE(sb.segmentBytes, 24)
  buf.writeUInt32LE(sb.segmentCount, 28)
  writeU64(buf, 32, sb.updateCounter)
  writeU64(buf, 40, sb.createdMs)
  writeU64(buf, 48, sb.fileId)
  buf.writeUInt32LE(crc32c(buf, 0, 60), 60)
  return buf
}

/** Why one superblock copy was rejected; `ok` carries the decoded copy. */
export type SuperblockCheck =
  | { readonly ok: true; readonly superblock: Superblock }
  | { readonly ok: false; readonly reason: 'magic' | 'checksum' | 'version' | 'geometry'; readonly detail: string }

/** Decodes and validates one copy. `buf` holds at least SUPERBLOCK_BYTES bytes. */
export function decodeSuperblock(buf: Buffer, crc32c: Crc32c): SuperblockCheck {
  if (!buf.subarray(0, 8).equals(SUPERBLOCK_MAGIC)) {
    return { ok: false, reason: 'magic', detail: 'magic bytes are not "DAXKV\\0SB"' }
  }
  const stored = buf.readUInt32LE(60)
  const computed = crc32c(buf, 0, 60)
  if (stored !== computed) {
    return { ok: false, reason: 'checksum', detail: `crc32c stored ${hex(stored)} computed ${hex(computed)}` }
  }
  const formatVersion = buf.readUInt32LE(8)
  if (formatVersion !== FORMAT_VERSION) {
    return { ok: false, reason: 'version', detail: `format version ${formatVersion}, this daxkv reads ${FORMAT_VERSION}` }
  }
  const superblock: Superblock = {
    formatVersion,
    fileBytes: readU64(buf, 16),
    segmentBytes: buf.readUInt32LE(24),
    segmentCount: buf.readUInt32LE(28),
    updateCounter: readU64(buf, 32),
    createdMs: readU64(buf, 40),
    fileId: readU64(buf, 48),
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
  return { ok: true, superblock }
}

/** Byte offset of superblock copy `slot` (0 or 1). */
export function superblockOffset(slot: 0 | 1): number {
  return slot * SUPERBLOCK_SLOT_BYTES
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0')
}
