import { segmentDataOffset, segmentEndOffset, type SegmentHeader } from '../format/segment.js'
import type { Superblock } from '../format/superblock.js'

/** What the engine knows about one segment. */
export interface SegmentState {
  readonly index: number
  /** The segment's header, or undefined when the segment is free. */
  header: SegmentHeader | undefined
  /** One past the last valid batch (the data start when empty or free). */
  dataEnd: number
  /** Sequence number of the segment's last batch (0 when it has none). */
  lastSeq: number
  /** Bytes of records compaction would have to copy: live puts and the latest tombstones. */
  liveBytes: number
  /** Records superseded by a later record of the same key (puts and tombstones). */
  deadRecords: number
  /** Bytes of the live tombstones among the live bytes (cleaning drops rather than copies them when it may). */
  tombstoneBytes: number
  /** Bytes of the largest record ever appended to the segment (an upper bound of its live ones). */
  maxRecordBytes: number
  /** Fingerprint of the segment's batches so far: their checksums chained in log order (format/batch.ts, chainBatch); 0 when it has none. */
  chain: number
}

/** A free segment's state. */
export function blankSegment(index: number, segmentBytes: number): SegmentState {
  return { index, header: undefined, dataEnd: segmentDataOffset(index, segmentBytes), lastSeq: 0, liveBytes: 0, deadRecords: 0, tombstoneBytes: 0, maxRecordBytes: 0, chain: 0 }
}

/** Counters a store keeps about its own work since it was opened. */
export interface LogCounters {
  /** Batches and records appended for callers (not compaction copies). */
  batches: number
  records: number
  /** Bytes appended for callers. */
  bytesAppended: number
  segmentsOpened: number
  /** Segments compaction cleaned and freed. */
  compactions: number
  /** Bytes compaction appended again (live records and needed tombstones). */
  bytesCopied: number
  tombstonesDropped: number
  growths: number
}

/**
 * Where the log stands: the geometry in effect, every segment's state, the
 * head and the write position, and the next sequence numbers. Open builds
 * it from what recovery found (open-log.ts); from then on only the writer
 * (writer.ts) changes it, and the other parts read it.
 */
export class LogState {
  superblock: Superblock
  /** The superblock slot holding the copy in effect; the next update writes the other. */
  superblockSlot: 0 | 1
  readonly segments: SegmentState[]
  /** Index of the head segment (the newest in use), or -1 when the log is empty. */
  head: number
  /** Write position and end of the head segment (both 0 without a head). */
  pos: number
  end: number
  /** Start of the bytes in the head appended but not yet persisted (sync: false). */
  unpersistedFrom: number
  nextBatchSeq: number
  nextSegmentSeq: number
  readonly counters: LogCounters = {
    batches: 0,
    records: 0,
    bytesAppended: 0,
    segmentsOpened: 0,
    compactions: 0,
    bytesCopied: 0,
    tombstonesDropped: 0,
    growths: 0,
  }

  constructor(
    superblock: Superblock,
    superblockSlot: 0 | 1,
    segments: SegmentState[],
    head: number,
    next: { readonly batchSeq: number; readonly segmentSeq: number },
  ) {
    this.superblock = superblock
    this.superblockSlot = superblockSlot
    this.segments = segments
    this.head = head
    this.nextBatchSeq = next.batchSeq
    this.nextSegmentSeq = next.segmentSeq
    const headState = segments[head]
    this.pos = headState === undefined ? 0 : headState.dataEnd
    this.end = headState === undefined ? 0 : segmentEndOffset(headState.index, superblock.segmentBytes)
    this.unpersistedFrom = this.pos
  }

  get segmentBytes(): number {
    return this.superblock.segmentBytes
  }
}
