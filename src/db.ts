/**
 * The public API of one open database: {@link DaxKV}, its argument types
 * and its read and write paths down to the engine.
 */
import { LRUCache } from 'lru-cache'
import { BackgroundJobs, COMPACTION_STEP_BYTES } from './engine/background.js'
import { CommitQueue } from './engine/commit-queue.js'
import type { KeyIndex } from './engine/key-index.js'
import type { LogStore } from './engine/log-store.js'
import type { RecordReader } from './engine/record-reader.js'
import type { RecoveryReport } from './engine/recovery.js'
import type { Bound } from './engine/sorted-keys.js'
import type { VerifyReport } from './engine/verify.js'
import { DaxKVError, ErrorCode } from './errors.js'
import { keyFromBytes, keyToBytes, valueCodec, type Key, type KeyEncoding, type ValueCodec } from './encoding.js'
import type { EncodedOp } from './format/batch.js'
import { checkpointIntervalOf, maxFileBytesOf, type OpenOptions } from './options.js'
import type { OpenedFile } from './platform/daxfile.js'
import type { DomainKind } from './platform/domain.js'
import type { Encodings } from './recorded-encodings.js'
import { statsOf, type Stats } from './stats.js'
import { WriteEncoder, copyValue, type BatchOperation } from './write-encoder.js'

export type { BatchOperation } from './write-encoder.js'

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

const DEFAULT_CACHE_ENTRIES = 10_000
/** Stands for a cached `null`, which lru-cache cannot hold. */
const CACHED_NULL = Symbol('null')
const MAX_PROBLEMS = 50
const RANGE_OPTIONS: ReadonlySet<string> = new Set(['gt', 'gte', 'lt', 'lte', 'reverse', 'limit'])

/**
 * A daxkv database: one daxfile, one writer. Reads are synchronous and see
 * every committed write; writes issued in the same tick are committed
 * together (group commit), each promise resolving once its write is durable.
 *
 * This class validates and encodes what callers pass, keeps the cache of
 * decoded values, and hands the work to the engine (engine/log-store.ts):
 * reads to its index and record reader, writes to the commit queue.
 */
export class DaxKV<V = any> {
  /** The daxfile's path. */
  readonly path: string
  readonly #store: LogStore
  /** The store's index and record reader, held here because every read uses them. */
  readonly #index: KeyIndex
  readonly #reader: RecordReader
  readonly #file: OpenedFile | undefined
  readonly #codec: ValueCodec
  readonly #keyEncoding: KeyEncoding
  readonly #encodings: Encodings
  readonly #cache: LRUCache<string, object | symbol> | undefined
  readonly #queue: CommitQueue
  readonly #ops: WriteEncoder<V>
  readonly #background: BackgroundJobs
  readonly #maxFileBytes: number
  #cacheHits = 0
  #cacheMisses = 0
  /** What the last check of the daxfile's block map found wrong (at background checkpoints and verify()). */
  #blockMap: readonly string[] = []
  #closed = false
  #closing: Promise<void> | undefined

