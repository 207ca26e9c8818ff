import { DaxKVError, ErrorCode } from '../errors.js'
import { BATCH_HEADER_BYTES, BATCH_MAGIC, FORMAT_VERSION_V1, SEGMENT_HEADER_BYTES } from '../format/constants.js'
import { batchChecksum, chainBatch, checkBatch, forEachRecord, isZero, nonZeroEnd, type BatchEnd } from '../format/batch.js'
import { recordBytes } from '../format/record.js'
import {
  SEGMENT_FREE_MARK,
  decodeSegmentHeader,
  segmentDataOffset,
  segmentEndOffset,
  segmentHeaderOffset,
} from '../format/segment.js'
import { SUPERBLOCK_FLAG_RELAXED, type Superblock } from '../format/superblock.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { native } from '../platform/native.js'
import { blankSegment, type SegmentState } from './log-state.js'

/** A torn tail that recovery cut off (not an error: the writer died mid-batch). */
export interface TornTail {
  readonly segment: number
  readonly offset: number
  readonly bytes: number
  readonly reason: BatchEnd
}

export interface RecoveryReport {
  readonly batches: number
  readonly records: number
  readonly bytesScanned: number
  readonly segmentsInUse: number
  readonly tornTail: TornTail | undefined
  /**
   * Non-zero bytes found in the unused end of sealed segments, where no
   * batch can be missing (the next segment continues the log): damage to
   * bytes that hold no data, reported and left as found.
   */
  readonly unusedEndDamage: readonly TornTail[]
  /** The superblock copy (0 or 1) found damaged and rewritten from the other, if any. */
  readonly superblockRepaired: 0 | 1 | undefined
  readonly durationMs: number
  /**
   * 'log' when the whole log was replayed into the index; 'checkpoint' when
   * the index was loaded from the index checkpoint (of a clean close, or
   * one taken in the background) and only the batches written after it
   * were replayed. Either way every batch was validated (the counts
   * above). `db.verify()` replays the whole log.
   */
  readonly source: 'log' | 'checkpoint'
  /** Why a checkpoint file that was present could not be used (the log was replayed instead). */
  readonly checkpointRejected: string | undefined
  /** Records applied to the index: all of them after a replay, those written after the checkpoint otherwise. */
  readonly recordsReplayed: number
}

export interface RecoveryResult {
  /** The segment table recover() filled in. */
  readonly segments: SegmentState[]
  /** Index of the head segment (the newest in use), or -1 when the log is empty. */
  readonly head: number
  readonly nextBatchSeq: number
  readonly nextSegmentSeq: number
  /** The chain of the segment holding batch `fromSeq - 1`, right after that batch (undefined if no such batch). */
  readonly chainBeforeFrom: number | undefined
  readonly report: RecoveryReport
}

/** Receives every record of every valid batch, in log order, with its file offset and size. */
export type RecordVisitor = (type: number, location: number, bytes: number) => void

/**
 * Rebuilds the log state of a daxfile (docs/format.md, "Recovery") into
 * `segments`, a table from {@link readSegmentTable}: each segment in use
 * gets its data end, last seq and batch fingerprint.
 *
 * Segments with a valid header are replayed in segmentSeq order. Inside a
 * segment, batches are applied while each is valid for the next expected
 * sequence number; the first invalid one ends that segment. Only the head
 * segment may end in garbage (a torn tail): recovery zeroes and persists it
 * so that no later write can land next to stale bytes. A sealed segment that
 * ends in anything but zeros lost acknowledged batches to corruption:
 * recovery refuses to guess and throws DAXKV_CORRUPTION.
 *
 * Recovery writes only that zeroing, which is idempotent: a crash during
 * recovery leaves an image that recovers to the same state. (The caller
 * makes the whole file durable before recovery: open-log.ts, step 1.) With
 * `repair: false` it writes nothing and only reports (used by verify).
 * It validates every batch (checksums, sequence, sealed tails) but hands
 * `visit` only the records of batches from `fromSeq` on: an open from an
 * index checkpoint replays only what follows it.
 */
