import { DaxKVError, ErrorCode, assert } from '../errors.js'
import { batchBytes, batchChecksum, chainBatch, encodeBatch, isZero, type EncodedOp } from '../format/batch.js'
import { BATCH_HEADER_BYTES, MARKER_BYTES, MARKER_OFFSET, RECORD_PUT, SEGMENT_HEADER_BYTES } from '../format/constants.js'
import { recordBytes } from '../format/record.js'
import { SEGMENT_FREE_MARK, encodeSegmentHeader, segmentEndOffset, segmentHeaderOffset } from '../format/segment.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { native } from '../platform/native.js'
import type { Accounting } from './accounting.js'
import type { Latch } from './latch.js'
import { blankSegment, type LogState, type SegmentState } from './log-state.js'
import { CLEANER_RESERVE_SEGMENTS, DELETE_RESERVE_SHARE, capacityOf, usedBytesOf } from './space.js'
import { fullMessage, growFile, type NoGrowth } from './growth.js'
import { updateSuperblock } from './superblock-io.js'

/**
 * Makes one encoded batch durable at `at` (Steps 1-4 of the commit
 * protocol, docs/format.md). `batch` holds the batch with its marker word
 * zero; `seq` is its sequence number. The store passes {@link commitBatch};
 * the crash tests pass broken orders to prove that their checks notice.
 */
export type CommitProtocol = (domain: PersistenceDomain, at: number, batch: Buffer, seq: number, durable: boolean) => void

function sequencesExhausted(what: string, seq: number): DaxKVError {
  return new DaxKVError(
    ErrorCode.CORRUPTION,
    `the log's ${what} sequence numbers are exhausted (the next would be ${seq}, beyond 2^53 - 1): the daxfile's sequence numbers were damaged. ` +
      `Nothing was written; copy the data to a new daxfile`,
  )
}

/** Steps 1-4 of the commit protocol (docs/format.md, section 4). */
export function commitBatch(domain: PersistenceDomain, at: number, batch: Buffer, seq: number, durable: boolean): void {
  // Step 1: write header and records; the marker word stays zero.
  domain.write(at, batch)
  // Step 2: on cache-line hardware the data must be durable before the
  // marker can be. Crash: if we die before this persist returns, the marker
  // is still zero, so recovery ends the log before this batch. On page
  // hardware only the flush: the sync of Step 4 covers data and marker,
  // and the checksum rejects a batch whose pages did not all arrive.
  if (durable) {
    if (domain.orderedMarker) domain.persist(at, batch.length)
    else domain.flush(at, batch.length)
  }
  // Step 3: the commit marker, one aligned 8-byte store of seq.
  domain.writeMarker(at + MARKER_OFFSET, seq)
  // Step 4: once this persist returns the batch is committed. Crash before
  // it: either no marker, or (page hardware) a marker whose batch the
  // checksum still has to accept.
  if (durable) domain.persist(at + MARKER_OFFSET, MARKER_BYTES)
}

/** Why a batch is appended: what it may take of the reserves, and whether it may clean (docs/space.md). */
export type AppendReason = 'put' | 'delete' | 'compaction'

/** What the writer asks of cleaning when it needs room. */
export interface Reclaimer {
  /** What a victim must give back to be worth cleaning before the file grows. */
  worthwhileGain(): number
  /** Cleans one victim giving back at least `minGain`; true when the free room grew. */
  cleanForRoom(minGain: number): boolean
}


export interface WriterOptions {
  /** Make each batch durable before append() returns (the public option `sync`). */
  readonly durable: boolean
  /** Grow the file by whole segments when free segments run low. */
  readonly autoGrow: boolean
  /** Never grow beyond this many bytes. */
  readonly maxBytes: number
  /** The commit protocol; {@link commitBatch} unless a crash test breaks it on purpose. */
  readonly commit: CommitProtocol
}

