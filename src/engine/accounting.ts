import { RECORD_DEL, RECORD_PUT } from '../format/constants.js'
import { KeyIndex } from './key-index.js'
import type { SegmentState } from './log-state.js'
import type { RecordReader } from './record-reader.js'
import { spaceUsage, usedBytesOf, type SpaceUsage } from './space.js'

/**
 * Which records of the log are live, and what that means for space
 * (docs/space.md). The index points at the newest put of each key, the
 * tombstone table at the newest delete of each deleted key still in the
 * log; every segment counts the bytes of its live records and how many of
 * its records were superseded. Running totals over the segments in use
 * (live bytes, used bytes, free segments) make asking whether cleaning has
 * work cost nothing per commit; verify() checks them against the table.
 *
 * Replay and the writer apply committed records in log order through
 * {@link apply}; the writer reports the space it uses and frees.
 */
export class Accounting {
  readonly index: KeyIndex
  readonly tombstones: KeyIndex
  readonly #segments: SegmentState[]
  readonly #segmentBytes: number
  readonly #reader: RecordReader
  #liveTotal = 0
  #usedTotal = 0
  #freeCount = 0

  /**
   * Accounting over `segments` (the table itself, not a copy), starting
   * from `tables` (an index checkpoint's) or from empty ones.
   */
  constructor(segments: SegmentState[], segmentBytes: number, reader: RecordReader, tables?: { index: KeyIndex; tombstones: KeyIndex }) {
    this.#segments = segments
    this.#segmentBytes = segmentBytes
    this.#reader = reader
    this.index = tables?.index ?? new KeyIndex(reader)
    this.tombstones = tables?.tombstones ?? new KeyIndex(reader)
  }

  get liveTotal(): number {
    return this.#liveTotal
  }

  get usedTotal(): number {
    return this.#usedTotal
  }

  get freeCount(): number {
    return this.#freeCount
  }

  /**
   * Applies one committed record of `bytes` bytes at `location`: it
   * supersedes the key's previous put and its previous tombstone, if any.
   */
  apply(type: number, location: number, bytes: number): void {
    const hash = this.#reader.keyHashAt(location)
    const previous = type === RECORD_PUT ? this.index.set(location, hash) : this.index.delete(location, hash)
    const tombstone = type === RECORD_DEL ? this.tombstones.set(location, hash) : this.tombstones.delete(location, hash)
    if (previous !== undefined) this.#supersede(previous, false)
    if (tombstone !== undefined) this.#supersede(tombstone, true)
    const s = this.#segmentOf(location)
    s.liveBytes += bytes
    if (type === RECORD_DEL) s.tombstoneBytes += bytes
    if (bytes > s.maxRecordBytes) s.maxRecordBytes = bytes
    this.#liveTotal += bytes
  }

  /**
   * Forgets the tombstone at `location` that cleaning found droppable, if
   * it is still the newest record of its key. Returns whether it was.
   */
  dropTombstone(location: number): boolean {
    if (this.tombstones.getByRecord(location) !== location) return false
    this.tombstones.delete(location)
    const bytes = this.#reader.recordBytesAt(location)
    const s = this.#segmentOf(location)
    s.liveBytes -= bytes
    s.tombstoneBytes -= bytes
    this.#liveTotal -= bytes
    return true
  }

  /** Recomputes the running totals from the segment table (after a replay). */
  recount(): void {
    this.#liveTotal = 0
    this.#usedTotal = 0
    this.#freeCount = 0
    for (const s of this.#segments) {
      if (s.header === undefined) this.#freeCount++
      else {
        this.#liveTotal += s.liveBytes
        this.#usedTotal += usedBytesOf(s, this.#segmentBytes)
      }
    }
  }

  /** The writer appended a batch of `bytes` bytes. */
  appended(bytes: number): void {
    this.#usedTotal += bytes
  }

  /** The writer opened a free segment. */
  segmentOpened(): void {
    this.#freeCount--
  }

  /** The writer is about to free `s` (its state still describes its batches). */
  segmentFreed(s: SegmentState): void {
    this.#usedTotal -= usedBytesOf(s, this.#segmentBytes)
    this.#freeCount++
  }

  /** Growth added `count` free segments. */
  segmentsAdded(count: number): void {
    this.#freeCount += count
  }

  usage(): SpaceUsage {
    return spaceUsage(this.#segments, this.#segmentBytes)
  }

  /** Why the running totals disagree with the segment table, or undefined when they agree. */
  checkTotals(): string | undefined {
    const usage = this.usage()
    if (usage.liveBytes === this.#liveTotal && usage.usedBytes === this.#usedTotal && usage.segmentsFree === this.#freeCount) return undefined
    return (
      `running totals (live ${this.#liveTotal}, used ${this.#usedTotal}, free ${this.#freeCount}) disagree with the segments ` +
      `(${usage.liveBytes}, ${usage.usedBytes}, ${usage.segmentsFree})`
    )
  }

  /** Counts the record at `location` (a tombstone, or a put) as superseded in its segment. */
  #supersede(location: number, tombstone: boolean): void {
    const s = this.#segmentOf(location)
    const dead = this.#reader.recordBytesAt(location)
    s.liveBytes -= dead
    if (tombstone) s.tombstoneBytes -= dead
    s.deadRecords++
    this.#liveTotal -= dead
  }

  /**
   * Sets each segment's live tombstone bytes from the tombstone table (after
   * resuming from an index checkpoint, which does not record them).
   */
  countTombstones(): void {
    for (const s of this.#segments) s.tombstoneBytes = 0
    for (const location of this.tombstones.locations()) this.#segmentOf(location).tombstoneBytes += this.#reader.recordBytesAt(location)
  }

  #segmentOf(location: number): SegmentState {
    const s = this.#segments[Math.floor(location / this.#segmentBytes)]
    if (s === undefined) throw new RangeError(`location ${location} lies outside the daxfile's ${this.#segments.length} segments`)
    return s
  }
}