  /** @internal Use {@link open}. */
  constructor(store: LogStore, file: OpenedFile | undefined, path: string, options: OpenOptions, encodings: Encodings) {
    this.path = path
    this.#store = store
    this.#index = store.index
    this.#reader = store.reader
    this.#file = file
    this.#maxFileBytes = maxFileBytesOf(options)
    this.#encodings = encodings
    this.#codec = valueCodec(encodings.value)
    this.#keyEncoding = encodings.key
    this.#ops = new WriteEncoder<V>(this.#codec, encodings.keyForWrites, store.writer.maxBatchBytes)
    const cacheSize = options.cacheSize ?? DEFAULT_CACHE_ENTRIES
    this.#cache = this.#codec.cacheable && cacheSize > 0 ? new LRUCache<string, object | symbol>({ max: cacheSize }) : undefined
    this.#background = new BackgroundJobs(
      store,
      {
        compaction: options.backgroundCompaction !== false,
        daxfile: file === undefined ? undefined : path,
        keepCheckpoint: options.indexCheckpoint !== false,
        checkpointInterval: checkpointIntervalOf(options),
        afterCheckpoint: () => this.#checkBlockMap(),
      },
      () => !this.#closed && this.#closing === undefined,
    )
    const cache = this.#cache
    this.#queue = new CommitQueue(
      store.writer,
      store.index,
      (ops) => {
        if (cache !== undefined) for (const op of ops) cache.delete(op.key)
      },
      () => this.#background.afterCommits(),
    )
  }

  /** Which durability mode is active: `'dax'`, `'msync'`, `'forced-dax'` or `'simulated'`. */
  get mode(): DomainKind {
    return this.#store.domain.kind
  }

  /** Number of keys. */
  get count(): number {
    this.#checkOpen()
    return this.#index.size
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
    return this.#index.get(keyToBytes(key)) !== undefined
  }

  /** Stores `value` under `key`; resolves once durable (or written, with `sync: false`). */
  put(key: Key, value: V): Promise<void> {
    return this.#enqueue(() => [this.#ops.put(key, value)])
  }

  /** Removes `key`; resolves once durable. Removing an absent key is not an error. */
  del(key: Key): Promise<void> {
    return this.#enqueue(() => [this.#ops.del(key)])
  }

  /** Applies all operations atomically: after any crash, all of them or none are present. */
  batch(operations: readonly BatchOperation<V>[]): Promise<void> {
    return this.#enqueue(() => this.#ops.batch(operations))
  }

  /** {@link put}, committed when it returns (durable, unless the store was opened with `sync: false`). */
  putSync(key: Key, value: V): void {
    this.#commitNow([this.#ops.put(key, value)])
  }

  /** {@link del}, committed when it returns (durable, unless `sync: false`). */
  delSync(key: Key): void {
    this.#commitNow([this.#ops.del(key)])
  }

  /** {@link batch}, committed when it returns (durable, unless `sync: false`). */
  batchSync(operations: readonly BatchOperation<V>[]): void {
    this.#commitNow(this.#ops.batch(operations))
  }

  /**
   * Entries in bytewise key order. The scan is live, not a snapshot: it sees
   * writes committed while it runs, never returns a key twice, and each value
   * is the key's committed value when the entry is produced.
   */
  *range(options: RangeOptions = {}): Generator<[Key, V]> {
    for (const bytes of this.#keys(options)) {
      const location = this.#index.get(bytes)
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
    return statsOf({
      store: this.#store,
      path: this.path,
      maxFileBytes: this.#maxFileBytes,
      checkpointsWritten: this.#background.checkpointsWritten,
      cache: { entries: this.#cache?.size ?? 0, hits: this.#cacheHits, misses: this.#cacheMisses },
      statxDax: this.#file?.statxDax ?? null,
      blockMapProblems: this.#blockMap,
      encodings: this.#encodings,
    })
  }

  /**
   * Cleans every segment that holds garbage: copies its live records to the
   * head of the log and frees it. Reads and writes issued meanwhile are
   * served between steps. Resolves with what was done.
   */
  async compact(): Promise<{ segmentsCleaned: number; bytesCopied: number }> {
    this.#checkOpen()
    this.#queue.flush()
    const { counters, compactor } = this.#store
    const before = { segments: counters.compactions, bytes: counters.bytesCopied }
    // Each segment that holds garbage now is cleaned once.
    const victims = compactor.segmentsWithGarbage()
    while (!this.#closed && this.#closing === undefined) {
      if (!compactor.step(COMPACTION_STEP_BYTES, Number.NEGATIVE_INFINITY, victims)) break
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
    this.#queue.flush()
    const report = this.#store.verify()
    const problems = [...report.problems]
    for (const problem of this.#checkBlockMap()) {
      problems.push(`the daxfile's block map no longer keeps the daxfile contract (${problem}): something changed it while the store was open, such as a reflink copy; close the store and rewrite the file as a private copy`)
    }
    for (const bytes of this.#index.keys(undefined, undefined, false)) {
      try {
        this.#reader.decodeValueAt(this.#index.get(bytes)!, this.#codec.decode)
      } catch (error) {
        problems.push(`the value of key ${JSON.stringify(keyFromBytes(bytes, this.#keyEncoding))} does not decode as ${this.#codec.name}: ${String(error)}`)
        if (problems.length >= MAX_PROBLEMS) break
      }
    }
    return { ...report, ok: problems.length === 0, problems }
  }

  /** Commits what is queued, makes everything durable, and releases the file and its lock. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    this.#closing = new Promise<void>((resolve, reject) => {
      try {
        this.#queue.flush()
        this.#closed = true
        this.#warnIfBlockMapChanged()
        try {
          this.#background.close()
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

  /**
   * At close, the block map is checked once more (one FIEMAP call); a
   * change from outside that broke the daxfile contract is said in a
   * process warning, as nothing else of the store can be asked afterwards.
   */
  #warnIfBlockMapChanged(): void {
    const problems = this.#checkBlockMap()
    if (problems.length === 0) return
    process.emitWarning(
      `${this.path}: the daxfile's block map changed while it was open (${problems.join(', ')}), such as by a reflink copy; rewrite it as a private copy before the next open`,
      { code: 'DAXKV_BLOCK_MAP' },
    )
  }

  /** Checks the daxfile's block map again (FIEMAP); keeps the last answer when the check itself fails. */
  #checkBlockMap(): readonly string[] {
    if (this.#file === undefined) return this.#blockMap
    try {
      this.#blockMap = this.#file.blockMapProblems(this.#store.superblock.fileBytes)
    } catch {
      // The check is advisory; a failing FIEMAP leaves the last answer.
    }
    return this.#blockMap
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
    const location = this.#index.get(bytes)
    return location === undefined ? undefined : this.#value(bytes, location)
  }

  #value(bytes: string, location: number): V {
    let value: V
    try {
      value = this.#reader.decodeValueAt(location, this.#codec.decode) as V
    } catch (cause) {
      if (cause instanceof DaxKVError) throw cause
      const key = JSON.stringify(keyFromBytes(bytes, this.#keyEncoding)).slice(0, 80)
      // With the recorded encoding in use, only a raw view can have stored such bytes.
      const hint =
        this.#encodings.recordedValue === this.#codec.name
          ? `the daxfile records ${this.#codec.name}, so these bytes were stored through a raw view (valueEncoding 'binary'); read them with one, or overwrite or delete the key`
          : `was it written with another valueEncoding? Open the store with the encoding it was written with`
      throw new DaxKVError(ErrorCode.ENCODING, `the value of key ${key} does not decode as ${this.#codec.name} (${String(cause)}); ${hint}`, { cause })
    }
    if (this.#cache !== undefined && value !== undefined) this.#cache.set(bytes, value === null ? CACHED_NULL : (value as object))
    return value
  }

  *#keys(options: RangeOptions): Generator<string> {
    this.#checkOpen()
    if (options === null || typeof options !== 'object') throw new TypeError('range options must be an object')
    for (const name of Object.keys(options)) {
      if (!RANGE_OPTIONS.has(name)) throw new TypeError(`unknown range option ${JSON.stringify(name)}; range() takes ${[...RANGE_OPTIONS].join(', ')}`)
    }
    const limit = options.limit ?? -1
    if (!Number.isInteger(limit) || limit < -1) throw new RangeError(`limit must be a whole number or -1, got ${limit}`)
    if (limit === 0) return
    const lower = bound(options.gte, true) ?? bound(options.gt, false)
    const upper = bound(options.lte, true) ?? bound(options.lt, false)
    let n = 0
    for (const bytes of this.#index.keys(lower, upper, options.reverse === true)) {
      this.#checkOpen()
      yield bytes
      if (++n === limit) return
    }
  }

  #enqueue(encode: () => EncodedOp[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#checkOpen()
      const ops = encode()
      if (ops.length === 0) return resolve()
      // The write is committed on a later tick: keep the bytes the caller
      // gave now, not what their buffer holds by then.
      if (this.#codec.aliasesInput) for (let i = 0; i < ops.length; i++) ops[i] = copyValue(ops[i]!)
      this.#queue.push(ops, resolve, reject)
    })
  }

  #commitNow(ops: EncodedOp[]): void {
    this.#checkOpen()
    this.#queue.commitNow(ops)
  }

  #checkOpen(): void {
    if (this.#closed || this.#closing !== undefined) {
      throw new DaxKVError(ErrorCode.CLOSED, `the database at ${this.path} is closed; open it again to use it`)
    }
  }
}

function bound(key: Key | undefined, inclusive: boolean): Bound | undefined {
  return key === undefined ? undefined : { key: keyToBytes(key), inclusive }
}