export function recover(
  domain: PersistenceDomain,
  superblock: Superblock,
  segments: SegmentState[],
  visit: RecordVisitor,
  options: { readonly repair: boolean; readonly fromSeq?: number } = { repair: true },
): RecoveryResult {
  const fromSeq = options.fromSeq ?? 1
  let recordsVisited = 0
  let chainBeforeFrom: number | undefined
  const started = performance.now()
  const { segmentBytes } = superblock
  const inUse = segments.filter((s) => s.header !== undefined).sort((a, b) => a.header!.segmentSeq - b.header!.segmentSeq)

  let batches = 0
  let records = 0
  let bytesScanned = 0
  let lastSeq = 0
  let lastSegmentSeq = 0
  let previous: SegmentState | undefined
  let tornTail: TornTail | undefined
  const unusedEndDamage: TornTail[] = []
  for (let n = 0; n < inUse.length; n++) {
    const segment = inUse[n]!
    const header = segment.header!
    const isHead = n === inUse.length - 1
    if (header.segmentSeq === lastSegmentSeq || header.firstBatchSeq <= lastSeq) {
      throw new DaxKVError(
        ErrorCode.CORRUPTION,
        `segment ${segment.index} (segmentSeq ${header.segmentSeq}, first batch ${header.firstBatchSeq}) does not follow the log before it ` +
          `(segmentSeq ${lastSegmentSeq}, last batch ${lastSeq}); the file is damaged: Restore the file from a backup`,
      )
    }
    // A segment is opened right after its predecessor in segmentSeq order
    // stopped taking batches; if that predecessor is still in use, its log
    // must end exactly before this segment's first batch, or batches at its
    // end were lost (zeroed or damaged), which no crash can cause.
    if (previous !== undefined && previous.header!.segmentSeq === header.segmentSeq - 1 && previous.lastSeq !== header.firstBatchSeq - 1) {
      throw new DaxKVError(
        ErrorCode.CORRUPTION,
        `segment ${previous.index} ends at batch ${previous.lastSeq}, but the segment opened after it (${segment.index}) starts at batch ` +
          `${header.firstBatchSeq}: acknowledged batches are missing. Restore the file from a backup`,
      )
    }
    const start = segmentDataOffset(segment.index, segmentBytes)
    const end = segmentEndOffset(segment.index, segmentBytes)
    const view = domain.view(start, end - start)
    let pos = 0
    let expected = header.firstBatchSeq
    let endReason: BatchEnd = 'space'
    for (;;) {
      const check = checkBatch(view.subarray(pos), expected, native.crc32c)
      if (!check.ok) {
        endReason = check.end
        break
      }
      if (expected >= fromSeq) {
        recordsVisited += check.recordCount
        const batchStart = start + pos
        const batchView = view.subarray(pos, pos + check.length)
        forEachRecord(batchView, check.recordCount, (type, recordOffset, keyBytes, valueBytes) => {
          visit(type, batchStart + recordOffset, recordBytes(keyBytes, valueBytes))
        })
      }
      segment.chain = chainBatch(segment.chain, batchChecksum(view, pos))
      if (expected === fromSeq - 1) chainBeforeFrom = segment.chain
      batches++
      records += check.recordCount
      pos += check.length
      expected++
    }
    bytesScanned += pos
    segment.dataEnd = start + pos
    segment.lastSeq = expected - 1
    lastSeq = expected - 1
    lastSegmentSeq = header.segmentSeq
    previous = segment
    const garbageEnd = nonZeroEnd(view, pos, view.length)
    if (!isHead) {
      if (garbageEnd > pos) {
        // The unused end of a sealed segment was written by no one (invariant
        // Z). Damage there is harmless when the segment opened after this one
        // is still in use and starts right after its last batch: then no
        // batch is missing here, and the bytes are reported, not refused.
        const next = inUse[n + 1]!.header!
        const continued = next.segmentSeq === header.segmentSeq + 1 && next.firstBatchSeq === expected
        if (!continued || intactBatchAfter(view, pos, expected, garbageEnd) !== undefined) {
          throw new DaxKVError(
            ErrorCode.CORRUPTION,
            `segment ${segment.index} is sealed but its batch ${expected} at file offset ${start + pos} is invalid (${endReason}) ` +
              `and is followed by data: acknowledged writes are damaged. Restore the file from a backup`,
          )
        }
        unusedEndDamage.push({ segment: segment.index, offset: start + pos, bytes: garbageEnd - pos, reason: endReason })
      }
      continue
    }
    if (garbageEnd > pos) {
      // An intact batch after the invalid one proves that batch was
      // committed: the writer starts a batch only once the one before it is
      // (Steps 1-4), so this is damage, not a crash. Only a store written
      // with sync: false (the superblock's RELAXED flag) may lose an earlier
      // batch to a power failure and keep a later one.
      const later = intactBatchAfter(view, pos, expected, garbageEnd)
      if (later !== undefined && (superblock.flags & SUPERBLOCK_FLAG_RELAXED) === 0) {
        throw new DaxKVError(
          ErrorCode.CORRUPTION,
          `segment ${segment.index}: batch ${expected} at file offset ${start + pos} is invalid (${endReason}), but batch ${later.seq} at offset ` +
            `${start + later.at} after it is intact: acknowledged writes from batch ${expected} on are damaged, not torn by a crash. ` +
            `Restore the file from a backup`,
        )
      }
      // Crash: the writer died while writing this batch, so its marker was
      // never acknowledged. Zeroing the tail now means a later batch written
      // here can never be followed by stale bytes that happen to parse.
      tornTail = { segment: segment.index, offset: start + pos, bytes: garbageEnd - pos, reason: endReason }
      if (options.repair) {
        domain.zero(start + pos, garbageEnd - pos)
        domain.persist(start + pos, garbageEnd - pos)
      }
    }
  }
  const head = inUse.length === 0 ? -1 : inUse[inUse.length - 1]!.index
  return {
    segments,
    head,
    chainBeforeFrom,
    nextBatchSeq: lastSeq + 1,
    nextSegmentSeq: lastSegmentSeq + 1,
    report: {
      batches,
      records,
      bytesScanned,
      segmentsInUse: inUse.length,
      tornTail,
      unusedEndDamage,
      superblockRepaired: undefined,
      durationMs: performance.now() - started,
      source: 'log',
      checkpointRejected: undefined,
      recordsReplayed: recordsVisited,
    },
  }
}

