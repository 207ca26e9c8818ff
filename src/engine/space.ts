import { BATCH_HEADER_BYTES } from '../format/constants.js'
import { segmentDataOffset, segmentEndOffset } from '../format/segment.js'
import type { SegmentState } from './log-state.js'

/**
 * The space policy (docs/space.md): the reserves, when cleaning is worth
 * it, and which segment it takes.
 */

/** Free segments only cleaning copies may take: cleaning can always move a victim's live records somewhere. */
export const CLEANER_RESERVE_SEGMENTS = 1
/**
 * Share of a segment that puts leave free for deletes, in the head and the
 * free segments beyond the cleaner's: a full store can always start
 * deleting (docs/space.md, "The reserves").
 */
export const DELETE_RESERVE_SHARE = 1 / 8
/** Below this many free segments (besides the reserves) background cleaning starts. */
export const FREE_SEGMENTS_LOW = 2
/**
 * Background cleaning, and the cleaning a put does before the file grows,
 * only take a victim that gives back at least this share of a segment.
 * Cleaning for a delete that would otherwise fail takes any victim that
 * gives back room for it.
 */
export const CLEANING_GAIN_MIN_SHARE = 0.2
/** Background compaction starts when garbage is at least this share of the used bytes. */
export const BACKGROUND_GARBAGE_RATIO = 0.3
/** Cleaning appends its copies in batches of about this many bytes of records. */
export const COPY_BATCH_BYTES = 64 * 1024
/** The gain estimate counts one batch header per this many bytes of the victim, more than cleaning ever writes. */
const COPY_HEADER_EVERY_BYTES = 16 * 1024

/** Bytes a segment can hold in batches. */
export function capacityOf(index: number, segmentBytes: number): number {
  return segmentEndOffset(index, segmentBytes) - segmentDataOffset(index, segmentBytes)
}

/** Bytes of batches in a segment in use. */
export function usedBytesOf(s: SegmentState, segmentBytes: number): number {
  return s.dataEnd - segmentDataOffset(s.index, segmentBytes)
}

/** Where the log stands, as far as choosing a victim is concerned. */
export interface CleaningView {
  readonly segments: readonly SegmentState[]
  readonly segmentBytes: number
  /** Index of the head segment, which is never a victim (-1 when there is none). */
  readonly head: number
  readonly nextBatchSeq: number
  /** Bytes the head can still take. */
  readonly headRoom: number
}

/**
 * What cleaning `s` would give back, at least. Freeing it gives its whole
 * capacity back; its copies take their bytes, their batch headers, and,
 * when they do not all fit in the head, the head's unused end: cleaning
 * cuts a copy batch where the head is full, so that end is shorter than
 * one record and its batch header. Tombstones that cleaning would drop
 * (`dropsTombstones`) are not copied.
 */
export function cleaningGain(s: SegmentState, view: CleaningView, dropsTombstones: boolean): { gain: number; copied: number } {
  const capacity = capacityOf(s.index, view.segmentBytes)
  const copied = s.liveBytes - (dropsTombstones ? s.tombstoneBytes : 0)
  const headers = BATCH_HEADER_BYTES * (2 + Math.ceil(usedBytesOf(s, view.segmentBytes) / COPY_HEADER_EVERY_BYTES))
  const slack = copied + headers <= view.headRoom ? 0 : Math.min(view.headRoom, s.maxRecordBytes + BATCH_HEADER_BYTES)
  return { gain: capacity - copied - headers - slack, copied: copied + headers }
}

/**
 * The segment to clean next among the sealed segments that give back at
 * least `minGain` and whose copies fit in the room there is (the head's
 * and one free segment's), by the cost-benefit rule of log-structured file
 * systems: maximise gain × age / (capacity + copied), what cleaning gives
 * back per byte it reads and writes, weighted by how many batches ago the
 * segment was last written (cold data is worth cleaning even when
 * fuller, as it will not die soon on its own). `among` restricts the
 * candidates to those segment sequence numbers.
 */
export function pickVictim(view: CleaningView, minGain: number, among?: ReadonlySet<number>): SegmentState | undefined {
  const { segments, segmentBytes } = view
  const oldestWithDead = oldestSegmentWithDead(segments)
  let largestFree = 0
  for (const s of segments) if (s.header === undefined) largestFree = Math.max(largestFree, capacityOf(s.index, segmentBytes))
  let best: SegmentState | undefined
  let bestScore = Number.NEGATIVE_INFINITY
  for (const s of segments) {
    if (s.header === undefined || s.index === view.head) continue
    if (among !== undefined && !among.has(s.header.segmentSeq)) continue
    const { gain, copied } = cleaningGain(s, view, tombstonesDroppable(s.header.segmentSeq, oldestWithDead))
    // Copies that do not all fit in the head must fit in the segment the head rolls to.
    if (gain < minGain || (copied > view.headRoom && copied > largestFree)) continue
    const age = Math.max(1, view.nextBatchSeq - s.lastSeq)
    const score = (gain * age) / (capacityOf(s.index, segmentBytes) + copied)
    if (score > bestScore) {
      best = s
      bestScore = score
    }
  }
  return best
}

/** The lowest segmentSeq of a segment in use holding a superseded record (Infinity when none does). */
export function oldestSegmentWithDead(segments: readonly SegmentState[]): number {
  let oldest = Number.POSITIVE_INFINITY
  for (const s of segments) if (s.header !== undefined && s.deadRecords > 0) oldest = Math.min(oldest, s.header.segmentSeq)
  return oldest
}

/**
 * Whether cleaning the segment `segmentSeq` may drop its newest tombstones
 * (docs/space.md, "Tombstones"): when no older segment holds a superseded
 * record, no older put or tombstone of any key exists, and a tombstone has
 * nothing left to hide.
 */
export function tombstonesDroppable(segmentSeq: number, oldestWithDead: number): boolean {
  return oldestWithDead >= segmentSeq
}

/** Room for batches without cleaning or growth: the head's, and every free segment's. */
export function freeRoom(segments: readonly SegmentState[], segmentBytes: number, headRoom: number): number {
  let room = headRoom
  for (const s of segments) if (s.header === undefined) room += capacityOf(s.index, segmentBytes)
  return room
}

/** Space figures over all segments. */
export interface SpaceUsage {
  readonly segments: number
  readonly segmentsInUse: number
  readonly segmentsFree: number
  /** Bytes of batches in segments in use (segment headers excluded). */
  readonly usedBytes: number
  /** Bytes of live records (what compaction would copy). */
  readonly liveBytes: number
  /** Used bytes that are not live: superseded records, tombstones no longer needed, batch headers. */
  readonly garbageBytes: number
}

export function spaceUsage(segments: readonly SegmentState[], segmentBytes: number): SpaceUsage {
  let inUse = 0
  let usedBytes = 0
  let liveBytes = 0
  for (const s of segments) {
    if (s.header === undefined) continue
    inUse++
    usedBytes += usedBytesOf(s, segmentBytes)
    liveBytes += s.liveBytes
  }
  return {
    segments: segments.length,
    segmentsInUse: inUse,
    segmentsFree: segments.length - inUse,
    usedBytes,
    liveBytes,
    garbageBytes: usedBytes - liveBytes,
  }
}
