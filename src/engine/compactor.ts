import { assert } from '../errors.js'
import { checkBatch, forEachRecord, type EncodedOp } from '../format/batch.js'
import { BATCH_HEADER_BYTES, RECORD_DEL, RECORD_PUT } from '../format/constants.js'
import { recordBytes, recordKey, recordValue } from '../format/record.js'
import { segmentDataOffset } from '../format/segment.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { native } from '../platform/native.js'
import type { Accounting } from './accounting.js'
import type { Latch } from './latch.js'
import type { LogState, SegmentState } from './log-state.js'
import {
  BACKGROUND_GARBAGE_RATIO,
  CLEANER_RESERVE_SEGMENTS,
  CLEANING_GAIN_MIN_SHARE,
  COPY_BATCH_BYTES,
  FREE_SEGMENTS_LOW,
  capacityOf,
  freeRoom,
  oldestSegmentWithDead,
  pickVictim,
  tombstonesDroppable,
  usedBytesOf,
  type CleaningView,
} from './space.js'
import type { Writer } from './writer.js'

interface Cursor {
  readonly victim: SegmentState
  pos: number
  expected: number
  /**
   * Tombstones of the victim found droppable. They leave the index only
   * when the victim is freed, so memory never runs ahead of the log (and
   * verify() agrees with it) while a cleaning is half done.
   */
  readonly dropped: number[]
}

/**
 * Segment cleaning (K1-K4 in docs/format.md): picks a victim by the policy
 * of space.ts, copies its live records to the head through the writer, and
 * has the writer free it once every copy is committed. It works in steps
 * of a byte budget, so the caller can interleave it with other work.
 */
export class Compactor {
  readonly #domain: PersistenceDomain
  readonly #state: LogState
  readonly #accounting: Accounting
  readonly #writer: Writer
  readonly #latch: Latch
  #cursor: Cursor | undefined

  constructor(domain: PersistenceDomain, state: LogState, accounting: Accounting, writer: Writer, latch: Latch) {
    this.#domain = domain
    this.#state = state
    this.#accounting = accounting
    this.#writer = writer
    this.#latch = latch
  }

