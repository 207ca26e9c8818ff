import { CACHE_LINE_BYTES, MAP_PIECE_BYTES, PAGE_BYTES } from './constants.js'
import { checkRange, type PersistenceDomain } from './domain.js'

/**
 * How the simulated hardware makes stores durable.
 * - `cache-line`: like DAX persistent memory. A store lands in the cache; any
 *   dirty 8-byte unit may reach the media at any time (lines are written back
 *   at 8-byte atomicity); flush + drain make the flushed lines durable.
 * - `page`: like msync on ordinary storage. Dirty 4 KiB pages may reach the
 *   disk in any order and any subset until a drain (msync) writes the flushed
 *   ones back.
 */
export type SimulatedGranularity = 'cache-line' | 'page'

/** One unit whose durability is undecided at a crash: it may keep its durable bytes or take `bytes`. */
export interface PendingUnit {
  readonly offset: number
  readonly bytes: Buffer
}

/**
 * A persistence domain over a plain buffer that tracks, for every unit of
 * the file, whether it is durable, in flight (flushed, not yet drained) or
 * only in cache, and can produce the images a power failure could leave.
 * It keeps two images, as redb's crash tests do: `live` (what the program
 * sees) and `durable` (what survives for certain).
 */
export class SimulatedDomain implements PersistenceDomain {
  readonly kind = 'simulated' as const
  readonly orderedMarker: boolean
  #size: number
  readonly granularity: SimulatedGranularity
  /** Bytes that reach the media atomically: 8 (cache-line mode) or a page. */
  readonly unitBytes: number
  #live: Buffer
  #durable: Buffer
  #markers: Float64Array
  /** Units stored to since they were last flushed. */
  readonly #dirty = new Set<number>()
  /** Units flushed (cache-line mode: with the bytes they had when flushed) and not yet drained. */
  readonly #inFlight = new Map<number, Buffer | undefined>()
  /** Counts of store, flush and drain calls, for crash-point enumeration. */
  stores = 0
  flushes = 0
  drains = 0
  /** Called after every store, flush and drain, with the range (none for a drain); a crash test can snapshot here. */
  onEvent: ((kind: 'store' | 'flush' | 'drain', offset: number, length: number) => void) | undefined

