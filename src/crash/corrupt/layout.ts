/**
 * The corrupt-file campaign's map of an undamaged daxfile: where its
 * superblock copies, segment headers, batches, records and unused ends
 * lie, and which keys each batch holds. It reads the bytes with the format
 * layer's decoders only, never through recovery, so the campaign's judge
 * does not take the code under test as its own reference.
 */
import { checkBatch, forEachRecord } from '../../format/batch.js'
import { BATCH_HEADER_BYTES, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, SUPERBLOCK_BYTES } from '../../format/constants.js'
import { recordKeyStart } from '../../format/record.js'
import { SEGMENT_FREE_MARK, decodeSegmentHeader, segmentDataOffset, segmentEndOffset, segmentHeaderOffset } from '../../format/segment.js'
import { decodeSuperblock, superblockOffset, type Superblock } from '../../format/superblock.js'
import { native } from '../../platform/native.js'

/** A byte range of the file, [start, end). */
export interface Range {
  readonly start: number
  readonly end: number
}

/** One record of a batch: its key (a byte string) and where its parts lie. */
export interface RecordAt {
  readonly key: string
  readonly header: Range
  readonly keyBytes: Range
  readonly value: Range
}

/** One valid batch of a segment in use. */
export interface BatchAt extends Range {
  readonly seq: number
  readonly segment: number
  readonly records: readonly RecordAt[]
}

export interface SegmentAt {
  readonly index: number
  readonly header: Range
  /** 'used': a valid header; 'free': the free mark; 'blank': neither (never used, or an all-zero header). */
  readonly state: 'used' | 'free' | 'blank'
  /** Bytes after the last valid batch, to the segment's end (used segments only). */
  readonly unusedEnd: Range | undefined
}

export interface FileLayout {
  readonly superblock: Superblock
  readonly fileBytes: number
  readonly superblockCopies: readonly Range[]
  readonly segments: readonly SegmentAt[]
  /** Every valid batch of every segment in use, in sequence order. */
  readonly batches: readonly BatchAt[]
}

/** Maps `image`, a whole undamaged daxfile; throws when its superblock is unreadable. */
export function mapDaxfile(image: Buffer): FileLayout {
  const copies = [0, 1].map((slot) => decodeSuperblock(image.subarray(superblockOffset(slot as 0 | 1)), native.crc32c))
  const valid = copies.flatMap((c) => (c.ok ? [c.superblock] : []))
  if (valid.length === 0) throw new Error('the base daxfile has no valid superblock')
  const superblock = valid.reduce((a, b) => (b.updateCounter > a.updateCounter ? b : a))
  const { segmentBytes, segmentCount, fileId } = superblock
  const segments: SegmentAt[] = []
  const batches: BatchAt[] = []
  for (let index = 0; index < segmentCount; index++) {
    const headerAt = segmentHeaderOffset(index, segmentBytes)
    const header = { start: headerAt, end: headerAt + SEGMENT_HEADER_BYTES }
    const end = segmentEndOffset(index, segmentBytes)
    const decoded = decodeSegmentHeader(image.subarray(headerAt, header.end), fileId, index, native.crc32c)
    if (decoded === undefined) {
      const free = image.readDoubleLE(headerAt) === SEGMENT_FREE_MARK
      segments.push({ index, header, state: free ? 'free' : 'blank', unusedEnd: undefined })
      continue
    }
    let at = segmentDataOffset(index, segmentBytes)
    for (let seq = decoded.firstBatchSeq; ; seq++) {
      const view = image.subarray(at, end)
      const check = checkBatch(view, seq, native.crc32c)
      if (!check.ok) break
      const records: RecordAt[] = []
      forEachRecord(view, check.recordCount, (_type, offset, keyBytes, valueBytes) => {
        const start = at + offset
        const keyStart = at + recordKeyStart(offset)
        records.push({
          key: image.toString('latin1', keyStart, keyStart + keyBytes),
          header: { start, end: start + RECORD_HEADER_BYTES },
          keyBytes: { start: keyStart, end: keyStart + keyBytes },
          value: { start: keyStart + keyBytes, end: keyStart + keyBytes + valueBytes },
        })
      })
      batches.push({ start: at, end: at + check.length, seq, segment: index, records })
      at += check.length
    }
    segments.push({ index, header, state: 'used', unusedEnd: { start: at, end } })
  }
  batches.sort((a, b) => a.seq - b.seq)
  return {
    superblock,
    fileBytes: image.length,
    superblockCopies: [0, 1].map((slot) => ({ start: superblockOffset(slot as 0 | 1), end: superblockOffset(slot as 0 | 1) + SUPERBLOCK_BYTES })),
    segments,
    batches,
  }
}

/** The header part of a batch: its commit marker, magic, seq, count and checksum. */
export function batchHeader(batch: BatchAt): Range {
  return { start: batch.start, end: batch.start + BATCH_HEADER_BYTES }
}

/** Whether two ranges share a byte. */
export function overlaps(a: Range, b: Range): boolean {
  return a.start < b.end && b.start < a.end
}
