import { DaxKVError, ErrorCode, assert } from '../errors.js'
import {
  CACHE_LINE_BYTES,
  MARKER_BYTES,
  MARKER_OFFSET,
  RECORD_HEADER_BYTES,
  RECORD_PUT,
  SEGMENT_HEADER_BYTES,
  SUPERBLOCK_BYTES,
} from '../format/constants.js'
import { batchBytes, encodeBatch, isZero, type EncodedOp } from '../format/batch.js'
import { encodeSegmentHeader, segmentDataOffset, segmentEndOffset, segmentHeaderOffset } from '../format/segment.js'
import { decodeSuperblock, superblockOffset, type Superblock } from '../format/superblock.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { commitFaults } from './faults.js'
import { KeyIndex } from './key-index.js'
import { recover, type RecoveryReport, type RecoveryResult, type SegmentState } from './recovery.js'
import { readSuperblocks } from './superblock-io.js'

/** What {@link LogStore.verify} found; `problems` is empty when `ok`. */
export interface VerifyReport {
  readonly ok: boolean
  readonly problems: string[]
  readonly batches: number
  readonly records: number
  readonly keys: number
}

const MAX_PROBLEMS = 50

/** Counters a store keeps about its own writes. */
export interface LogCounters {
  batches: number
  records: number
  bytesAppended: number
  segmentsOpened: number
}

/**
 * The engine: the log in a daxfile plus the index it implies. It trusts its
 * inputs (the public layer validates and encodes them), appends batches with
 * the commit protocol of docs/format.md, and publishes them to the index
 * once committed.
 */
export class LogStore {
  readonly domain: PersistenceDomain
  readonly superblock: Superblock
  readonly index = new KeyIndex()
  readonly recovery: RecoveryReport
  /** True when each batch is made durable before append() returns (option `sync`). */
  readonly durable: boolean
  readonly counters: LogCounters = { batches: 0, records: 0, bytesAppended: 0, segmentsOpened: 0 }
  /** Largest batch that fits in a segment. */
  readonly maxBatchBytes: number

  readonly #segments: SegmentState[]
  #head: number
  /** Write position and end of the head segment. */
  #pos: number
  #end: number
  /** Start of the bytes in the head segment appended but not yet persisted (sync: false). */
  #unpersistedFrom: number
  #nextBatchSeq: number
  #nextSegmentSeq: number
  #failed: DaxKVError | undefined
  #scratch = Buffer.alloc(64 * 1024)
  readonly #offsets: number[] = []

  private constructor(domain: PersistenceDomain, superblock: Superblock, durable: boolean) {
    this.domain = domain
    this.superblock = superblock
    this.durable = durable
    this.maxBatchBytes = superblock.segmentBytes - SEGMENT_HEADER_BYTES
    const result = recover(domain, superblock, (type, location, key) => {
      if (type === RECORD_PUT) this.index.set(key, location)
      else this.index.delete(key)
    })
    this.recovery = result.report
    this.#segments = result.segments
    this.#head = result.head
    this.#nextBatchSeq = result.nextBatchSeq
    this.#nextSegmentSeq = result.nextSegmentSeq
    const head = this.#segments[this.#head]
    this.#pos = head === undefined ? 0 : head.dataEnd
    this.#end = head === undefined ? 0 : segmentEndOffset(head.index, superblock.segmentBytes)
    this.#unpersistedFrom = this.#pos
  }

  /** Validates the superblock of `domain`, recovers the log, and returns the store. */
  static open(domain: PersistenceDomain, file: string, durable: boolean): LogStore {
    const { superblock } = readSuperblocks(domain, file)
    return new LogStore(domain, superblock, durable)
  }

  get failed(): DaxKVError | undefined {
    return this.#failed
  }