  constructor(size: number, granularity: SimulatedGranularity = 'cache-line', image?: Buffer) {
    if (size % PAGE_BYTES !== 0) throw new RangeError(`simulated size ${size} is not a whole number of pages`)
    this.#size = size
    this.granularity = granularity
    this.orderedMarker = granularity === 'cache-line'
    this.unitBytes = granularity === 'cache-line' ? 8 : PAGE_BYTES
    const memory = new Float64Array(size / 8)
    this.#markers = memory
    this.#live = Buffer.from(memory.buffer)
    this.#durable = Buffer.alloc(size)
    if (image !== undefined) {
      if (image.length !== size) throw new RangeError(`image is ${image.length} bytes, expected ${size}`)
      image.copy(this.#live)
      image.copy(this.#durable)
    }
  }

  get size(): number {
    return this.#size
  }

  /** Growth is durable at once, as preallocation ends with fsync: the bytes are zero in both images. */
  grow(from: number, to: number): void {
    if (to % PAGE_BYTES !== 0) throw new RangeError(`simulated size ${to} is not a whole number of pages`)
    if (to > this.#size) {
      const memory = new Float64Array(to / 8)
      const live = Buffer.from(memory.buffer)
      this.#live.copy(live)
      const durable = Buffer.alloc(to)
      this.#durable.copy(durable)
      this.#markers = memory
      this.#live = live
      this.#durable = durable
      this.#size = to
    }
    this.#live.fill(0, from, to)
    this.#durable.fill(0, from, to)
    for (let unit = Math.floor(from / this.unitBytes); unit < Math.ceil(to / this.unitBytes); unit++) {
      this.#dirty.delete(unit)
      this.#inFlight.delete(unit)
    }
  }

  /**
   * The domain a new process sees after this one was killed: the caches
   * (page cache, CPU caches) survive, so it reads the live image, but what
   * was not durable is still not durable and may yet be lost to a power
   * failure: every unit whose live bytes differ from its durable bytes
   * starts out dirty.
   */
  afterProcessCrash(): SimulatedDomain {
    const next = new SimulatedDomain(this.#size, this.granularity, this.#durable)
    this.#live.copy(next.#live)
    for (let unit = 0; unit < this.#size / this.unitBytes; unit++) {
      if (!this.#unitBytesOf(this.#live, unit).equals(this.#unitBytesOf(this.#durable, unit))) next.#dirty.add(unit)
    }
    return next
  }

  /** A domain whose live and durable images are both `image`: the state after a crash. */
  static fromImage(image: Buffer, granularity: SimulatedGranularity = 'cache-line'): SimulatedDomain {
    return new SimulatedDomain(image.length, granularity, image)
  }

  view(offset: number, length: number): Buffer {
    checkRange(this.size, offset, length)
    return this.#live.subarray(offset, offset + length)
  }

  piece(offset: number): Buffer {
    checkRange(this.#size, offset, 0)
    const base = Math.floor(offset / MAP_PIECE_BYTES) * MAP_PIECE_BYTES
    return this.#live.subarray(base, Math.min(this.#size, base + MAP_PIECE_BYTES))
  }

  write(offset: number, src: Uint8Array): void {
    checkRange(this.size, offset, src.length)
    this.#live.set(src, offset)
    this.#stored(offset, src.length)
  }

  writeMarker(offset: number, value: number): void {
    checkRange(this.size, offset, 8)
    if (offset % 8 !== 0) throw new RangeError(`marker offset ${offset} is not 8-byte aligned`)
    this.#markers[offset >>> 3] = value
    this.#stored(offset, 8)
  }

  zero(offset: number, length: number): void {
    checkRange(this.size, offset, length)
    this.#live.fill(0, offset, offset + length)
    this.#stored(offset, length)
  }

  flush(offset: number, length: number): void {
    checkRange(this.size, offset, length)
    if (length === 0) return
    const grain = this.granularity === 'cache-line' ? CACHE_LINE_BYTES : PAGE_BYTES
    const lo = offset - (offset % grain)
    const hi = Math.min(this.size, Math.ceil((offset + length) / grain) * grain)
    for (let unit = lo / this.unitBytes; unit < hi / this.unitBytes; unit++) {
      if (!this.#dirty.delete(unit)) continue
      // A line written back now carries the unit's current bytes; in page mode
      // msync copies the page when it runs, so nothing is captured here.
      this.#inFlight.set(unit, this.granularity === 'cache-line' ? Buffer.from(this.#unitBytesOf(this.#live, unit)) : undefined)
    }
    this.flushes++
    this.onEvent?.('flush', offset, length)
  }

  drain(): void {
    for (const [unit, bytes] of this.#inFlight) {
      const start = unit * this.unitBytes
      ;(bytes ?? this.#unitBytesOf(this.#live, unit)).copy(this.#durable, start)
    }
    this.#inFlight.clear()
    this.drains++
    this.onEvent?.('drain', 0, 0)
  }

  persist(offset: number, length: number): void {
    this.flush(offset, length)
    this.drain()
  }

  persistAll(): void {
    this.flush(0, this.size)
    this.drain()
  }

  /** A simulated file always has a name. */
  checkLinked(): void {}

  close(): void {}

  /** A copy of what is durable for certain. */
  durableImage(): Buffer {
    return Buffer.from(this.#durable)
  }

  /** A copy of what the program sees (what survives a process crash). */
  liveImage(): Buffer {
    return Buffer.from(this.#live)
  }

  /**
   * Units whose fate a power failure decides: dirty units may reach the media
   * with their live bytes, in-flight units with the bytes they were flushed
   * with (or later ones, if stored to again). Units whose bytes equal the
   * durable bytes are left out: either outcome is the same image.
   */
  pendingUnits(): PendingUnit[] {
    const units = new Set<number>([...this.#dirty, ...this.#inFlight.keys()])
    const out: PendingUnit[] = []
    for (const unit of [...units].sort((a, b) => a - b)) {
      const bytes = this.#dirty.has(unit) ? this.#unitBytesOf(this.#live, unit) : this.#inFlight.get(unit) ?? this.#unitBytesOf(this.#live, unit)
      if (bytes.equals(this.#unitBytesOf(this.#durable, unit))) continue
      out.push({ offset: unit * this.unitBytes, bytes: Buffer.from(bytes) })
    }
    return out
  }

  /** The image a power failure leaves when exactly the pending units chosen by `reached` got to the media. */
  crashImage(reached: (unit: PendingUnit, index: number) => boolean): Buffer {
    const image = this.durableImage()
    this.pendingUnits().forEach((unit, i) => {
      if (reached(unit, i)) unit.bytes.copy(image, unit.offset)
    })
    return image
  }

  #unitBytesOf(buf: Buffer, unit: number): Buffer {
    const start = unit * this.unitBytes
    return buf.subarray(start, start + this.unitBytes)
  }

  #stored(offset: number, length: number): void {
    if (length === 0) return
    const first = Math.floor(offset / this.unitBytes)
    const last = Math.floor((offset + length - 1) / this.unitBytes)
    for (let unit = first; unit <= last; unit++) this.#dirty.add(unit)
    this.stores++
    this.onEvent?.('store', offset, length)
  }
}
