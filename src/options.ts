import { DEFAULT_VALUE_ENCODING, valueCodec, type KeyEncoding, type ValueEncoding } from './encoding.js'
import type { LogStoreOptions } from './engine/log-store.js'
import { chooseGeometry, type Geometry } from './engine/superblock-io.js'
import { FILE_BYTES_MAX } from './format/constants.js'
import type { ModeRequest } from './platform/daxfile.js'
import { parseSize } from './size.js'

/** Options of {@link open}. */
export interface OpenOptions {
  /** Size of a new daxfile: bytes or a string such as `'64MiB'`, at most `maxSize`. Ignored when the file exists. Default `'64MiB'`, or `maxSize` if smaller. */
  size?: number | string
  /** Create the daxfile if it does not exist. Default `true`. */
  create?: boolean
  /**
   * Value encoding: `'msgpack'`, `'json'`, `'utf8'` (strings) or `'binary'` (Uint8Array). A new
   * daxfile records it (default `'msgpack'`). An existing one is opened with the encoding it
   * records when this is omitted, and refused with DAXKV_ENCODING when this names another, except
   * `'binary'`: a raw view, whose reads return the stored bytes and whose writes store the bytes
   * given as they are. A daxfile that records none (created before daxkv recorded encodings) opens
   * with this, default `'msgpack'`.
   */
  valueEncoding?: ValueEncoding
  /**
   * Key encoding: `'utf8'` (keys are returned as strings) or `'binary'` (returned as Buffers). Both
   * accept strings and Uint8Arrays. Recorded like `valueEncoding` (default `'utf8'`): `'binary'`
   * opens a `'utf8'` store (keys written through it must still be UTF-8), `'utf8'` is refused on a
   * `'binary'` store.
   */
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

const DEFAULT_SIZE = '64MiB'

/** Every option open() knows, and the type each must have when given (`size`-like ones are checked by parseSize). */
const KNOWN_OPTIONS: Record<keyof OpenOptions, 'boolean' | 'other'> = {
  size: 'other',
  create: 'boolean',
  valueEncoding: 'other',
  keyEncoding: 'other',
  cacheSize: 'other',
  sync: 'boolean',
  mode: 'other',
  segmentSize: 'other',
  autoGrow: 'boolean',
  maxSize: 'other',
  backgroundCompaction: 'boolean',
  indexCheckpoint: 'boolean',
  checkpointInterval: 'other',
}

/**
 * Checks every option before anything is created or opened; throws
 * TypeError or RangeError. An option open() does not know is a mistake
 * (a misspelt `size` would otherwise give a file of the default size).
 */
export function checkOptions(options: OpenOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('open() options must be an object')
  for (const [name, value] of Object.entries(options)) {
    const kind = Object.hasOwn(KNOWN_OPTIONS, name) ? KNOWN_OPTIONS[name as keyof OpenOptions] : undefined
    if (kind === undefined) throw new TypeError(`unknown option ${JSON.stringify(name)}; open() takes ${Object.keys(KNOWN_OPTIONS).join(', ')}`)
    if (kind === 'boolean' && value !== undefined && typeof value !== 'boolean') throw new TypeError(`option ${name} must be true or false, got ${JSON.stringify(value)}`)
  }
  if (options.cacheSize !== undefined && !(Number.isInteger(options.cacheSize) && options.cacheSize >= 0)) {
    throw new RangeError(`cacheSize must be a whole number of entries, got ${options.cacheSize}`)
  }
  if (options.keyEncoding !== undefined && options.keyEncoding !== 'utf8' && options.keyEncoding !== 'binary') {
    throw new TypeError(`unknown keyEncoding ${JSON.stringify(options.keyEncoding)}: use 'utf8' or 'binary'`)
  }
  valueCodec(options.valueEncoding ?? DEFAULT_VALUE_ENCODING)
  if (options.checkpointInterval !== undefined) parseSize(options.checkpointInterval, 'checkpointInterval')
  modeFrom(options)
  maxFileBytesOf(options)
  geometryOf(options)
}

/** The durability mode asked for: the option, else `DAXKV_MODE`, else `'auto'`. */
export function modeFrom(options: OpenOptions): ModeRequest {
  const mode = options.mode ?? (process.env.DAXKV_MODE as ModeRequest | undefined) ?? 'auto'
  if (!['auto', 'dax', 'msync', 'forced-dax'].includes(mode)) {
    throw new TypeError(`mode must be 'auto', 'dax', 'msync' or 'forced-dax', got ${JSON.stringify(mode)}`)
  }
  return mode
}

/** `maxSize` in bytes (default and ceiling FILE_BYTES_MAX). */
export function maxFileBytesOf(options: OpenOptions): number {
  const max = options.maxSize === undefined ? FILE_BYTES_MAX : parseSize(options.maxSize, 'maxSize')
  if (max > FILE_BYTES_MAX) throw new RangeError(`maxSize must be at most ${FILE_BYTES_MAX} bytes, got ${max}`)
  return max
}

/**
 * The geometry of a new daxfile of `bytes` bytes, or else of `size`, which
 * must not exceed `maxSize` (the default size is 64 MiB, or `maxSize` if
 * that is smaller).
 */
export function geometryOf(options: OpenOptions, bytes?: number): Geometry {
  const maxBytes = maxFileBytesOf(options)
  const requested = bytes ?? (options.size === undefined ? Math.min(parseSize(DEFAULT_SIZE), maxBytes) : parseSize(options.size))
  const geometry = chooseGeometry(requested, options.segmentSize === undefined ? undefined : parseSize(options.segmentSize, 'segmentSize'))
  if (bytes === undefined && geometry.fileBytes > maxBytes) {
    throw new RangeError(`size (${geometry.fileBytes} bytes in whole segments) is larger than maxSize (${maxBytes} bytes)`)
  }
  return geometry
}

/** What the engine takes from the options. */
export function storeOptions(options: OpenOptions): Pick<LogStoreOptions, 'durable' | 'autoGrow' | 'maxBytes'> {
  return { durable: options.sync !== false, autoGrow: options.autoGrow !== false, maxBytes: maxFileBytesOf(options) }
}

/** Log bytes between background checkpoints, or undefined for the default rule. */
export function checkpointIntervalOf(options: OpenOptions): number | undefined {
  return options.checkpointInterval === undefined ? undefined : parseSize(options.checkpointInterval, 'checkpointInterval')
}
