import { SortedKeys, type Bound } from './sorted-keys.js'

/** Reads keys back from the log: the index keeps locations, and the keys stay in the file. */
export interface KeyReader {
  /** True when the record at `location` has key `key` (a byte string). */
  keyMatches(location: number, key: string): boolean
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

  /** Points `key` at `location`; returns the location it replaces, if any. */
  set(key: string, location: number): number | undefined {
    const hash = hashKey(key)
    const slot = this.#find(key, hash)
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
    this.#sorted?.insert(key)
    return undefined
  }

  /** Removes `key`; returns the location it had, if any. */
  delete(key: string): number | undefined {
    let hole = this.#find(key, hashKey(key))
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
    this.#sorted?.delete(key)
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
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}