/**
 * The writer: appends batches with the commit protocol, rolls the head to
 * a new segment (R0-R3), frees cleaned segments (K4) and grows the file
 * (G1-G3). It is the only engine code that writes the log; it changes
 * the log state and reports what it does to the accounting.
 */
export class Writer {
  readonly durable: boolean
  /** Largest batch that fits in a segment. */
  readonly maxBatchBytes: number
  readonly #domain: PersistenceDomain
  readonly #state: LogState
  readonly #accounting: Accounting
  readonly #latch: Latch
  readonly #options: WriterOptions
  readonly #reclaimer: () => Reclaimer
  /** Why the last growth that was tried did not happen. */
  #noGrowth: NoGrowth | undefined
  #scratch = Buffer.alloc(64 * 1024)
  readonly #offsets: number[] = []

  /** `reclaimer` gives the cleaning the writer runs when it needs room (it appends through the writer, so it comes later). */
  constructor(domain: PersistenceDomain, state: LogState, accounting: Accounting, latch: Latch, options: WriterOptions, reclaimer: () => Reclaimer) {
    this.#domain = domain
    this.#state = state
    this.#accounting = accounting
    this.#latch = latch
    this.#options = options
    this.#reclaimer = reclaimer
    this.durable = options.durable
    this.maxBatchBytes = state.segmentBytes - SEGMENT_HEADER_BYTES
  }

