import { SortedKeys, type Bound } from './sorted-keys.js'

/** Reads keys back from the log: the index keeps locations, and the keys stay in the file. */
export interface KeyReader {
  /** True when the record at `location` has key `key` (a byte string). */
  keyMatches(location: number, key: string): boolean
  /** True when the records at `a` and `b` have the same key. */
  sameKey(a: number, b: number): boolean
  /** {@link hashKey} of the key of the record at `location`. */
  keyHashAt(location: number): number
  /** The key of the record at `location`, as a byte string. */
  keyAt(location: number): string
}

const EMPTY = -1
const CAPACITY_MIN = 1024

/**
 * The in-memory index: key -> file offset of the key's record.
 *
 * Point lookups use an open-addressing hash table (linear probing) of two
 * typed arrays, record locations and 32-bit key hashes, so the index holds
 * no per-key JavaScript objects: a key is confirmed by comparing it with the
 * key bytes of the record in the mapping. At most half the slots are used.
 * The ordered view for range scans is built on the first scan (one sort)
 * and kept current from then on, so a store read only by key never pays for
 * ordering.
 */
export class KeyIndex {
  readonly #reader: KeyReader
  #locations: Int32Array
  #hashes: Uint32Array
  #mask: number
  #size = 0
  #sorted: SortedKeys | undefined

  constructor(reader: KeyReader, capacity = CAPACITY_MIN) {
    this.#reader = reader
    let slots = CAPACITY_MIN
    while (slots < 2 * capacity) slots *= 2
    this.#locations = new Int32Array(slots).fill(EMPTY)
    this.#hashes = new Uint32Array(slots)
    this.#mask = slots - 1
  }

  get size(): number {
    return this.#size
  }

  get(key: string): number | undefined {
    const slot = this.#find(key, hashKey(key))
    return slot < 0 ? undefined : this.#locations[slot]
  }

  /** The location the index holds for the key of the record at `record`, if any. */
  getByRecord(record: number): number | undefined {
    const slot = this.#findRecord(record, this.#reader.keyHashAt(record))
    return slot < 0 ? undefined : this.#locations[slot]
  }

  /**
   * Points the key of the record at `location` to it; returns the location
   * it replaces, if any. The key is read from the record, so replaying a log
   * creates no strings.
   */
  set(location: number, hash = this.#reader.keyHashAt(location)): number | undefined {
    const slot = this.#findRecord(location, hash)
    if (slot >= 0) {
      const previous = this.#locations[slot]!
      this.#locations[slot] = location
      return previous
    }
    if (2 * (this.#size + 1) > this.#locations.length) this.#resize(2 * this.#locations.length)
    let i = hash & this.#mask
    while (this.#locations[i] !== EMPTY) i = (i + 1) & this.#mask
    this.#locations[i] = location
    this.#hashes[i] = hash
    this.#size++
    this.#sorted?.insert(this.#reader.keyAt(location))
    return undefined
  }

  /** Removes the key of the record at `record`; returns the location it had, if any. */
  delete(record: number, hash?: number): number | undefined {
    if (this.#size === 0) return undefined
    let hole = this.#findRecord(record, hash ?? this.#reader.keyHashAt(record))
    if (hole < 0) return undefined
    const previous = this.#locations[hole]!
    const locations = this.#locations
    const hashes = this.#hashes
    const mask = this.#mask
    // Backward-shift deletion: move later entries of the probe run into the
    // hole when their home slot does not lie between the hole and them, so
    // every remaining key stays reachable from its home slot.
    for (let j = (hole + 1) & mask; locations[j] !== EMPTY; j = (j + 1) & mask) {
      const home = hashes[j]! & mask
      const reachable = hole <= j ? home > hole && home <= j : home > hole || home <= j
      if (reachable) continue
      locations[hole] = locations[j]!
      hashes[hole] = hashes[j]!
      hole = j
    }
    locations[hole] = EMPTY
    this.#size--
    this.#sorted?.delete(this.#reader.keyAt(record))
    return previous
  }

  /** Keys inside the bounds in bytewise order (descending when `reverse`). */
  keys(lower: Bound | undefined, upper: Bound | undefined, reverse: boolean): Generator<string> {
    if (this.#sorted === undefined) {
      const keys: string[] = []
      for (const location of this.#locations) if (location !== EMPTY) keys.push(this.#reader.keyAt(location))
      this.#sorted = SortedKeys.fromSorted(keys.sort())
    }
    return this.#sorted.range(lower, upper, reverse)
  }

  /** The slot holding `key`, or -1. */
  #find(key: string, hash: number): number {
    const locations = this.#locations
    const hashes = this.#hashes
    const mask = this.#mask
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const location = locations[i]!
      if (location === EMPTY) return -1
      if (hashes[i] === hash && this.#reader.keyMatches(location, key)) return i
    }
  }

  /** The slot holding the key of the record at `record`, or -1. */
  #findRecord(record: number, hash: number): number {
    const locations = this.#locations
    const hashes = this.#hashes
    const mask = this.#mask
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const location = locations[i]!
      if (location === EMPTY) return -1
      if (hashes[i] === hash && this.#reader.sameKey(location, record)) return i
    }
  }

  #resize(slots: number): void {
    const oldLocations = this.#locations
    const oldHashes = this.#hashes
    this.#locations = new Int32Array(slots).fill(EMPTY)
    this.#hashes = new Uint32Array(slots)
    this.#mask = slots - 1
    for (let i = 0; i < oldLocations.length; i++) {
      const location = oldLocations[i]!
      if (location === EMPTY) continue
      const hash = oldHashes[i]!
      let j = hash & this.#mask
      while (this.#locations[j] !== EMPTY) j = (j + 1) & this.#mask
      this.#locations[j] = location
      this.#hashes[j] = hash
    }
  }
}

/** FNV-1a over the key's bytes, then a final avalanche (murmur3's fmix32) so low bits spread. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return finishHash(h)
}

/** {@link hashKey} of bytes[start, end): the same value as for the byte string of those bytes. */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193)
  return finishHash(h)
}

function finishHash(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}
