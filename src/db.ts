import fs from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { LRUCache } from 'lru-cache'
import { DaxKVError, ErrorCode } from './errors.js'
import { keyFromBytes, keyToBytes, keyToBytesForWrite, valueCodec, type Key, type KeyEncoding, type ValueCodec, type ValueEncoding } from './encoding.js'
import { BATCH_HEADER_BYTES, FILE_BYTES_MAX, RECORD_DEL, RECORD_PUT, SUPERBLOCK_AREA_BYTES } from './format/constants.js'
import { isZero, recordBytes, type EncodedOp } from './format/batch.js'
import { LogStore, type LogStoreOptions, type VerifyReport } from './engine/log-store.js'
import type { RecoveryReport } from './engine/recovery.js'
import { chooseGeometry, formatSuperblocks } from './engine/superblock-io.js'
import type { Bound } from './engine/sorted-keys.js'
import { createDaxfile, openDaxfile, type ModeRequest, type OpenedFile } from './platform/daxfile.js'
import type { DomainKind, PersistenceDomain } from './platform/domain.js'
import { MappedDomain } from './platform/mapped-domain.js'
import { native } from './platform/native.js'
import { parseSize } from './size.js'

/** Options of {@link open}. */
export interface OpenOptions {
  /** Size of a new daxfile: bytes or a string such as `'64MiB'`. Ignored when the file exists. Default `'64MiB'`. */
  size?: number | string
  /** Create the daxfile if it does not exist. Default `true`. */
  create?: boolean
  /** Value encoding: `'msgpack'` (default), `'json'`, `'utf8'` (strings) or `'binary'` (Uint8Array). */
  valueEncoding?: ValueEncoding
  /** Key encoding: `'utf8'` (default; keys are returned as strings) or `'binary'` (returned as Buffers). Both accept strings and Uint8Arrays. */
  keyEncoding?: KeyEncoding
  /** Decoded values kept in an LRU cache, in entries; `0` disables it. Default 10 000. Cached values are shared: treat what `get` returns as read-only. */
  cacheSize?: number
  /** Acknowledge a write only once it is durable. Default `true`; `false` survives a process crash but not a power failure. */
  sync?: boolean
  /**
   * Durability mode: `'auto'` (default: `'dax'` when the kernel grants MAP_SYNC, else `'msync'`),
   * `'dax'` (fail unless DAX), `'msync'`, or `'forced-dax'` (cache flushes on non-DAX memory: for
   * benchmarks only, not durable against power failure). The environment variable `DAXKV_MODE` sets the default.
   */
  mode?: ModeRequest
  /** Segment size of a new daxfile (power of two, 64 KiB to 256 MiB). Default: up to 4 MiB, at least 8 segments. A value must fit in one segment. */
  segmentSize?: number | string
  /** Grow the file by whole, preallocated segments when free space runs low and compaction cannot free enough. Default `true`. */
  autoGrow?: boolean
  /** The file never grows beyond this size (bytes or a string such as `'1GiB'`); at it, puts fail with DAXKV_FULL. Default 2 GiB, the largest daxfile. */
  maxSize?: number | string
  /** Clean segments in the background, a little at a time, when garbage builds up. Default `true`; `compact()` works either way. */
  backgroundCompaction?: boolean
  /**
   * Keep an index checkpoint in `<path>.index`: written at a clean close and in the background
   * every `checkpointInterval`, it lets the next open load the index and replay only the batches
   * written after it, instead of replaying the whole log (every batch is still checked). Default
   * `true`; `false` neither reads nor writes one, and removes an existing one at close.
   */
  indexCheckpoint?: boolean
  /**
   * Log bytes written between index checkpoints taken in the background while the store is open
   * (bytes or a string such as `'256MiB'`), so that a crash replays at most about that much of the
   * log into the index. Default: 64 MiB or 8× the checkpoint's own size, whichever is larger. `0`:
   * only at close.
   */
  checkpointInterval?: number | string
}

/** One operation of {@link DaxKV.batch}. */
export type BatchOperation<V = unknown> = { type: 'put'; key: Key; value: V } | { type: 'del'; key: Key }

