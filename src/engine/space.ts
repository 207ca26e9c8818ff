import { segmentDataOffset, segmentEndOffset } from '../format/segment.js'
import type { SegmentState } from './log-state.js'

/**
 * Free segments that ordinary puts may not take: deletes and compaction
 * can, so a store at its maximum size can still delete and reclaim space.
 */
export const RESERVE_SEGMENTS = 1
/** Below this many free segments (besides the reserve) background cleaning starts. */
export const FREE_SEGMENTS_LOW = 2
/** Foreground compaction only picks victims at most this full; fuller ones free too little per byte copied. */
export const FOREGROUND_UTILIZATION_MAX = 0.8
/** Background compaction starts when garbage is at least this share of the used bytes. */
export const BACKGROUND_GARBAGE_RATIO = 0.3

/** Bytes a segment can hold in batches. */
export function capacityOf(index: number, segmentBytes: number): number {
  return segmentEndOffset(index, segmentBytes) - segmentDataOffset(index, segmentBytes)
}

/**
 * The segment to clean next, by the cost-benefit rule of log-structured file
 * systems: maximise (1 - u) * age / (1 + u), where u is the share of the
 * segment still live (what must be copied) and age is how many batches ago
 * it was last written (cold data is worth compacting even when fuller, as it
 * will not die soon on its own). Only sealed segments no fuller than
 * `utilizationMax` qualify.
 */
export function pickVictim(
  segments: readonly SegmentState[],
  head: number,
  nextBatchSeq: number,
  segmentBytes: number,
  utilizationMax: number,
): SegmentState | undefined {
  let best: SegmentState | undefined
  let bestScore = -1
  for (const s of segments) {
    if (s.header === undefined || s.index === head) continue
    const u = s.liveBytes / capacityOf(s.index, segmentBytes)
    if (u > utilizationMax) continue
    const age = Math.max(1, nextBatchSeq - s.lastSeq)
    const score = ((1 - u) * age) / (1 + u)
    if (score > bestScore) {
      best = s
      bestScore = score
    }
  }
  return best
}

/** Space figures over all segments; `headEnd` is the write position in the head segment. */
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
    usedBytes += s.dataEnd - segmentDataOffset(s.index, segmentBytes)
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