/**
 * The first batch at an 8-byte boundary in view[from + 8, limit) that is
 * intact for a sequence number of at least `expected`, if any: evidence
 * that the log went on past the invalid batch at `from`.
 */
function intactBatchAfter(view: Buffer, from: number, expected: number, limit: number): { seq: number; at: number } | undefined {
  const seqMax = expected + Math.ceil((limit - from) / BATCH_HEADER_BYTES)
  for (let at = from + 8; at + BATCH_HEADER_BYTES <= limit; at += 8) {
    const seq = view.readDoubleLE(at)
    if (!(seq >= expected && seq <= seqMax && Number.isInteger(seq)) || view.readUInt32LE(at + 8) !== BATCH_MAGIC) continue
    if (checkBatch(view.subarray(at), seq, native.crc32c).ok) return { seq, at }
  }
  return undefined
}

/**
 * Decodes every segment header: the segment table with each segment empty
 * (dataEnd at its data start). Throws DAXKV_CORRUPTION for a damaged header
 * over data. Writes nothing.
 */
export function readSegmentTable(domain: PersistenceDomain, superblock: Superblock): SegmentState[] {
  const { segmentBytes, segmentCount, fileId } = superblock
  const segments: SegmentState[] = []
  for (let index = 0; index < segmentCount; index++) {
    const headerAt = segmentHeaderOffset(index, segmentBytes)
    const headerView = domain.view(headerAt, SEGMENT_HEADER_BYTES)
    const header = decodeSegmentHeader(headerView, fileId, index, native.crc32c)
    const dataStart = segmentDataOffset(index, segmentBytes)
    // A segment without a valid header is free if it says so (freed by
    // compaction), or if it holds nothing: a segment never used is zero,
    // and one whose header was being zeroed or written (R2, R3) has a zero
    // body, as R2 zeroes the body first. Past the count of segments ever
    // used (format 2) only the first batch slot is looked at; below it (or
    // when the count is unknown) the whole body, so that a damaged header
    // over batches is never taken for a free segment. Anything else is a
    // damaged header over live data.
    const everUsed = superblock.formatVersion === FORMAT_VERSION_V1 || index < superblock.segmentsUsed
    const bodyEnd = everUsed ? segmentEndOffset(index, segmentBytes) : dataStart + BATCH_HEADER_BYTES
    if (header === undefined && headerView.readDoubleLE(0) !== SEGMENT_FREE_MARK && !isZero(domain.view(dataStart, bodyEnd - dataStart), 0, bodyEnd - dataStart)) {
      throw new DaxKVError(
        ErrorCode.CORRUPTION,
        `segment ${index} has a damaged header but holds batches (file offset ${headerAt}); its data cannot be trusted or skipped. Restore the file from a backup`,
      )
    }
    segments.push({ ...blankSegment(index, segmentBytes), header })
  }
  return segments
}