/** Bounds and direction of a range scan; keys compare bytewise. */
export interface RangeOptions {
  gt?: Key
  gte?: Key
  lt?: Key
  lte?: Key
  /** Descending order. Default `false`. */
  reverse?: boolean
  /** At most this many entries; `-1` or absent means no limit. */
  limit?: number
}

/** What {@link DaxKV.stats} reports. */
export interface Stats {
  readonly mode: DomainKind
  readonly path: string
  readonly sync: boolean
  readonly keys: number
  /** The daxfile's capacity as its superblock records it (the file itself may be longer after an interrupted growth). */
  readonly fileBytes: number
  readonly maxFileBytes: number
  readonly segmentBytes: number
  readonly segments: number
  readonly segmentsInUse: number
  readonly segmentsFree: number
  /** Bytes of batches in the segments in use. */
  readonly usedBytes: number
  /** Bytes of live records: the latest put of each key and the latest tombstone of each deleted key still in the log. */
  readonly liveBytes: number
  /** Share of the used bytes that compaction could reclaim. */
  readonly garbageRatio: number
  readonly batchesWritten: number
  readonly recordsWritten: number
  /** Bytes appended for callers since open. */
  readonly bytesAppended: number
  /** Segments cleaned by compaction since open. */
  readonly compactions: number
  /** Bytes compaction appended again since open. */
  readonly bytesCopied: number
  /** (bytesAppended + bytesCopied) / bytesAppended: bytes written to the log per byte written by callers. */
  readonly writeAmplification: number
  readonly tombstonesDropped: number
  /** Times the file grew since open. */
  readonly growths: number
  /** Index checkpoints written in the background since open (not counting the one at close). */
  readonly checkpointsWritten: number
  readonly cache: { readonly entries: number; readonly hits: number; readonly misses: number }
  /**
   * How commits reach durable media: 'cache-flush' (dax, forced-dax), 'msync' (stores into the
   * mapping, msync; tmpfs), 'pwrite+fdatasync' (msync mode on a disk filesystem), or 'simulated'.
   */
  readonly writePath: 'cache-flush' | 'msync' | 'pwrite+fdatasync' | 'simulated'
  /** The cache-line write-back instruction in use in dax and forced-dax modes. */
  readonly flushInstruction: string | undefined
  readonly crc32c: string
  /** statx's DAX attribute of the file (null when unknown or simulated). */
  readonly statxDax: boolean | null
  readonly recovery: RecoveryReport
}

interface PendingUnit {
  readonly ops: EncodedOp[]
  readonly bytes: number
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

const DEFAULT_SIZE = '64MiB'
/** Bytes of a victim segment one compaction step scans: small enough to keep the event loop responsive. */
const COMPACTION_STEP_BYTES = 256 * 1024
const DEFAULT_CACHE_ENTRIES = 10_000
/** Background index checkpoints come at least this many log bytes apart by default. */
const CHECKPOINT_INTERVAL_MIN = 64 * 1024 * 1024
/** Stands for a cached `null`, which lru-cache cannot hold. */
const CACHED_NULL = Symbol('null')

/**
 * A daxkv database: one daxfile, one writer. Reads are synchronous and see
 * every committed write; writes issued in the same tick are committed
 * together (group commit), each promise resolving once its write is durable.
 */
export class DaxKV<V = any> {
  /** The daxfile's path. */
  readonly path: string
  readonly #store: LogStore
  readonly #file: OpenedFile | undefined
  readonly #codec: ValueCodec
  readonly #keyEncoding: KeyEncoding
  readonly #cache: LRUCache<string, object | symbol> | undefined
  #cacheHits = 0
  #cacheMisses = 0
  #pending: PendingUnit[] = []
  #scheduled = false
  #closed = false
  #closing: Promise<void> | undefined
  readonly #maxFileBytes: number
  readonly #backgroundCompaction: boolean
  readonly #indexCheckpoint: boolean
  /** Log bytes between background checkpoints; 0 = none, undefined = the default rule. */
  readonly #checkpointInterval: number | undefined
  /** Log bytes written (appended and copied) when the last checkpoint was taken, or at open. */
  #logBytesAtCheckpoint = 0
  #checkpointScheduled = false
  /** Set while a background checkpoint is being written; the close and newer ones bump the generation. */
  #checkpointWriting = false
  #checkpointGeneration = 0
  #checkpointsWritten = 0
  #compactionScheduled = false
  /** The last error of background compaction (it stops on an error; writes will report it too). */
  #compactionError: unknown