  /**
   * Appends `ops` as one batch, commits it and publishes it to the index.
   * Throws DAXKV_FULL with nothing written when no segment has room even
   * after compaction and growth, and latches the store failed on any I/O
   * error.
   */
  append(ops: readonly EncodedOp[], reason: AppendReason = 'put'): void {
    this.#latch.check()
    const length = batchBytes(ops)
    if (length > this.maxBatchBytes) {
      throw new DaxKVError(ErrorCode.VALUE_TOO_LARGE, `a batch of ${length} bytes does not fit in a segment (${this.maxBatchBytes} bytes usable)`)
    }
    const state = this.#state
    // Sequence numbers are exact up to 2^53 - 1 (the marker is a double), which no log reaches in centuries of
    // writing: one this far along was damaged or crafted. Refused before anything is written, without latching.
    if (state.nextBatchSeq > Number.MAX_SAFE_INTEGER) throw sequencesExhausted('batch', state.nextBatchSeq)
    if (state.nextSegmentSeq > Number.MAX_SAFE_INTEGER) throw sequencesExhausted('segment', state.nextSegmentSeq)
    try {
      // Room first: making room may compact, which appends (and so uses the
      // scratch buffer) before this batch is encoded into it.
      if (state.pos + length > state.end || (reason === 'put' && !this.#leavesDeleteReserve(state.end - state.pos - length, 0))) {
        this.#ensureRoom(length, reason)
      }
      if (this.#scratch.length < length) this.#scratch = Buffer.alloc(Math.max(length, 2 * this.#scratch.length))
      const seq = state.nextBatchSeq
      const encoded = encodeBatch(this.#scratch, seq, ops, this.#offsets, native.crc32c)
      assert(encoded === length, 'batch length matches its estimate')
      const at = state.pos
      this.#options.commit(this.#domain, at, this.#scratch.subarray(0, length), seq, this.durable)
      // Step 5, publish: the batch is committed (or, with sync: false, written).
      state.pos = at + length
      if (this.durable) state.unpersistedFrom = state.pos
      state.nextBatchSeq = seq + 1
      const head = state.segments[state.head]!
      head.dataEnd = state.pos
      head.lastSeq = seq
      head.chain = chainBatch(head.chain, batchChecksum(this.#scratch, 0))
      this.#accounting.appended(length)
      const counters = state.counters
      if (reason === 'compaction') counters.bytesCopied += length
      else {
        counters.batches++
        counters.records += ops.length
        counters.bytesAppended += length
      }
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!
        this.#accounting.apply(op.type, at + this.#offsets[i]!, recordBytes(op.key.length, op.value === undefined ? 0 : op.value.length))
      }
    } catch (error) {
      throw this.#latch.fail(error, 'writing to the daxfile')
    }
  }

  /** Makes everything appended durable (a no-op for durable stores). */
  persistPending(): void {
    this.#latch.check()
    const state = this.#state
    if (state.pos > state.unpersistedFrom) {
      this.#domain.persist(state.unpersistedFrom, state.pos - state.unpersistedFrom)
      state.unpersistedFrom = state.pos
    }
  }

  /**
   * K4: frees a cleaned segment by storing the free mark over its header's
   * first word (one 8-byte store, so it is never torn). Crash: until the
   * mark is durable, recovery replays this segment before the copies of its
   * live records (which have higher segment sequence numbers), so the state
   * is the same either way. Its old batches are never replayed again: the
   * body is zeroed (R2) before the segment is reused.
   */
  freeSegment(s: SegmentState): void {
    const start = segmentHeaderOffset(s.index, this.#state.segmentBytes)
    this.#domain.writeMarker(start, SEGMENT_FREE_MARK)
    this.#domain.persist(start, 8)
    this.#accounting.segmentFreed(s)
    Object.assign(s, blankSegment(s.index, this.#state.segmentBytes))
  }

  /**
   * R1: makes the head able to take `length` more bytes by opening a free
   * segment that the reason may take. Without one, in this order: clean a
   * victim worth cleaning (not for cleaning copies: cleaning never starts
   * another cleaning), grow the file, and, for a delete, clean any victim
   * that makes room. Each step is retried only while it makes progress
   * (more free room, a larger file), which ends. Then DAXKV_FULL, with
   * nothing written.
   */
  #ensureRoom(length: number, reason: AppendReason): void {
    const state = this.#state
    const reclaimer = this.#reclaimer()
    for (let attempts = 0; attempts < 8 * state.segments.length + 16; attempts++) {
      const headRoom = state.end - state.pos
      if (length <= headRoom && (reason !== 'put' || this.#leavesDeleteReserve(headRoom - length, 0))) return
      const free = this.#freeSegmentFor(length, reason)
      if (free !== undefined) {
        this.#openSegment(free)
        return
      }
      if (reason !== 'compaction' && reclaimer.cleanForRoom(reclaimer.worthwhileGain())) continue
      this.#noGrowth = growFile(this.#domain, state, this.#accounting, this.#options)
      if (this.#noGrowth === undefined) continue
      if (reason === 'delete') {
        // A delete must not fail while cleaning can make room for it,
        // however little that gives back: a sealed segment's garbage, or
        // else the head's, once it is sealed (its copies then fit in the
        // new head, and freeing it gives the reserve back).
        const needed = length + BATCH_HEADER_BYTES
        if (reclaimer.cleanForRoom(needed)) continue
        if (this.#sealHeadWithGarbage(needed)) {
          reclaimer.cleanForRoom(needed)
          continue
        }
      }
      break
    }
    throw new DaxKVError(ErrorCode.FULL, fullMessage(state, length, this.#noGrowth, this.#options.maxBytes))
  }

  /**
   * Rolls the head to any free segment when the head holds at least
   * `garbage` bytes that cleaning could reclaim once it is sealed. Only for
   * a delete that nothing else can make room for.
   */
  #sealHeadWithGarbage(garbage: number): boolean {
    const state = this.#state
    const head = state.segments[state.head]
    if (head === undefined || usedBytesOf(head, state.segmentBytes) - head.liveBytes < garbage) return false
    const next = state.segments.find((s) => s.header === undefined)
    if (next === undefined) return false
    this.#openSegment(next)
    return true
  }

  /**
   * A free segment with room for `length` that `reason` may take: cleaning
   * copies any; deletes all but the cleaner's reserve; puts the same, and
   * only when the delete reserve stays free after them.
   */
  #freeSegmentFor(length: number, reason: AppendReason): SegmentState | undefined {
    const segmentBytes = this.#state.segmentBytes
    let free = 0
    let fit: SegmentState | undefined
    for (const s of this.#state.segments) {
      if (s.header !== undefined) continue
      free++
      if (fit === undefined && capacityOf(s.index, segmentBytes) >= length) fit = s
    }
    if (fit === undefined || reason === 'compaction') return fit
    if (free <= CLEANER_RESERVE_SEGMENTS) return undefined
    if (reason === 'put' && !this.#leavesDeleteReserve(capacityOf(fit.index, segmentBytes) - length, 1)) return undefined
    return fit
  }

  /**
   * Whether a put that leaves `headRoom` bytes in its segment, and takes
   * `taken` free segments, leaves the delete reserve free: that room and
   * the free segments beyond the cleaner's hold at least
   * DELETE_RESERVE_SHARE of a segment.
   */
  #leavesDeleteReserve(headRoom: number, taken: number): boolean {
    const spare = this.#accounting.freeCount - taken - CLEANER_RESERVE_SEGMENTS
    return spare > 0 || headRoom >= DELETE_RESERVE_SHARE * this.#state.segmentBytes
  }

  /**
   * R0, R2, R3: moves the head to free segment `next`.
   * Invariant Z (docs/format.md): every byte of a segment past its last
   * valid batch is zero; a segment is zeroed before its header is written.
   */
  #openSegment(next: SegmentState): void {
    const state = this.#state
    const domain = this.#domain
    // R0: seal the head. With sync: false its tail may not be durable yet,
    // and only the head segment may ever hold a torn batch. A roll is also
    // where a store whose commits make no system call (dax) notices that
    // its file was deleted.
    this.persistPending()
    domain.checkLinked()
    const start = segmentHeaderOffset(next.index, state.segmentBytes)
    const dataStart = start + SEGMENT_HEADER_BYTES
    const end = segmentEndOffset(next.index, state.segmentBytes)
    // R2: the body first, then the old header, each made durable before the
    // next step. Crash: while the old header (free mark or zero) stands, the
    // segment is free whatever state the body is in; once the body is zero,
    // a partly zeroed header is invalid and the zero first batch slot marks
    // the segment free. Zeroing the old header (not only its free-marked
    // first word) matters: a torn new header over the old bytes could
    // otherwise bring the old header back to life.
    if (!isZero(domain.view(dataStart, end - dataStart), 0, end - dataStart)) {
      domain.zero(dataStart, end - dataStart)
      domain.persist(dataStart, end - dataStart)
    }
    if (!isZero(domain.view(start, SEGMENT_HEADER_BYTES), 0, SEGMENT_HEADER_BYTES)) {
      domain.zero(start, SEGMENT_HEADER_BYTES)
      domain.persist(start, SEGMENT_HEADER_BYTES)
    }
    // The superblock counts every segment ever used before one more is, so
    // recovery knows that the segments past that count hold only zeros.
    if (next.index >= state.superblock.segmentsUsed) updateSuperblock(domain, state, { segmentsUsed: next.index + 1 })
    const header = {
      fileId: state.superblock.fileId,
      segmentSeq: state.nextSegmentSeq,
      firstBatchSeq: state.nextBatchSeq,
      segmentIndex: next.index,
    }
    // R3. Crash: until this header is durable the segment is free and its
    // zero bytes hold no batch; after, it is the head with an empty log.
    domain.write(start, encodeSegmentHeader(header, native.crc32c))
    domain.persist(start, SEGMENT_HEADER_BYTES)
    Object.assign(next, blankSegment(next.index, state.segmentBytes), { header, lastSeq: state.nextBatchSeq - 1 })
    this.#accounting.segmentOpened()
    state.nextSegmentSeq++
    state.head = next.index
    state.pos = next.dataEnd
    state.end = end
    state.unpersistedFrom = state.pos
    state.counters.segmentsOpened++
  }
}
