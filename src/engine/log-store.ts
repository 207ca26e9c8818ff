import os from 'node:os'
import { DaxKVError, ErrorCode, assert } from '../errors.js'
import {
  CACHE_LINE_BYTES,
  MAP_PIECE_BYTES,
  MARKER_BYTES,
  MARKER_OFFSET,
  RECORD_DEL,
  RECORD_HEADER_BYTES,
  RECORD_PUT,
  SEGMENT_HEADER_BYTES,
  SUPERBLOCK_BYTES,
} from '../format/constants.js'
import { batchBytes, batchChecksum, chainBatch, checkBatch, encodeBatch, forEachRecord, isZero, recordBytes, type EncodedOp } from '../format/batch.js'
import { checkpointBytes, decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../format/checkpoint.js'
import {
  SEGMENT_FREE_MARK,
  decodeSegmentHeader,
  encodeSegmentHeader,
  segmentDataOffset,
  segmentEndOffset,
  segmentHeaderOffset,
} from '../format/segment.js'
import { decodeSuperblock, superblockOffset, type Superblock } from '../format/superblock.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { commitFaults } from './faults.js'
import { KeyIndex, hashBytes, type KeyReader } from './key-index.js'
import { recover, type RecoveryReport, type RecoveryResult, type SegmentState } from './recovery.js'
import {
  BACKGROUND_GARBAGE_RATIO,
  FOREGROUND_UTILIZATION_MAX,
  FREE_SEGMENTS_LOW,
  RESERVE_SEGMENTS,
  capacityOf,
  pickVictim,
  spaceUsage,
  type SpaceUsage,
} from './space.js'
import { readSuperblocks, writeSuperblock } from './superblock-io.js'

/** What {@link LogStore.verify} found; `problems` is empty when `ok`. */
export interface VerifyReport {
  readonly ok: boolean
  readonly problems: string[]
  readonly batches: number
  readonly records: number
  readonly keys: number
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

export interface LogStoreOptions {
  /** Make each batch durable before append() returns (the public option `sync`). */
  readonly durable: boolean
  /** Grow the file by whole segments when free segments run low. */
  readonly autoGrow: boolean
  /** Never grow beyond this many bytes. */
  readonly maxBytes: number
  /** Called with the superblock before recovery may write (the extent check). */
  readonly beforeRecovery?: (superblock: Superblock) => void
  /** The bytes of an index checkpoint file: used instead of a log replay if it matches the log exactly. */
  readonly checkpoint?: Buffer
}

/** Why a batch is appended: puts may not use the reserve, deletes and compaction may. */
export type AppendReason = 'put' | 'delete' | 'compaction'

interface CompactionCursor {
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

const MAX_PROBLEMS = 50
/** Compaction appends copies once it has collected this many bytes of records. */
const COPY_BATCH_BYTES = 64 * 1024

/**
 * The engine: the log in a daxfile plus the index it implies. It trusts its
 * inputs (the public layer validates and encodes them), appends batches with
 * the commit protocol of docs/format.md, publishes them to the index once
 * committed, keeps live-space accounting per segment, cleans segments and
 * grows the file.
 */
export class LogStore implements KeyReader {
  readonly domain: PersistenceDomain
  superblock: Superblock
  readonly index: KeyIndex
  readonly recovery: RecoveryReport
  readonly durable: boolean
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
  /** Largest batch that fits in a segment. */
  readonly maxBatchBytes: number
  readonly #options: LogStoreOptions
  readonly #segments: SegmentState[]
  /** Latest tombstone of each deleted key still present in the log. */
  readonly #tombstones: KeyIndex
  #superblockSlot: 0 | 1
  #head: number
  /** Write position and end of the head segment. */
  #pos: number
  #end: number
  /** Start of the bytes in the head segment appended but not yet persisted (sync: false). */
  #unpersistedFrom: number
  #nextBatchSeq: number
  #nextSegmentSeq: number
  #failed: DaxKVError | undefined
  #cursor: CompactionCursor | undefined
  /**
   * Running totals over the segments in use, kept so that asking whether
   * background cleaning has work costs nothing per commit. verify() checks
   * them against the segment table.
   */
  #liveTotal = 0
  #usedTotal = 0
  #freeCount = 0
  #scratch = Buffer.alloc(64 * 1024)
  readonly #offsets: number[] = []

  private constructor(domain: PersistenceDomain, file: string, options: LogStoreOptions) {
    const started = performance.now()
    this.domain = domain
    this.#options = options
    this.durable = options.durable
    // A process that died before its last persist left bytes that this
    // process reads (they are in the page cache or the CPU caches) but a
    // power failure could still lose: a batch between steps 3 and 4, a free
    // mark, zeros, a superblock copy. Everything below decides on what it
    // reads and builds on it, so first make all of it durable.
    domain.persistAll()
    // The extent check and the refusal of segments beyond the superblock's
    // size come before the first write (a superblock repair).
    const { superblock, slot, repairedSlot } = readSuperblocks(domain, file, (sb) => {
      options.beforeRecovery?.(sb)
      this.#refuseSegmentsBeyond(sb, file)
    })
    this.superblock = superblock
    this.#superblockSlot = slot
    this.maxBatchBytes = superblock.segmentBytes - SEGMENT_HEADER_BYTES
    let checkpointRejected: string | undefined
    let tornTail: RecoveryReport['tornTail']
    const start = options.checkpoint === undefined ? undefined : this.#checkpointStart(options.checkpoint, superblock)
    let resumed: { result: RecoveryResult; start: Pick<CheckpointStart, 'index' | 'tombstones' | 'accounting'> } | undefined
    if (typeof start === 'string') checkpointRejected = start
    else if (start !== undefined) {
      // Validate the whole log as a replay does (checksums, sequence numbers,
      // sealed tails; DAXKV_CORRUPTION as always) and apply to the
      // checkpoint's index only the batches written after it.
      try {
        const result = recover(
          domain,
          superblock,
          (type, location, bytes) => this.#applyRecord(start.accounting, type, location, bytes, start.index, start.tombstones),
          { repair: true, fromSeq: start.checkpoint.nextBatchSeq },
        )
        tornTail = result.report.tornTail
        checkpointRejected = continuesCheckpoint(result, start)
        if (checkpointRejected === undefined) resumed = { result, start }
      } catch (error) {
        // A damaged log is reported as the replay would report it; anything
        // else came from the checkpoint's tables (a location outside the
        // file), and the replay below starts over without them.
        if (error instanceof DaxKVError) throw error
        checkpointRejected = `the checkpoint does not fit the log (${String(error)})`
      }
    }
    // Without a checkpoint that fits, every record goes into fresh tables. The
    // accounting during replay needs a segment table before recover() returns
    // one, so the visitor fills a table of its own.
    let rebuilt = resumed
    if (rebuilt === undefined) {
      const start = { index: new KeyIndex(this), tombstones: new KeyIndex(this), accounting: [] as SegmentState[] }
      const result = recover(domain, superblock, (type, location, bytes) => {
        this.#applyRecord(start.accounting, type, location, bytes, start.index, start.tombstones)
      })
      rebuilt = { result, start }
    }
    const { result } = rebuilt
    this.index = rebuilt.start.index
    this.#tombstones = rebuilt.start.tombstones
    this.#segments = result.segments
    for (const s of this.#segments) {
      const counted = s.header === undefined ? undefined : rebuilt.start.accounting[s.index]
      s.liveBytes = counted?.liveBytes ?? 0
      s.deadRecords = counted?.deadRecords ?? 0
    }
    this.recovery = {
      ...result.report,
      tornTail: tornTail ?? result.report.tornTail,
      superblockRepaired: repairedSlot,
      checkpointRejected,
      durationMs: performance.now() - started,
      source: resumed === undefined ? 'log' : 'checkpoint',
    }
    this.#head = result.head
    this.#nextBatchSeq = result.nextBatchSeq
    this.#nextSegmentSeq = result.nextSegmentSeq
    for (const s of this.#segments) {
      if (s.header === undefined) this.#freeCount++
      else {
        this.#liveTotal += s.liveBytes
        this.#usedTotal += s.dataEnd - segmentDataOffset(s.index, superblock.segmentBytes)
      }
    }
    const head = this.#segments[this.#head]
    this.#pos = head === undefined ? 0 : head.dataEnd
    this.#end = head === undefined ? 0 : segmentEndOffset(head.index, superblock.segmentBytes)
    this.#unpersistedFrom = this.#pos
  }

  /**
   * The state to resume from if the checkpoint can describe a prefix of
   * this daxfile's log, else why not. Segments in use at the checkpoint
   * whose header is still byte for byte the same are unchanged (a segment
   * is only ever appended to while its header stays; sequence numbers are
   * never reused); the others were freed, and maybe reused, since. Entries
   * of the checkpoint's tables that point into those go: everything live
   * there was copied to the log after the checkpoint, where the replay of
   * the rest of the log finds it. What the log holds after the checkpoint
   * is checked once recovery has read it (continuesCheckpoint).
   */
  #checkpointStart(bytes: Buffer, superblock: Superblock): CheckpointStart | string {
    if (os.endianness() !== 'LE') return 'index checkpoints are only used on little-endian machines'
    const decoded = decodeCheckpoint(bytes)
    if (!decoded.ok) return decoded.reason
    const c = decoded.checkpoint
    const sb = superblock
    if (c.fileId !== sb.fileId || c.createdMs !== sb.createdMs) return 'the checkpoint belongs to another daxfile'
    if (c.segmentBytes !== sb.segmentBytes || c.segments.length > sb.segmentCount || c.updateCounter > sb.updateCounter) {
      return 'the checkpoint records a larger or different geometry than the daxfile has'
    }
    if (c.head >= c.segments.length) return 'the checkpoint names a head segment it does not record'
    const accounting: SegmentState[] = []
    const unchanged: boolean[] = []
    const changed = new Set<number>()
    for (let i = 0; i < c.segments.length; i++) {
      const saved = c.segments[i]!
      if (decodeSegmentHeader(Buffer.from(saved.header.buffer, saved.header.byteOffset, saved.header.length), sb.fileId, i) === undefined) continue
      if (this.domain.view(segmentHeaderOffset(i, sb.segmentBytes), SEGMENT_HEADER_BYTES).equals(saved.header)) {
        unchanged[i] = true
        accounting[i] = { ...blankSegment(i), liveBytes: saved.liveBytes, deadRecords: saved.deadRecords }
      } else {
        changed.add(i)
      }
    }
    try {
      const index = KeyIndex.fromSnapshot(this, c.index.entries, c.index.size)
      const tombstones = KeyIndex.fromSnapshot(this, c.tombstones.entries, c.tombstones.size)
      if (changed.size > 0) {
        const inChanged = (location: number): boolean => changed.has(Math.floor(location / sb.segmentBytes))
        index.removeWhere(inChanged)
        tombstones.removeWhere(inChanged)
      }
      return { checkpoint: c, index, tombstones, accounting, unchanged }
    } catch (error) {
      return (error as Error).message
    }
  }

  /** How many bytes {@link checkpoint} would return now. */
  checkpointBytes(): number {
    return checkpointBytes(this.#segments.length, this.index.snapshot().entries.length / 2, this.#tombstones.snapshot().entries.length / 2)
  }

  /**
   * The index checkpoint of the log as it is now (format/checkpoint.ts), for
   * the caller to keep beside the daxfile at a clean close. Nothing is
   * written to the daxfile.
   */
  checkpoint(): Buffer {
    const sb = this.superblock
    return encodeCheckpoint({
      fileId: sb.fileId,
      createdMs: sb.createdMs,
      updateCounter: sb.updateCounter,
      segmentBytes: sb.segmentBytes,
      head: this.#head,
      nextBatchSeq: this.#nextBatchSeq,
      nextSegmentSeq: this.#nextSegmentSeq,
      segments: this.#segments.map((s) => ({
        header: this.domain.view(segmentHeaderOffset(s.index, sb.segmentBytes), SEGMENT_HEADER_BYTES),
        dataEnd: s.dataEnd,
        lastSeq: s.lastSeq,
        liveBytes: s.liveBytes,
        deadRecords: s.deadRecords,
        chain: s.chain,
      })),
      index: this.index.snapshot(),
      tombstones: this.#tombstones.snapshot(),
    })
  }

  /** Validates the superblock of `domain`, recovers the log, and returns the store. */
  static open(domain: PersistenceDomain, file: string, options: LogStoreOptions): LogStore {
    return new LogStore(domain, file, options)
  }

  get failed(): DaxKVError | undefined {
    return this.#failed
  }

  /** Sequence number the next batch will carry. */
  get nextBatchSeq(): number {
    return this.#nextBatchSeq
  }

  space(): SpaceUsage {
    return spaceUsage(this.#segments, this.superblock.segmentBytes)
  }

  /**
   * Appends `ops` as one batch, commits it and publishes it to the index.
   * Throws DAXKV_FULL with nothing written when no segment has room even
   * after compaction and growth, and latches the store failed on any I/O
   * error.
   */
  append(ops: readonly EncodedOp[], reason: AppendReason = 'put'): void {
    if (this.#failed !== undefined) throw this.#latched()
    const length = batchBytes(ops)
    if (length > this.maxBatchBytes) {
      throw new DaxKVError(ErrorCode.VALUE_TOO_LARGE, `a batch of ${length} bytes does not fit in a segment (${this.maxBatchBytes} bytes usable)`)
    }
    try {
      // Room first: making room may compact, which appends (and so uses the
      // scratch buffer) before this batch is encoded into it.
      if (this.#pos + length > this.#end) this.#ensureRoom(length, reason)
      if (this.#scratch.length < length) this.#scratch = Buffer.alloc(Math.max(length, 2 * this.#scratch.length))
      const seq = this.#nextBatchSeq
      const encoded = encodeBatch(this.#scratch, seq, ops, this.#offsets)
      assert(encoded === length, 'batch length matches its estimate')
      const at = this.#pos
      this.#commit(at, length, seq)
      this.#pos = at + length
      this.#nextBatchSeq = seq + 1
      const head = this.#segments[this.#head]!
      head.dataEnd = this.#pos
      head.lastSeq = seq
      head.chain = chainBatch(head.chain, batchChecksum(this.#scratch, 0))
      this.#usedTotal += length
      if (reason === 'compaction') this.counters.bytesCopied += length
      else {
        this.counters.batches++
        this.counters.records += ops.length
        this.counters.bytesAppended += length
      }
      // Publish: the batch is committed (or, with sync: false, written), so readers may see it.
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!
        const bytes = recordBytes(op.key.length, op.value === undefined ? 0 : op.value.length)
        this.#applyRecord(this.#segments, op.type, at + this.#offsets[i]!, bytes)
      }
    } catch (error) {
      if (error instanceof DaxKVError && error.code === ErrorCode.FULL) throw error
      this.#failed =
        error instanceof DaxKVError && error.code === ErrorCode.IO
          ? error
          : new DaxKVError(ErrorCode.IO, `writing to the daxfile failed: ${String(error)}`, { cause: error })
      throw this.#failed
    }
  }

  /**
   * Decodes the value of the put record at `location` with `decode`, which
   * receives the mapped piece and the value's range in it, so the hot read
   * path allocates nothing but the decoded value.
   */
  decodeValueAt<T>(location: number, decode: (piece: Buffer, start: number, end: number) => T): T {
    const piece = this.domain.piece(location)
    const at = location % MAP_PIECE_BYTES
    const start = at + RECORD_HEADER_BYTES + (piece[at + 2]! | (piece[at + 3]! << 8))
    return decode(piece, start, start + piece.readUInt32LE(at + 4))
  }

  keyMatches(location: number, key: string): boolean {
    const piece = this.domain.piece(location)
    const at = location % MAP_PIECE_BYTES
    if ((piece[at + 2]! | (piece[at + 3]! << 8)) !== key.length) return false
    const start = at + RECORD_HEADER_BYTES
    for (let i = 0; i < key.length; i++) if (piece[start + i] !== key.charCodeAt(i)) return false
    return true
  }

  sameKey(a: number, b: number): boolean {
    const pa = this.domain.piece(a)
    const pb = this.domain.piece(b)
    const at = a % MAP_PIECE_BYTES
    const bt = b % MAP_PIECE_BYTES
    const length = pa[at + 2]! | (pa[at + 3]! << 8)
    if ((pb[bt + 2]! | (pb[bt + 3]! << 8)) !== length) return false
    const sa = at + RECORD_HEADER_BYTES
    const sb = bt + RECORD_HEADER_BYTES
    for (let i = 0; i < length; i++) if (pa[sa + i] !== pb[sb + i]) return false
    return true
  }

  keyHashAt(location: number): number {
    const piece = this.domain.piece(location)
    const at = location % MAP_PIECE_BYTES
    const start = at + RECORD_HEADER_BYTES
    return hashBytes(piece, start, start + (piece[at + 2]! | (piece[at + 3]! << 8)))
  }

  keyAt(location: number): string {
    const piece = this.domain.piece(location)
    const at = location % MAP_PIECE_BYTES
    const start = at + RECORD_HEADER_BYTES
    return piece.toString('latin1', start, start + (piece[at + 2]! | (piece[at + 3]! << 8)))
  }

  /** Makes everything appended durable (a no-op for durable stores). */
  persistPending(): void {
    if (this.#failed !== undefined) throw this.#latched()
    if (this.#pos > this.#unpersistedFrom) {
      this.domain.persist(this.#unpersistedFrom, this.#pos - this.#unpersistedFrom)
      this.#unpersistedFrom = this.#pos
    }
  }

  /** Whether background compaction has worth-while work: garbage is high, or free segments are low and some can be reclaimed. */
  wantsCompaction(): boolean {
    if (this.#cursor !== undefined) return true
    const lowOnSpace = this.#freeCount - RESERVE_SEGMENTS < FREE_SEGMENTS_LOW
    const garbageHigh = this.#usedTotal > 0 && this.#usedTotal - this.#liveTotal >= BACKGROUND_GARBAGE_RATIO * this.#usedTotal
    if (!lowOnSpace && !garbageHigh) return false
    return this.#victim(FOREGROUND_UTILIZATION_MAX) !== undefined
  }

  /**
   * Cleans segments incrementally: copies the live records of at most about
   * `budgetBytes` of the current victim to the head, and frees the victim
   * once it is fully copied. Returns false when there was nothing to clean
   * below `utilizationMax`.
   */
  compactStep(budgetBytes: number, utilizationMax = FOREGROUND_UTILIZATION_MAX, among?: ReadonlySet<number>): boolean {
    if (this.#failed !== undefined) throw this.#latched()
    try {
      return this.#compactStep(budgetBytes, utilizationMax, among)
    } catch (error) {
      // DAXKV_FULL leaves a consistent state (the cursor resumes where its
      // copies stopped); anything else latches the store like a failed write.
      if (error instanceof DaxKVError && (error.code === ErrorCode.FULL || error === this.#failed)) throw error
      this.#failed =
        error instanceof DaxKVError && error.code === ErrorCode.IO
          ? error
          : new DaxKVError(ErrorCode.IO, `compaction failed: ${String(error)}`, { cause: error })
      throw this.#failed
    }
  }

  #compactStep(budgetBytes: number, utilizationMax: number, among: ReadonlySet<number> | undefined): boolean {
    if (this.#cursor === undefined) {
      const victim = this.#victim(utilizationMax, among)
      if (victim === undefined) return false
      this.#cursor = {
        victim,
        pos: segmentDataOffset(victim.index, this.superblock.segmentBytes),
        expected: victim.header!.firstBatchSeq,
        dropped: [],
      }
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
        if (copies.length > 0) this.append(copies, 'compaction')
      } catch (error) {
        cursor.pos = committed.pos
        cursor.expected = committed.expected
        throw error
      }
      copies = []
      copyBytes = 0
      committed = { pos: cursor.pos, expected: cursor.expected }
    }
    const scanned = cursor.pos
    while (cursor.pos < victim.dataEnd && cursor.pos - scanned < budgetBytes) {
      const view = this.domain.view(cursor.pos, victim.dataEnd - cursor.pos)
      const check = checkBatch(view, cursor.expected)
      assert(check.ok, `compaction found an invalid batch in sealed segment ${victim.index} at ${cursor.pos}`)
      const batchAt = cursor.pos
      const dropTombstones = this.#tombstonesDroppable(victimSeq)
      forEachRecord(view, check.recordCount, (type, recordOffset, keyBytes, valueBytes) => {
        const location = batchAt + recordOffset
        const keyAt = recordOffset + RECORD_HEADER_BYTES
        const bytes = recordBytes(keyBytes, valueBytes)
        if (type === RECORD_PUT) {
          if (this.index.getByRecord(location) !== location) return
          const key = view.toString('latin1', keyAt, keyAt + keyBytes)
          copies.push({ type: RECORD_PUT, key, value: view.subarray(keyAt + keyBytes, keyAt + keyBytes + valueBytes) })
        } else {
          if (this.#tombstones.getByRecord(location) !== location) return
          if (dropTombstones) {
            // No older segment holds a superseded record, so no older version
            // of this key exists anywhere: the tombstone has nothing to hide.
            cursor.dropped.push(location)
            return
          }
          copies.push({ type: RECORD_DEL, key: view.toString('latin1', keyAt, keyAt + keyBytes), value: undefined })
        }
        copyBytes += bytes
      })
      cursor.pos += check.length
      cursor.expected++
      if (copyBytes >= COPY_BATCH_BYTES) flushCopies()
    }
    flushCopies()
    if (cursor.pos >= victim.dataEnd) {
      this.#cursor = undefined
      for (const location of cursor.dropped) {
        // A write since the scan may have replaced this tombstone; then it is no longer the victim's.
        if (this.#tombstones.getByRecord(location) !== location) continue
        this.#tombstones.delete(location)
        const bytes = this.#recordBytesAt(location)
        victim.liveBytes -= bytes
        this.#liveTotal -= bytes
        this.counters.tombstonesDropped++
      }
      assert(victim.liveBytes === 0, `segment ${victim.index} still holds ${victim.liveBytes} live bytes after compaction`)
      // The copies must be durable before the victim stops being replayed.
      this.persistPending()
      this.#freeSegment(victim)
      this.counters.compactions++
    }
    return true
  }

  /**
   * Re-reads the whole log without writing and checks it against the live
   * state: both superblock copies, every segment header and batch, invariant
   * Z, that replaying the log gives exactly the index in memory, and that the
   * live-space accounting matches.
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
    const replay = new KeyIndex(this, this.index.size)
    const replayTombstones = new KeyIndex(this)
    const counted: SegmentState[] = []
    let result: ReturnType<typeof recover>
    try {
      result = recover(
        this.domain,
        this.superblock,
        (type, location, bytes) => this.#applyRecord(counted, type, location, bytes, replay, replayTombstones),
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
    for (const key of replay.keys(undefined, undefined, false)) {
      const live = this.index.get(key)
      if (live !== replay.get(key)) note(`key ${JSON.stringify(key)}: the log puts it at ${replay.get(key)}, the index at ${live}`)
    }
    if (replayTombstones.size !== this.#tombstones.size) note(`replaying the log gives ${replayTombstones.size} tombstones, memory has ${this.#tombstones.size}`)
    for (const key of replayTombstones.keys(undefined, undefined, false)) {
      const live = this.#tombstones.get(key)
      if (live !== replayTombstones.get(key)) note(`tombstone of ${JSON.stringify(key)}: the log puts it at ${replayTombstones.get(key)}, memory at ${live}`)
    }
    for (const s of this.#segments) {
      const replayed = result.segments[s.index]
      if (s.header !== undefined && replayed !== undefined && replayed.chain !== s.chain) {
        note(`segment ${s.index}: the fingerprint of its batches is ${replayed.chain} in the log, ${s.chain} in memory`)
      }
    }
    for (const s of this.#segments) {
      const expectLive = counted[s.index]?.liveBytes ?? 0
      const expectDead = counted[s.index]?.deadRecords ?? 0
      if (s.header !== undefined && (s.liveBytes !== expectLive || s.deadRecords !== expectDead)) {
        note(`segment ${s.index} accounts ${s.liveBytes} live bytes and ${s.deadRecords} dead records; the log gives ${expectLive} and ${expectDead}`)
      }
    }
    const usage = this.space()
    if (usage.liveBytes !== this.#liveTotal || usage.usedBytes !== this.#usedTotal || usage.segmentsFree !== this.#freeCount) {
      note(`running totals (live ${this.#liveTotal}, used ${this.#usedTotal}, free ${this.#freeCount}) disagree with the segments (${usage.liveBytes}, ${usage.usedBytes}, ${usage.segmentsFree})`)
    }
    return { ok: problems.length === 0, problems, batches: result.report.batches, records: result.report.records, keys: replay.size }
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
   * A file longer than its superblock says is an interrupted growth, whose
   * extra segments were never used. If one of them holds a valid header,
   * the superblock copy that counted it is lost: refuse rather than ignore
   * what was written there.
   */
  #refuseSegmentsBeyond(superblock: Superblock, file: string): void {
    const { segmentBytes, fileId } = superblock
    for (let index = superblock.segmentCount; (index + 1) * segmentBytes <= this.domain.size; index++) {
      const at = segmentHeaderOffset(index, segmentBytes)
      if (decodeSegmentHeader(this.domain.view(at, SEGMENT_HEADER_BYTES), fileId, index) !== undefined) {
        throw new DaxKVError(
          ErrorCode.CORRUPTION,
          `${file}: segment ${index} lies beyond the size the superblock records (${superblock.fileBytes} bytes) but holds data: ` +
            `the superblock copy written when the file grew is damaged. Restore the file from a backup`,
        )
      }
    }
  }

  /** Steps 1-4 of the commit protocol (docs/format.md) for the batch encoded in the scratch buffer. */
  #commit(at: number, length: number, seq: number): void {
    const domain = this.domain
    const faults = commitFaults
    if (faults.markerBeforeData) {
      this.#commitMarkerFirst(at, length, seq)
    } else {
      // Step 1: write header and records; the marker word stays zero.
      domain.write(at, this.#scratch.subarray(0, length))
      // On cache-line hardware each of steps 2 and 4 is one persist (flush
      // and fence in one call); the fault switches need them apart.
      const persistEach = domain.orderedMarker && !faults.skipDataDrain && !faults.flushOneLineShort && !faults.skipMarkerDrain
      if (this.durable) {
        // Step 2: on cache-line hardware the data must be durable before the
        // marker can be. Crash: if we die before this drain, the marker is
        // still zero, so recovery ends the log before this batch. In msync
        // mode the flush only widens the range the drain of step 4 syncs.
        if (persistEach) domain.persist(at, length)
        else {
          domain.flush(at, faults.flushOneLineShort ? lastLineStart(at, length) - at : length)
          if (domain.orderedMarker && !faults.skipDataDrain) domain.drain()
        }
      }
      // Step 3: the commit marker, one aligned 8-byte store of seq.
      domain.writeMarker(at + MARKER_OFFSET, seq)
      if (this.durable) {
        // Step 4: persist the marker. Once this drain returns the batch is
        // committed; a crash before it leaves either no marker or (msync
        // mode) a marker whose batch the checksum still has to accept.
        if (persistEach) domain.persist(at + MARKER_OFFSET, MARKER_BYTES)
        else {
          domain.flush(at + MARKER_OFFSET, MARKER_BYTES)
          if (!faults.skipMarkerDrain) domain.drain()
        }
      }
    }
    if (this.durable) this.#unpersistedFrom = at + length
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

  /**
   * Applies one committed record to an index and a segment table: the
   * index points at the newest put of each key, the tombstone map at the
   * newest delete of each deleted key, and every segment counts the bytes
   * of the records among those (live bytes) and its superseded puts.
   */
  #applyRecord(
    segments: SegmentState[],
    type: number,
    location: number,
    bytes: number,
    index: KeyIndex = this.index,
    tombstones: KeyIndex = this.#tombstones,
  ): void {
    const live = segments === this.#segments
    const hash = this.keyHashAt(location)
    // The record supersedes the key's previous put and its previous tombstone, if any.
    const previous = type === RECORD_PUT ? index.set(location, hash) : index.delete(location, hash)
    const tombstone = type === RECORD_DEL ? tombstones.set(location, hash) : tombstones.delete(location, hash)
    if (previous !== undefined) this.#supersede(segments, previous, live)
    if (tombstone !== undefined) this.#supersede(segments, tombstone, live)
    this.#segmentOf(segments, location).liveBytes += bytes
    if (live) this.#liveTotal += bytes
  }

  /** Counts the record at `location` as superseded in its segment. */
  #supersede(segments: SegmentState[], location: number, live: boolean): void {
    const s = this.#segmentOf(segments, location)
    const dead = this.#recordBytesAt(location)
    s.liveBytes -= dead
    s.deadRecords++
    if (live) this.#liveTotal -= dead
  }

  #segmentOf(segments: SegmentState[], location: number): SegmentState {
    const index = Math.floor(location / this.superblock.segmentBytes)
    return (segments[index] ??= blankSegment(index))
  }

  #recordBytesAt(location: number): number {
    const piece = this.domain.piece(location)
    const at = location % MAP_PIECE_BYTES
    return recordBytes(piece[at + 2]! | (piece[at + 3]! << 8), piece.readUInt32LE(at + 4))
  }

  /**
   * True when no segment older than `segmentSeq` holds a superseded record:
   * then no older put and no older tombstone of any key exists, and a
   * latest tombstone can go without anything older taking its place.
   */
  #tombstonesDroppable(segmentSeq: number): boolean {
    return this.#segments.every((s) => s.header === undefined || s.header.segmentSeq >= segmentSeq || s.deadRecords === 0)
  }

  #victim(utilizationMax: number, among?: ReadonlySet<number>): SegmentState | undefined {
    const segments = among === undefined ? this.#segments : this.#segments.filter((s) => among.has(s.header?.segmentSeq ?? 0))
    return pickVictim(segments, this.#head, this.#nextBatchSeq, this.superblock.segmentBytes, utilizationMax)
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
    const segmentBytes = this.superblock.segmentBytes
    for (const s of this.#segments) {
      if (s.header === undefined || s.index === this.#head) continue
      const garbage = s.dataEnd - segmentDataOffset(s.index, segmentBytes) - s.liveBytes
      if (s.deadRecords > 0 || garbage > capacityOf(s.index, segmentBytes) / 10) out.add(s.header.segmentSeq)
    }
    return out
  }

  /**
   * Makes the head able to take `length` more bytes: opens a free segment,
   * after reclaiming space (compaction) or growing the file if none is free.
   * Compaction is preferred while there is garbage worth reclaiming, so an
   * overwrite-heavy store stays bounded in size.
   */
  #ensureRoom(length: number, reason: AppendReason): void {
    // Compaction stops being tried once a cleaned segment left no more free
    // segments than before: large batches can fill each segment only in
    // part, and moving them around then frees nothing, so growth must.
    let compactionHelps = reason !== 'compaction'
    for (let attempts = 0; attempts < 4 * this.#segments.length + 8; attempts++) {
      if (this.#pos + length <= this.#end) return
      const free = this.#freeSegmentFor(length, reason)
      if (free !== undefined) {
        this.#openSegment(free)
        return
      }
      // Compaction copies through the reserve and never compacts
      // recursively. Only victims at most FOREGROUND_UTILIZATION_MAX full
      // qualify; fuller files grow, or report DAXKV_FULL.
      if (compactionHelps) {
        const freeBefore = this.#freeCount
        if (this.compactStep(Number.POSITIVE_INFINITY)) {
          if (this.#freeCount <= freeBefore) compactionHelps = false
          continue
        }
        compactionHelps = false
      }
      if (this.#grow()) continue
      break
    }
    throw new DaxKVError(
      ErrorCode.FULL,
      `the daxfile is full: no room for a ${length}-byte batch in ${this.#segments.length} segments of ${this.superblock.segmentBytes} bytes` +
        (this.#options.autoGrow ? ` at its maximum size (${this.#options.maxBytes} bytes)` : ' (autoGrow is off)') +
        `. Nothing acknowledged is lost and reads still work; deletes and compaction can use the reserved segment to free space. ` +
        `Delete data and compact, raise maxSize, or move to a larger file`,
    )
  }

  /** A free segment with room for `length`, leaving the reserve to deletes and compaction. */
  #freeSegmentFor(length: number, reason: AppendReason): SegmentState | undefined {
    const segmentBytes = this.superblock.segmentBytes
    let free = 0
    let fit: SegmentState | undefined
    for (const s of this.#segments) {
      if (s.header !== undefined) continue
      free++
      if (fit === undefined && capacityOf(s.index, segmentBytes) >= length) fit = s
    }
    if (reason === 'put' && free <= RESERVE_SEGMENTS) return undefined
    return fit
  }

  /**
   * Moves the head to free segment `next`.
   * Invariant Z (docs/format.md): every byte of a segment past its last
   * valid batch is zero; a segment is zeroed before its header is written.
   */
  #openSegment(next: SegmentState): void {
    const segmentBytes = this.superblock.segmentBytes
    // Seal the head: with sync: false its tail may not be durable yet, and
    // only the head segment may ever hold a torn batch.
    this.persistPending()
    const start = segmentHeaderOffset(next.index, segmentBytes)
    const dataStart = start + SEGMENT_HEADER_BYTES
    const end = segmentEndOffset(next.index, segmentBytes)
    // The body first, then the old header, each made durable before the
    // next step. Crash: while the old header (free mark or zero) stands, the
    // segment is free whatever state the body is in; once the body is zero,
    // a partly zeroed header is invalid and the zero first batch slot marks
    // the segment free. Zeroing the old header (not only its free-marked
    // first word) matters: a torn new header over the old bytes could
    // otherwise bring the old header back to life.
    if (!isZero(this.domain.view(dataStart, end - dataStart), 0, end - dataStart)) {
      this.domain.zero(dataStart, end - dataStart)
      this.domain.persist(dataStart, end - dataStart)
    }
    if (!isZero(this.domain.view(start, SEGMENT_HEADER_BYTES), 0, SEGMENT_HEADER_BYTES)) {
      this.domain.zero(start, SEGMENT_HEADER_BYTES)
      this.domain.persist(start, SEGMENT_HEADER_BYTES)
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
    next.lastSeq = this.#nextBatchSeq - 1
    next.liveBytes = 0
    next.deadRecords = 0
    next.chain = 0
    this.#freeCount--
    this.#nextSegmentSeq++
    this.#head = next.index
    this.#pos = next.dataEnd
    this.#end = end
    this.#unpersistedFrom = this.#pos
    this.counters.segmentsOpened++
  }

  /**
   * Frees a cleaned segment by storing the free mark over its header's
   * first word (one 8-byte store, so it is never torn). Crash: until the
   * mark is durable, recovery replays this segment before the copies of its
   * live records (which have higher segment sequence numbers), so the state
   * is the same either way. Its old batches are never replayed again: the
   * body is zeroed before the segment is reused.
   */
  #freeSegment(s: SegmentState): void {
    const start = segmentHeaderOffset(s.index, this.superblock.segmentBytes)
    this.domain.writeMarker(start, SEGMENT_FREE_MARK)
    this.domain.persist(start, 8)
    this.#usedTotal -= s.dataEnd - segmentDataOffset(s.index, this.superblock.segmentBytes)
    this.#freeCount++
    s.header = undefined
    s.dataEnd = start + SEGMENT_HEADER_BYTES
    s.lastSeq = 0
    s.liveBytes = 0
    s.deadRecords = 0
    s.chain = 0
  }

  /**
   * Adds whole segments (a quarter more, at least one) up to maxBytes. The
   * new bytes are allocated, zeroed and durable before the superblock that
   * counts them is written; a crash before that leaves a file longer than
   * its superblock says, which recovery ignores and the next growth redoes.
   */
  #grow(): boolean {
    const sb = this.superblock
    const { segmentBytes } = sb
    if (!this.#options.autoGrow) return false
    const limit = Math.floor(this.#options.maxBytes / segmentBytes) * segmentBytes
    const fileBytes = Math.min(limit, sb.fileBytes + Math.max(1, Math.ceil(sb.segmentCount / 4)) * segmentBytes)
    if (fileBytes <= sb.fileBytes) return false
    try {
      this.domain.grow(sb.fileBytes, fileBytes)
    } catch (error) {
      if (error instanceof DaxKVError && error.code === ErrorCode.FULL) return false
      throw error
    }
    const grown: Superblock = { ...sb, fileBytes, segmentCount: fileBytes / segmentBytes, updateCounter: sb.updateCounter + 1 }
    const slot = this.#superblockSlot === 0 ? 1 : 0
    writeSuperblock(this.domain, grown, slot)
    this.#superblockSlot = slot
    this.superblock = grown
    for (let index = sb.segmentCount; index < grown.segmentCount; index++) this.#segments.push(blankSegment(index, segmentBytes))
    this.#freeCount += grown.segmentCount - sb.segmentCount
    this.counters.growths++
    return true
  }

  #latched(): DaxKVError {
    return new DaxKVError(ErrorCode.IO, `a previous I/O error left the store failed; close and reopen it (${this.#failed?.message})`, {
      cause: this.#failed,
    })
  }
}

function blankSegment(index: number, segmentBytes = 0): SegmentState {
  return { index, header: undefined, dataEnd: segmentBytes === 0 ? 0 : segmentDataOffset(index, segmentBytes), lastSeq: 0, liveBytes: 0, deadRecords: 0, chain: 0 }
}

/** Start of the last cache line that [at, at + length) touches. */
function lastLineStart(at: number, length: number): number {
  return Math.max(at, Math.floor((at + length - 1) / CACHE_LINE_BYTES) * CACHE_LINE_BYTES)
}

/** A checkpoint that passed the first checks, and the state the rest of the log is replayed onto. */
interface CheckpointStart {
  readonly checkpoint: Checkpoint
  readonly index: KeyIndex
  readonly tombstones: KeyIndex
  /** Live bytes and superseded records per segment index: the checkpoint's for unchanged segments, then the replay's. */
  readonly accounting: SegmentState[]
  /** Segments in use at the checkpoint with the same header now. */
  readonly unchanged: readonly boolean[]
}

/**
 * Why the validated log is not the checkpoint's log plus what was appended
 * after it, or undefined when it is: every segment sealed at the checkpoint
 * and unchanged ends where it ended; the checkpoint's head, if unchanged,
 * has kept its batches and maybe gained more; every other segment in use
 * was opened after the checkpoint and starts after its last batch, so the
 * replay from the checkpoint's next batch saw every batch it did not hold.
 */
function continuesCheckpoint(log: RecoveryResult, start: CheckpointStart): string | undefined {
  const c = start.checkpoint
  if (log.nextBatchSeq < c.nextBatchSeq || log.nextSegmentSeq < c.nextSegmentSeq) {
    return `the log ends at batch ${log.nextBatchSeq - 1}, before the checkpoint's batch ${c.nextBatchSeq - 1}`
  }
  for (const s of log.segments) {
    if (s.header === undefined) continue
    const saved = c.segments[s.index]
    if (start.unchanged[s.index] === true && saved !== undefined) {
      // The chain of batch checksums tells these batches from others with the same sequence numbers
      // (a log rolled back and written again, a diverged copy of the daxfile).
      const same =
        s.index === c.head
          ? s.lastSeq >= saved.lastSeq && s.dataEnd >= saved.dataEnd && (saved.lastSeq < s.header.firstBatchSeq || log.chainBeforeFrom === saved.chain)
          : s.lastSeq === saved.lastSeq && s.dataEnd === saved.dataEnd && s.chain === saved.chain
      if (!same) return `segment ${s.index} holds other batches than the checkpoint records`
    } else if (s.header.segmentSeq < c.nextSegmentSeq || s.header.firstBatchSeq < c.nextBatchSeq) {
      return `segment ${s.index} is neither the one the checkpoint records nor newer than it`
    }
  }
  return undefined
}