  /** @internal Use {@link open}. */
  constructor(store: LogStore, file: OpenedFile | undefined, path: string, options: OpenOptions) {
    this.path = path
    this.#store = store
    this.#maxFileBytes = maxFileBytesOf(options)
    this.#backgroundCompaction = options.backgroundCompaction !== false
    this.#file = file
    this.#indexCheckpoint = file !== undefined && options.indexCheckpoint !== false
    this.#checkpointInterval = options.checkpointInterval === undefined ? undefined : parseSize(options.checkpointInterval, 'checkpointInterval')
    this.#codec = valueCodec(options.valueEncoding ?? 'msgpack')
    this.#keyEncoding = options.keyEncoding ?? 'utf8'
    const cacheSize = options.cacheSize ?? DEFAULT_CACHE_ENTRIES
    this.#cache = this.#codec.cacheable && cacheSize > 0 ? new LRUCache<string, object | symbol>({ max: cacheSize }) : undefined
  }

  /** Which durability mode is active: `'dax'`, `'msync'`, `'forced-dax'` or `'simulated'`. */
  get mode(): DomainKind {
    return this.#store.domain.kind
  }

  /** Number of keys. */
  get count(): number {
    this.#checkOpen()
    return this.#store.index.size
  }

  /** What recovery found and did when this database was opened. */
  get recovery(): RecoveryReport {
    return this.#store.recovery
  }

  /** The value of `key`, or `undefined` if absent. */
  get(key: Key): V | undefined {
    this.#checkOpen()
    return this.#get(keyToBytes(key))
  }