  /**
   * Whether background cleaning has worth-while work: a cleaning is under
   * way, or garbage is high or free segments are low, and a victim would
   * give back at least CLEANING_GAIN_MIN_SHARE of a segment. Every
   * cleaning it starts so adds at least that much free room, which is
   * bounded by the file's size: left alone, background cleaning stops.
   */
  wanted(): boolean {
    if (this.#cursor !== undefined) return true
    const a = this.#accounting
    const lowOnSpace = a.freeCount - CLEANER_RESERVE_SEGMENTS < FREE_SEGMENTS_LOW
    const garbageHigh = a.usedTotal > 0 && a.usedTotal - a.liveTotal >= BACKGROUND_GARBAGE_RATIO * a.usedTotal
    if (!lowOnSpace && !garbageHigh) return false
    return pickVictim(this.#view(), this.worthwhileGain()) !== undefined
  }

  /** What a victim must give back for background cleaning, or a put's, to take it. */
  worthwhileGain(): number {
    return CLEANING_GAIN_MIN_SHARE * this.#state.segmentBytes
  }

  /**
   * Cleans one whole victim that gives back at least `minGain` (or finishes
   * the one under way) for a write that needs room. Returns whether the
   * free room (the head's and the free segments') grew; false when there
   * was nothing to clean or it did not help.
   */
  cleanForRoom(minGain: number): boolean {
    const before = this.#freeRoom()
    if (!this.step(Number.POSITIVE_INFINITY, minGain)) return false
    return this.#freeRoom() > before
  }

  /**
   * The segment sequence numbers of the sealed segments worth cleaning now:
   * those with a superseded put, or with more than a tenth of their space
   * in garbage (batch headers alone do not count). A full compaction cleans
   * these once, and not the segments its own copies fill (which would
   * never end).
   */
  segmentsWithGarbage(): Set<number> {
    const out = new Set<number>()
    const segmentBytes = this.#state.segmentBytes
    for (const s of this.#state.segments) {
      if (s.header === undefined || s.index === this.#state.head) continue
      const garbage = usedBytesOf(s, segmentBytes) - s.liveBytes
      if (s.deadRecords > 0 || garbage > capacityOf(s.index, segmentBytes) / 10) out.add(s.header.segmentSeq)
    }
    return out
  }

  /**
   * Cleans incrementally: copies the live records of at most about
   * `budgetBytes` of the current victim to the head, and frees the victim
   * once it is fully copied. A new victim must give back at least `minGain`
   * (default: worthwhileGain) and be among the segments `among` names, if
   * given. Returns false when there was nothing to clean.
   */
  step(budgetBytes: number, minGain = this.worthwhileGain(), among?: ReadonlySet<number>): boolean {
    this.#latch.check()
    try {
      return this.#step(budgetBytes, minGain, among)
    } catch (error) {
      // DAXKV_FULL leaves a consistent state (the cursor resumes where its
      // copies stopped); anything else latches the store like a failed write.
      throw this.#latch.fail(error, 'compaction')
    }
  }

  #step(budgetBytes: number, minGain: number, among: ReadonlySet<number> | undefined): boolean {
    if (this.#cursor === undefined) {
      const victim = pickVictim(this.#view(), minGain, among)
      if (victim === undefined) return false
      this.#cursor = { victim, pos: segmentDataOffset(victim.index, this.#state.segmentBytes), expected: victim.header!.firstBatchSeq, dropped: [] }
    }
    const cursor = this.#cursor
    const { victim } = cursor
    const victimSeq = victim.header!.segmentSeq
    let copies: EncodedOp[] = []
    let copyBytes = 0
    // Where the scan may resume if appending the copies fails (DAXKV_FULL):
    // every record before it has its copy committed.
    let committed = { pos: cursor.pos, expected: cursor.expected }
    const flushCopies = (): void => {
      try {
        // K2.
        if (copies.length > 0) this.#writer.append(copies, 'compaction')
      } catch (error) {
        cursor.pos = committed.pos
        cursor.expected = committed.expected
        throw error
      }
      copies = []
      copyBytes = 0
      committed = { pos: cursor.pos, expected: cursor.expected }
    }
    const { index, tombstones } = this.#accounting
    const scanned = cursor.pos
    // K1.
    while (cursor.pos < victim.dataEnd && cursor.pos - scanned < budgetBytes) {
      const view = this.#domain.view(cursor.pos, victim.dataEnd - cursor.pos)
      const check = checkBatch(view, cursor.expected, native.crc32c)
      assert(check.ok, `compaction found an invalid batch in sealed segment ${victim.index} at ${cursor.pos}`)
      const batchAt = cursor.pos
      const dropTombstones = tombstonesDroppable(victimSeq, oldestSegmentWithDead(this.#state.segments))
      forEachRecord(view, check.recordCount, (type, recordOffset, keyBytes, valueBytes) => {
        const location = batchAt + recordOffset
        const live = type === RECORD_PUT ? index.getByRecord(location) === location : tombstones.getByRecord(location) === location
        if (!live) return
        if (type === RECORD_DEL && dropTombstones) {
          // No older segment holds a superseded record, so no older version
          // of this key exists anywhere: the tombstone has nothing to hide.
          cursor.dropped.push(location)
          return
        }
        const bytes = recordBytes(keyBytes, valueBytes)
        // Cut the copy batch where the head is full, so that a roll leaves
        // less than one record unused there (the gain estimate counts on it).
        const room = this.#state.end - this.#state.pos
        if (copies.length > 0 && BATCH_HEADER_BYTES + copyBytes + bytes > room) flushCopies()
        const key = recordKey(view, recordOffset)
        copies.push(type === RECORD_PUT ? { type: RECORD_PUT, key, value: recordValue(view, recordOffset) } : { type: RECORD_DEL, key, value: undefined })
        copyBytes += bytes
      })
      cursor.pos += check.length
      cursor.expected++
      if (copyBytes >= COPY_BATCH_BYTES) flushCopies()
    }
    flushCopies()
    if (cursor.pos >= victim.dataEnd) {
      this.#cursor = undefined
      const counters = this.#state.counters
      // A write since the scan may have replaced a dropped tombstone; then it is no longer the victim's.
      for (const location of cursor.dropped) if (this.#accounting.dropTombstone(location)) counters.tombstonesDropped++
      assert(victim.liveBytes === 0, `segment ${victim.index} still holds ${victim.liveBytes} live bytes after compaction`)
      // K3: the copies must be durable before the victim stops being replayed.
      this.#writer.persistPending()
      // K4.
      this.#writer.freeSegment(victim)
      counters.compactions++
    }
    return true
  }

  #view(): CleaningView {
    const state = this.#state
    return { segments: state.segments, segmentBytes: state.segmentBytes, head: state.head, nextBatchSeq: state.nextBatchSeq, headRoom: state.end - state.pos }
  }

  #freeRoom(): number {
    return freeRoom(this.#state.segments, this.#state.segmentBytes, this.#state.end - this.#state.pos)
  }
}