  /** Segments holding log data, and all segments. */
  segmentUsage(): { inUse: number; total: number; usedBytes: number } {
    let inUse = 0
    let usedBytes = 0
    for (const s of this.#segments) {
      if (s.header === undefined) continue
      inUse++
      usedBytes += s.index === this.#head ? this.#pos - segmentHeaderOffset(s.index, this.superblock.segmentBytes) : s.dataEnd - segmentHeaderOffset(s.index, this.superblock.segmentBytes)
    }
    return { inUse, total: this.#segments.length, usedBytes }
  }

  /** Sequence number the next batch will carry. */
  get nextBatchSeq(): number {
    return this.#nextBatchSeq
  }

  /**
   * Appends `ops` as one batch, commits it and publishes it to the index.
   * Throws DAXKV_FULL with nothing written when no segment has room, and
   * latches the store failed on any I/O error.
   */
  append(ops: readonly EncodedOp[]): void {
    if (this.#failed !== undefined) throw this.#latched()
    const length = batchBytes(ops)
    if (length > this.maxBatchBytes) {
      throw new DaxKVError(ErrorCode.VALUE_TOO_LARGE, `a batch of ${length} bytes does not fit in a segment (${this.maxBatchBytes} bytes usable)`)
    }
    try {
      if (this.#pos + length > this.#end) this.#roll(length)
      if (this.#scratch.length < length) this.#scratch = Buffer.alloc(Math.max(length, 2 * this.#scratch.length))
      const seq = this.#nextBatchSeq
      const encoded = encodeBatch(this.#scratch, seq, ops, this.#offsets)
      assert(encoded === length, 'batch length matches its estimate')
      const at = this.#pos
      const domain = this.domain
      const faults = commitFaults
      if (faults.markerBeforeData) {
        this.#commitMarkerFirst(at, length, seq)
      } else {
        // Step 1 (docs/format.md): write header and records; the marker word stays zero.
        domain.write(at, this.#scratch.subarray(0, length))
        if (this.durable) {
          domain.flush(at, faults.flushOneLineShort ? lastLineStart(at, length) - at : length)
          // Step 2: on cache-line hardware the data must be durable before the
          // marker can be. Crash: if we die before this drain, the marker is
          // still zero, so recovery ends the log before this batch.
          if (domain.orderedMarker && !faults.skipDataDrain) domain.drain()
        }
        // Step 3: the commit marker, one aligned 8-byte store of seq.
        domain.writeMarker(at + MARKER_OFFSET, seq)
        if (this.durable) {
          // Step 4: persist the marker. Once this drain returns the batch is
          // committed; a crash before it leaves either no marker or (msync
          // mode) a marker whose batch the checksum still has to accept.
          domain.flush(at + MARKER_OFFSET, MARKER_BYTES)
          if (!faults.skipMarkerDrain) domain.drain()
        }
      }
      if (this.durable) this.#unpersistedFrom = at + length
      this.#pos = at + length
      this.#nextBatchSeq = seq + 1
      this.counters.batches++
      this.counters.records += ops.length
      this.counters.bytesAppended += length
      // Publish: the batch is committed (or, with sync: false, written), so readers may see it.
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!
        if (op.type === RECORD_PUT) this.index.set(op.key, at + this.#offsets[i]!)
        else this.index.delete(op.key)
      }
    } catch (error) {
      if (error instanceof DaxKVError && error.code === ErrorCode.FULL) throw error
      this.#failed = error instanceof DaxKVError && error.code === ErrorCode.IO
        ? error
        : new DaxKVError(ErrorCode.IO, `writing to the daxfile failed: ${String(error)}`, { cause: error })
      throw this.#failed
    }
  }

  /**
   * Re-reads the whole log without writing and checks it against the live
   * state: both superblock copies, every segment header and batch, invariant
   * Z, and that replaying the log gives exactly the index in memory.
   */
  verify(): VerifyReport {
    const problems: string[] = []
    const note = (problem: string): void => {
      if (problems.length < MAX_PROBLEMS) problems.push(problem)
    }
    for (const slot of [0, 1] as const) {
      const check = decodeSuperblock(this.domain.view(superblockOffset(slot), SUPERBLOCK_BYTES))
      if (!check.ok) note(`superblock copy ${slot} is invalid: ${check.detail}`)
    }
    const replay = new Map<string, number>()
    let result: RecoveryResult
    try {
      result = recover(
        this.domain,
        this.superblock,
        (type, location, key) => (type === RECORD_PUT ? replay.set(key, location) : replay.delete(key)),
        { repair: false },
      )
    } catch (error) {
      note(error instanceof Error ? error.message : String(error))
      return { ok: false, problems, batches: 0, records: 0, keys: this.index.size }
    }
    const torn = result.report.tornTail
    if (torn !== undefined) note(`segment ${torn.segment} holds ${torn.bytes} bytes of garbage after its last batch at offset ${torn.offset} (${torn.reason})`)
    if (result.nextBatchSeq !== this.#nextBatchSeq) note(`the log ends before batch ${result.nextBatchSeq}, but the writer is at ${this.#nextBatchSeq}`)
    if (result.head !== this.#head) note(`the log's head segment is ${result.head}, but the writer's is ${this.#head}`)
    if (replay.size !== this.index.size) note(`replaying the log gives ${replay.size} keys, the index has ${this.index.size}`)
    for (const [key, location] of replay) {
      const live = this.index.get(key)
      if (live !== location) note(`key ${JSON.stringify(key)}: the log puts it at ${location}, the index at ${live}`)
    }
    return { ok: problems.length === 0, problems, batches: result.report.batches, records: result.report.records, keys: replay.size }
  }

  /** The encoded value of the put record at `location` (a view: copy before handing it out). */
  valueAt(location: number): Buffer {
    const header = this.domain.view(location, RECORD_HEADER_BYTES)
    const keyBytes = header.readUInt16LE(2)
    return this.domain.view(location + RECORD_HEADER_BYTES + keyBytes, header.readUInt32LE(4))
  }

  /** Makes everything appended durable (a no-op for durable stores). */
  persistPending(): void {
    if (this.#failed !== undefined) throw this.#latched()
    if (this.#pos > this.#unpersistedFrom) {
      this.domain.persist(this.#unpersistedFrom, this.#pos - this.#unpersistedFrom)
      this.#unpersistedFrom = this.#pos
    }
  }

  /** Persists what is pending and releases the domain. */
  close(): void {
    try {
      if (this.#failed === undefined) {
        this.persistPending()
        this.domain.persistAll()
      }
    } finally {
      this.domain.close()
    }
  }

  /**
   * Moves the head to a free segment with room for `length` bytes.
   * Invariant Z (docs/format.md): every byte of a segment past its last
   * valid batch is zero; a segment is zeroed before its header is written.
   */
  #roll(length: number): void {
    const segmentBytes = this.superblock.segmentBytes
    // Seal the head: with sync: false its tail may not be durable yet, and
    // only the head segment may ever hold a torn batch.
    this.persistPending()
    const next = this.#segments.find(
      (s) => s.header === undefined && segmentEndOffset(s.index, segmentBytes) - segmentDataOffset(s.index, segmentBytes) >= length,
    )
    if (next === undefined) {
      throw new DaxKVError(
        ErrorCode.FULL,
        `the daxfile is full: no free segment for a ${length}-byte batch (${this.#segments.length} segments of ${segmentBytes} bytes). ` +
          `Nothing acknowledged is lost; delete data or create a larger daxfile`,
      )
    }
    const start = segmentHeaderOffset(next.index, segmentBytes)
    const end = segmentEndOffset(next.index, segmentBytes)
    if (!isZero(this.domain.view(start, end - start), 0, end - start)) {
      this.domain.zero(start, end - start)
      this.domain.persist(start, end - start)
    }
    const header = {
      fileId: this.superblock.fileId,
      segmentSeq: this.#nextSegmentSeq,
      firstBatchSeq: this.#nextBatchSeq,
      segmentIndex: next.index,
    }
    // Crash: until this header is durable the segment is free and its zero
    // bytes hold no batch; after, it is the head with an empty log.
    this.domain.write(start, encodeSegmentHeader(header))
    this.domain.persist(start, SEGMENT_HEADER_BYTES)
    next.header = header
    next.dataEnd = start + SEGMENT_HEADER_BYTES
    const previous = this.#segments[this.#head]
    if (previous !== undefined) previous.dataEnd = this.#pos
    this.#nextSegmentSeq++
    this.#head = next.index
    this.#pos = next.dataEnd
    this.#end = end
    this.#unpersistedFrom = this.#pos
    this.counters.segmentsOpened++
  }

  /** The broken order of the markerBeforeData fault (engine/faults.ts): marker persisted, then data. */
  #commitMarkerFirst(at: number, length: number, seq: number): void {
    const data = this.#scratch.subarray(0, length)
    this.domain.write(at, data.subarray(0, MARKER_BYTES))
    this.domain.writeMarker(at + MARKER_OFFSET, seq)
    this.domain.persist(at, MARKER_BYTES)
    this.domain.write(at + MARKER_BYTES, data.subarray(MARKER_BYTES))
    this.domain.persist(at, length)
  }

  #latched(): DaxKVError {
    return new DaxKVError(ErrorCode.IO, `a previous I/O error left the store failed; close and reopen it (${this.#failed?.message})`, {
      cause: this.#failed,
    })
  }
}

/** Start of the last cache line that [at, at + length) touches. */
function lastLineStart(at: number, length: number): number {
  return Math.max(at, Math.floor((at + length - 1) / CACHE_LINE_BYTES) * CACHE_LINE_BYTES)
}