  /** Values of `keys`, in the same order (`undefined` for absent keys). */
  getMany(keys: readonly Key[]): (V | undefined)[] {
    this.#checkOpen()
    return keys.map((key) => this.#get(keyToBytes(key)))
  }

  /** Whether `key` is present. */
  has(key: Key): boolean {
    this.#checkOpen()
    return this.#store.index.get(keyToBytes(key)) !== undefined
  }

  /** Stores `value` under `key`; resolves once durable (or written, with `sync: false`). */
  put(key: Key, value: V): Promise<void> {
    return this.#enqueue(() => [this.#encodePut(key, value)])
  }

  /** Removes `key`; resolves once durable. Removing an absent key is not an error. */
  del(key: Key): Promise<void> {
    return this.#enqueue(() => [this.#encodeDel(key)])
  }

  /** Applies all operations atomically: after any crash, all of them or none are present. */
  batch(operations: readonly BatchOperation<V>[]): Promise<void> {
    return this.#enqueue(() => this.#encodeBatch(operations))
  }

  /** {@link put}, committed when it returns (durable, unless the store was opened with `sync: false`). */
  putSync(key: Key, value: V): void {
    this.#commitNow([this.#encodePut(key, value)])
  }

  /** {@link del}, committed when it returns (durable, unless `sync: false`). */
  delSync(key: Key): void {
    this.#commitNow([this.#encodeDel(key)])
  }

  /** {@link batch}, committed when it returns (durable, unless `sync: false`). */
  batchSync(operations: readonly BatchOperation<V>[]): void {
    this.#commitNow(this.#encodeBatch(operations))
  }

  /**
   * Entries in bytewise key order. The scan is live, not a snapshot: it sees
   * writes committed while it runs, never returns a key twice, and each value
   * is the key's committed value when the entry is produced.
   */
  *range(options: RangeOptions = {}): Generator<[Key, V]> {
    for (const bytes of this.#keys(options)) {
      const location = this.#store.index.get(bytes)
      if (location !== undefined) yield [keyFromBytes(bytes, this.#keyEncoding), this.#value(bytes, location)]
    }
  }

  /** Keys in bytewise order, with the bounds of {@link range}. */
  *keys(options: RangeOptions = {}): Generator<Key> {
    for (const bytes of this.#keys(options)) yield keyFromBytes(bytes, this.#keyEncoding)
  }

  /** Counters and geometry. */
  stats(): Stats {
    this.#checkOpen()
    const store = this.#store
    const usage = store.space()
    const kind = store.domain.kind
    const { counters } = store
    return {
      mode: kind,
      path: this.path,
      sync: store.durable,
      keys: store.index.size,
      fileBytes: store.superblock.fileBytes,
      maxFileBytes: this.#maxFileBytes,
      segmentBytes: store.superblock.segmentBytes,
      segments: usage.segments,
      segmentsInUse: usage.segmentsInUse,
      segmentsFree: usage.segmentsFree,
      usedBytes: usage.usedBytes,
      liveBytes: usage.liveBytes,
      garbageRatio: usage.usedBytes === 0 ? 0 : usage.garbageBytes / usage.usedBytes,
      batchesWritten: counters.batches,
      recordsWritten: counters.records,
      bytesAppended: counters.bytesAppended,
      compactions: counters.compactions,
      bytesCopied: counters.bytesCopied,
      writeAmplification: counters.bytesAppended === 0 ? 1 : (counters.bytesAppended + counters.bytesCopied) / counters.bytesAppended,
      tombstonesDropped: counters.tombstonesDropped,
      growths: counters.growths,
      checkpointsWritten: this.#checkpointsWritten,
      cache: { entries: this.#cache?.size ?? 0, hits: this.#cacheHits, misses: this.#cacheMisses },
      writePath: writePathOf(store.domain),
      flushInstruction: kind === 'dax' || kind === 'forced-dax' ? native.flushInstruction : undefined,
      crc32c: native.crc32cImplementation,
      statxDax: this.#file?.statxDax ?? null,
      recovery: store.recovery,
    }
  }

  /**
   * Cleans every segment that holds garbage: copies its live records to the
   * head of the log and frees it. Reads and writes issued meanwhile are
   * served between steps. Resolves with what was done.
   */
  async compact(): Promise<{ segmentsCleaned: number; bytesCopied: number }> {
    this.#checkOpen()
    this.#flushPending()
    const counters = this.#store.counters
    const before = { segments: counters.compactions, bytes: counters.bytesCopied }
    // Each segment that holds garbage now is cleaned once.
    const victims = this.#store.segmentsWithGarbage()
    while (!this.#closed && this.#closing === undefined) {
      if (!this.#store.compactStep(COMPACTION_STEP_BYTES, 1, victims)) break
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    return { segmentsCleaned: counters.compactions - before.segments, bytesCopied: counters.bytesCopied - before.bytes }
  }

  /**
   * Checks the whole daxfile without writing: superblocks, every batch,
   * that the log replays to exactly the index in memory, and that every
   * value decodes. Returns the problems found (none when `ok`).
   */
  verify(): VerifyReport {
    this.#checkOpen()
    this.#flushPending()
    const report = this.#store.verify()
    const problems = [...report.problems]
    for (const bytes of this.#store.index.keys(undefined, undefined, false)) {
      try {
        this.#store.decodeValueAt(this.#store.index.get(bytes)!, this.#codec.decode)
      } catch (error) {
        problems.push(`the value of key ${JSON.stringify(keyFromBytes(bytes, this.#keyEncoding))} does not decode as ${this.#codec.name}: ${String(error)}`)
        if (problems.length >= 50) break
      }
    }
    return { ...report, ok: problems.length === 0, problems }
  }

  /** Commits what is queued, makes everything durable, and releases the file and its lock. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    this.#closing = new Promise<void>((resolve, reject) => {
      try {
        this.#flushPending()
        this.#closed = true
        // A background checkpoint still being written is older than the one written now: it is dropped.
        this.#checkpointGeneration++
        try {
          const checkpoint = this.#indexCheckpoint && this.#store.failed === undefined ? this.#store.checkpoint() : undefined
          this.#store.close()
          // Only once everything is durable, and while the lock is still held. Without checkpoints, one
          // left by an earlier open may no longer match the log: it goes.
          if (checkpoint !== undefined) writeCheckpointFile(checkpointPath(this.path), checkpoint)
          else if (this.#file !== undefined) removeQuietly(checkpointPath(this.path))
        } finally {
          this.#file?.close()
          this.#cache?.clear()
        }
        resolve()
      } catch (error) {
        this.#closed = true
        reject(error)
      }
    })
    return this.#closing
  }

  get closed(): boolean {
    return this.#closed
  }

  #get(bytes: string): V | undefined {
    const cache = this.#cache
    if (cache !== undefined) {
      const hit = cache.get(bytes)
      if (hit !== undefined) {
        this.#cacheHits++
        return (hit === CACHED_NULL ? null : hit) as V
      }
      this.#cacheMisses++
    }
    const location = this.#store.index.get(bytes)
    return location === undefined ? undefined : this.#value(bytes, location)
  }

  #value(bytes: string, location: number): V {
    const value = this.#store.decodeValueAt(location, this.#codec.decode) as V
    if (this.#cache !== undefined && value !== undefined) this.#cache.set(bytes, value === null ? CACHED_NULL : (value as object))
    return value
  }

  *#keys(options: RangeOptions): Generator<string> {
    this.#checkOpen()
    if (options === null || typeof options !== 'object') throw new TypeError('range options must be an object')
    const limit = options.limit ?? -1
    if (!Number.isInteger(limit) || limit < -1) throw new RangeError(`limit must be a whole number or -1, got ${limit}`)
    if (limit === 0) return
    const lower = bound(options.gte, true) ?? bound(options.gt, false)
    const upper = bound(options.lte, true) ?? bound(options.lt, false)
    let n = 0
    for (const bytes of this.#store.index.keys(lower, upper, options.reverse === true)) {
      this.#checkOpen()
      yield bytes
      if (++n === limit) return
    }
  }

  #encodePut(key: Key, value: V): EncodedOp {
    const bytes = keyToBytesForWrite(key, this.#keyEncoding)
    const encoded = this.#codec.encode(value)
    const size = BATCH_HEADER_BYTES + recordBytes(bytes.length, encoded.length)
    if (size > this.#store.maxBatchBytes) {
      throw new DaxKVError(
        ErrorCode.VALUE_TOO_LARGE,
        `a value of ${encoded.length} bytes does not fit in a segment (${this.#store.maxBatchBytes} bytes usable); ` +
          `store it in pieces or create the daxfile with a larger segmentSize`,
      )
    }
    return { type: RECORD_PUT, key: bytes, value: encoded }
  }

  #encodeDel(key: Key): EncodedOp {
    return { type: RECORD_DEL, key: keyToBytesForWrite(key, this.#keyEncoding), value: undefined }
  }

  #encodeBatch(operations: readonly BatchOperation<V>[]): EncodedOp[] {
    if (!Array.isArray(operations)) throw new TypeError('batch() takes an array of operations')
    const ops = operations.map((op, i) => {
      if (op?.type === 'put') return this.#encodePut(op.key, op.value)
      if (op?.type === 'del') return this.#encodeDel(op.key)
      throw new TypeError(`batch operation ${i} must have type 'put' or 'del'`)
    })
    // A batch is atomic, so it must fit one log batch: refuse it here, alone,
    // rather than fail the writes queued with it.
    const bytes = BATCH_HEADER_BYTES + unitBytes(ops)
    if (bytes > this.#store.maxBatchBytes) {
      throw new DaxKVError(
        ErrorCode.VALUE_TOO_LARGE,
        `a batch of ${bytes} bytes does not fit in a segment (${this.#store.maxBatchBytes} bytes usable); split it into smaller batches or create the daxfile with a larger segmentSize`,
      )
    }
    return ops
  }

  #enqueue(encode: () => EncodedOp[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#checkOpen()
      const ops = encode()
      if (ops.length === 0) return resolve()
      // The write is committed on a later tick: keep the bytes the caller
      // gave now, not what their buffer holds by then.
      if (this.#codec.aliasesInput) for (let i = 0; i < ops.length; i++) ops[i] = copyValue(ops[i]!)
      this.#pending.push({ ops, bytes: unitBytes(ops), resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        process.nextTick(() => this.#flushPending())
      }
    })
  }

  #commitNow(ops: EncodedOp[]): void {
    this.#checkOpen()
    if (this.#pending.length === 0) {
      // Nothing queued before this write: commit it directly.
      this.#store.append(ops, appendReason(ops))
      if (this.#cache !== undefined) for (const op of ops) this.#cache.delete(op.key)
      this.#scheduleCompaction()
      this.#scheduleCheckpoint()
      return
    }
    let failure: unknown
    this.#pending.push({ ops, bytes: unitBytes(ops), resolve: () => {}, reject: (error) => (failure = error) })
    this.#flushPending()
    if (failure !== undefined) throw failure
  }

  /**
   * Commits every queued unit, packing consecutive units into as few
   * batches as fit a segment; each unit stays inside one batch, so it is
   * atomic. A unit resolves only after its batch is committed.
   */
  #flushPending(): void {
    this.#scheduled = false
    const units = this.#pending
    if (units.length === 0) return
    this.#pending = []
    const max = this.#store.maxBatchBytes
    let i = 0
    while (i < units.length) {
      let j = i
      let bytes = BATCH_HEADER_BYTES
      const ops: EncodedOp[] = []
      while (j < units.length && (j === i || bytes + units[j]!.bytes <= max)) {
        bytes += units[j]!.bytes
        for (const op of units[j]!.ops) ops.push(op)
        j++
      }
      try {
        this.#store.append(ops, appendReason(ops))
      } catch (error) {
        for (let k = i; k < units.length; k++) units[k]!.reject(error)
        return
      }
      if (this.#cache !== undefined) for (const op of ops) this.#cache.delete(op.key)
      for (let k = i; k < j; k++) units[k]!.resolve()
      i = j
    }
    this.#scheduleCompaction()
    this.#scheduleCheckpoint()
  }

  /** Runs one bounded compaction step per event-loop turn while the store wants it. */
  #scheduleCompaction(): void {
    if (!this.#backgroundCompaction || this.#compactionScheduled || this.#compactionError !== undefined) return
    if (!this.#store.wantsCompaction()) return
    this.#compactionScheduled = true
    setImmediate(() => {
      this.#compactionScheduled = false
      if (this.#closed || this.#closing !== undefined) return
      try {
        this.#store.compactStep(COMPACTION_STEP_BYTES)
      } catch (error) {
        // A full file only pauses cleaning until the next write asks again;
        // an I/O error latches the store, and every later call reports it.
        if (!(error instanceof DaxKVError && error.code === ErrorCode.FULL)) this.#compactionError = error
        return
      }
      this.#scheduleCompaction()
    })
  }

  /**
   * Takes an index checkpoint in the background once enough log has been
   * written since the last one. The tables are encoded at once (a copy of
   * the index, so later commits cannot change what it describes) and the
   * file is written asynchronously and renamed into place, unless the store
   * was closed or a newer checkpoint was taken meanwhile. A checkpoint
   * describes a prefix of the log, which is all an open needs (docs/format.md).
   */
  #scheduleCheckpoint(): void {
    if (!this.#indexCheckpoint || this.#checkpointInterval === 0 || this.#checkpointScheduled || this.#checkpointWriting) return
    const counters = this.#store.counters
    const since = counters.bytesAppended + counters.bytesCopied - this.#logBytesAtCheckpoint
    // This runs after every commit: the size-based part of the default is only looked at past its floor.
    if (since < (this.#checkpointInterval ?? CHECKPOINT_INTERVAL_MIN) || since < this.#checkpointThreshold()) return
    this.#checkpointScheduled = true
    setImmediate(() => {
      this.#checkpointScheduled = false
      if (this.#closed || this.#closing !== undefined || this.#store.failed !== undefined) return
      const bytes = this.#store.checkpoint()
      this.#logBytesAtCheckpoint = counters.bytesAppended + counters.bytesCopied
      const generation = ++this.#checkpointGeneration
      const file = checkpointPath(this.path)
      const temporary = join(dirname(file), `${checkpointTemporaryPrefix(file)}${process.pid}-${generation}`)
      this.#checkpointWriting = true
      fs.promises
        .writeFile(temporary, bytes)
        .then(() => {
          // Synchronous from the check to the rename: nothing can close the store in between.
          if (this.#closed || generation !== this.#checkpointGeneration) removeQuietly(temporary)
          else {
            fs.renameSync(temporary, file)
            this.#checkpointsWritten++
          }
        })
        .catch(() => removeQuietly(temporary))
        .finally(() => {
          this.#checkpointWriting = false
        })
    })
  }

  /** Log bytes between background checkpoints: the option, or 64 MiB or 8× the checkpoint's size. */
  #checkpointThreshold(): number {
    if (this.#checkpointInterval !== undefined) return this.#checkpointInterval
    return Math.max(CHECKPOINT_INTERVAL_MIN, 8 * this.#store.checkpointBytes())
  }

  #checkOpen(): void {
    if (this.#closed || this.#closing !== undefined) {
      throw new DaxKVError(ErrorCode.CLOSED, `the database at ${this.path} is closed; open it again to use it`)
    }
  }
}

function writePathOf(domain: PersistenceDomain): Stats['writePath'] {
  if (domain.kind === 'simulated') return 'simulated'
  if (domain.kind !== 'msync') return 'cache-flush'
  return domain instanceof MappedDomain && domain.writeThrough ? 'pwrite+fdatasync' : 'msync'
}

/** Deletes may use the reserved segment, so a full store can still shrink. */
function appendReason(ops: readonly EncodedOp[]): 'put' | 'delete' {
  for (const op of ops) if (op.type !== RECORD_DEL) return 'put'
  return 'delete'
}

function copyValue(op: EncodedOp): EncodedOp {
  return op.value === undefined ? op : { type: op.type, key: op.key, value: Buffer.from(op.value) }
}

function unitBytes(ops: readonly EncodedOp[]): number {
  let n = 0
  for (const op of ops) n += recordBytes(op.key.length, op.value === undefined ? 0 : op.value.length)
  return n
}

function bound(key: Key | undefined, inclusive: boolean): Bound | undefined {
  return key === undefined ? undefined : { key: keyToBytes(key), inclusive }
}

function maxFileBytesOf(options: OpenOptions): number {
  const max = options.maxSize === undefined ? FILE_BYTES_MAX : parseSize(options.maxSize, 'maxSize')
  if (max > FILE_BYTES_MAX) throw new RangeError(`maxSize must be at most ${FILE_BYTES_MAX} bytes, got ${max}`)
  return max
}

function storeOptions(options: OpenOptions): LogStoreOptions {
  return { durable: options.sync !== false, autoGrow: options.autoGrow !== false, maxBytes: maxFileBytesOf(options) }
}

function modeFrom(options: OpenOptions): ModeRequest {
  const mode = options.mode ?? (process.env.DAXKV_MODE as ModeRequest | undefined) ?? 'auto'
  if (!['auto', 'dax', 'msync', 'forced-dax'].includes(mode)) {
    throw new TypeError(`mode must be 'auto', 'dax', 'msync' or 'forced-dax', got ${JSON.stringify(mode)}`)
  }
  return mode
}

function checkOptions(options: OpenOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('open() options must be an object')
  if (options.cacheSize !== undefined && !(Number.isInteger(options.cacheSize) && options.cacheSize >= 0)) {
    throw new RangeError(`cacheSize must be a whole number of entries, got ${options.cacheSize}`)
  }
  if (options.keyEncoding !== undefined && options.keyEncoding !== 'utf8' && options.keyEncoding !== 'binary') {
    throw new TypeError(`unknown keyEncoding ${JSON.stringify(options.keyEncoding)}: use 'utf8' or 'binary'`)
  }
  valueCodec(options.valueEncoding ?? 'msgpack')
  if (options.checkpointInterval !== undefined) parseSize(options.checkpointInterval, 'checkpointInterval')
}

/**
 * Opens (and by default creates) the daxfile at `path`.
 *
 * ```ts
 * const db = await open('data.dax', { size: '64MiB' })
 * await db.put('hello', { world: true })
 * db.get('hello') // { world: true }
 * await db.close()
 * ```
 */
export async function open<V = any>(path: string, options: OpenOptions = {}): Promise<DaxKV<V>> {
  if (typeof path !== 'string' || path === '') throw new TypeError('open() needs the path of a daxfile')
  checkOptions(options)
  const mode = modeFrom(options)
  let file: OpenedFile | undefined
  if (!fs.existsSync(path) && options.create !== false) {
    // A checkpoint left by a daxfile that was deleted would only be refused at the next close.
    removeQuietly(checkpointPath(path))
    const geometry = chooseGeometry(
      parseSize(options.size ?? DEFAULT_SIZE),
      options.segmentSize === undefined ? undefined : parseSize(options.segmentSize, 'segmentSize'),
    )
    file = createDaxfile(path, geometry.fileBytes, mode, (domain) => {
      formatSuperblocks(domain, geometry)
    })
  }
  file ??= openDaxfile(path, mode)
  const opened = file
  try {
    // Read under the lock, so no other writer can be replacing it.
    removeCheckpointTemporaries(checkpointPath(path))
    const checkpoint = options.indexCheckpoint === false ? undefined : readCheckpointFile(checkpointPath(path))
    const store = LogStore.open(file.domain, path, {
      ...storeOptions(options),
      beforeRecovery: (superblock) => opened.checkExtents(superblock.fileBytes),
      ...(checkpoint === undefined ? {} : { checkpoint }),
    })
    // A checkpoint the log has moved past is of no further use.
    if (store.recovery.checkpointRejected !== undefined) removeQuietly(checkpointPath(path))
    return new DaxKV<V>(store, file, path, options)
  } catch (error) {
    file.close()
    throw error
  }
}

/**
 * Opens a database on a persistence domain the caller provides (the
 * simulated domain of the crash tests). A domain whose superblock area is
 * all zero is formatted first, with `options.size` ignored in favour of the
 * domain's size.
 */
export function openOnDomain<V = any>(domain: PersistenceDomain, options: OpenOptions = {}, label = '(simulated)'): DaxKV<V> {
  checkOptions(options)
  if (isZero(domain.view(0, SUPERBLOCK_AREA_BYTES), 0, SUPERBLOCK_AREA_BYTES)) {
    formatSuperblocks(
      domain,
      chooseGeometry(domain.size, options.segmentSize === undefined ? undefined : parseSize(options.segmentSize, 'segmentSize')),
    )
  }
  return new DaxKV<V>(LogStore.open(domain, label, storeOptions(options)), undefined, label, options)
}

/** Where the index checkpoint of the daxfile at `path` is kept. */
export function checkpointPath(path: string): string {
  return `${path}.index`
}

function readCheckpointFile(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    // Unreadable: the log is replayed instead, which is always correct.
    return Buffer.alloc(0)
  }
}

/**
 * Writes the checkpoint under a temporary name and renames it into place.
 * Not fsynced: a checkpoint lost or torn by a crash fails its checksum or
 * its match with the log, and the log is replayed. A failure to write it
 * (a full disk) leaves the old one, which no longer matches the log.
 */
function writeCheckpointFile(file: string, bytes: Buffer): void {
  const temporary = join(dirname(file), `${checkpointTemporaryPrefix(file)}${process.pid}`)
  try {
    fs.writeFileSync(temporary, bytes)
    fs.renameSync(temporary, file)
  } catch {
    removeQuietly(temporary)
  }
}

/** Hidden names the checkpoint is written under before the rename. */
function checkpointTemporaryPrefix(file: string): string {
  return `.${basename(file)}.tmp-`
}

/**
 * Removes checkpoint temporaries a process left when it died inside close.
 * Called with the daxfile's lock held: only the lock holder writes one, so
 * every one found is abandoned.
 */
function removeCheckpointTemporaries(file: string): void {
  const prefix = checkpointTemporaryPrefix(file)
  try {
    for (const name of fs.readdirSync(dirname(file))) if (name.startsWith(prefix)) removeQuietly(join(dirname(file), name))
  } catch {
    // An unreadable directory leaves them; nothing reads them.
  }
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true })
  } catch {
    // Nothing depends on it being gone.
  }
}
