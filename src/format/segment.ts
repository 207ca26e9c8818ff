import type { Crc32c } from './checksum.js'
import { SEGMENT_HEADER_BYTES, SEGMENT_HEADER_VERSION, SEGMENT_MAGIC, SUPERBLOCK_AREA_BYTES } from './constants.js'
import { readU64, writeU64 } from './u64.js'

/**
 * Segment geometry and the segment header.
 *
 * Segment i covers file bytes [i * segmentBytes, (i + 1) * segmentBytes).
 * Its header sits at the segment's start, except in segment 0, whose first
 * SUPERBLOCK_AREA_BYTES hold the superblock copies. Batches follow the header.
 *
 * Header layout (64 bytes, little-endian):
 *   0  magic "DXSG" u32, version u32 (SEGMENT_HEADER_VERSION, 1)
 *   8  fileId u64            (rejects segments that belong to another daxfile)
 *  16  segmentSeq u64        (log order of segments; never reused)
 *  24  firstBatchSeq u64     (sequence number the segment's first batch must carry)
 *  32  segmentIndex u32      (rejects a header found at the wrong place), reserved u32
 *  40  reserved, zero        (16 bytes)
 *  56  reserved u32 (zero), crc32c u32 of bytes [0, 60)
 */
export interface SegmentHeader {
  readonly fileId: number
  readonly segmentSeq: number
  readonly firstBatchSeq: number
  readonly segmentIndex: number
}

/**
 * A freed segment's header starts with this double (one aligned 8-byte
 * store, so a crash cannot tear it): the segment is free and its body holds
 * stale batches that must never be replayed.
 */
export const SEGMENT_FREE_MARK = -1.5

/** Where segment `index`'s header starts. */
export function segmentHeaderOffset(index: number, segmentBytes: number): number {
  return index === 0 ? SUPERBLOCK_AREA_BYTES : index * segmentBytes
}

/** Where segment `index`'s first batch starts. */
export function segmentDataOffset(index: number, segmentBytes: number): number {
  return segmentHeaderOffset(index, segmentBytes) + SEGMENT_HEADER_BYTES
}

/** One past the last byte of segment `index`. */
export function segmentEndOffset(index: number, segmentBytes: number): number {
  return (index + 1) * segmentBytes
}

export function encodeSegmentHeader(h: SegmentHeader, crc32c: Crc32c): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES)
  buf.writeUInt32LE(SEGMENT_MAGIC, 0)
  buf.writeUInt32LE(SEGMENT_HEADER_VERSION, 4)
  writeU64(buf, 8, h.fileId)
  writeU64(buf, 16, h.segmentSeq)
  writeU64(buf, 24, h.firstBatchSeq)
  buf.writeUInt32LE(h.segmentIndex, 32)
  buf.writeUInt32LE(crc32c(buf, 0, 60), 60)
  return buf
}

/**
 * A segment header is valid if and only if its magic and version match, its
 * crc32c matches, it names this file's id and its own index, and its sequence
 * numbers are positive. Anything else means the segment is free.
 */
export function decodeSegmentHeader(buf: Buffer, fileId: number, index: number, crc32c: Crc32c): SegmentHeader | undefined {
  if (buf.readUInt32LE(0) !== SEGMENT_MAGIC || buf.readUInt32LE(4) !== SEGMENT_HEADER_VERSION) return undefined
  if (buf.readUInt32LE(60) !== crc32c(buf, 0, 60)) return undefined
  const header: SegmentHeader = {
    fileId: readU64(buf, 8),
    segmentSeq: readU64(buf, 16),
    firstBatchSeq: readU64(buf, 24),
    segmentIndex: buf.readUInt32LE(32),
  }
  if (header.fileId !== fileId || header.segmentIndex !== index) return undefined
  if (header.segmentSeq < 1 || header.firstBatchSeq < 1) return undefined
  return header
}
