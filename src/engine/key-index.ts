import { hashKey } from '../format/key-hash.js'
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
 * Point lookups use an open-addressing hash table (linear probing) in one
 * typed array of (record location, 32-bit key hash) pairs, side by side so
 * a probe touches one cache line, and the index holds no per-key JavaScript
 * objects: a key is confirmed by comparing it with the key bytes of the
 * record in the mapping. At most half the slots are used.
 * The ordered view for range scans is built on the first scan (one sort)
 * and kept current from then on, so a store read only by key never pays for
 * ordering.
 */
export class KeyIndex {
  readonly #reader: KeyReader
  /** Slot i is entries[2i] = location (EMPTY when free) and entries[2i + 1] = hash (as an int32). */
  #entries: Int32Array
  #mask: number
  #size = 0
  #sorted: SortedKeys | undefined

  constructor(reader: KeyReader, capacity = CAPACITY_MIN) {
    this.#reader = reader
    let slots = CAPACITY_MIN
    while (slots < 2 * capacity) slots *= 2
    this.#entries = newEntries(slots)
    this.#mask = slots - 1
  }

  get size(): number {
    return this.#size
  }

  /** The table as it is (not a copy), for an index checkpoint. */
  snapshot(): { readonly entries: Int32Array; readonly size: number } {
    return { entries: this.#entries, size: this.#size }
  }

  /** Every location in the table, in slot order. */
  *locations(): Generator<number> {
    const entries = this.#entries
    for (let i = 0; i < entries.length; i += 2) if (entries[i] !== EMPTY) yield entries[i]!
  }

  /**
   * An index over a table from {@link snapshot} (taken over, not copied).
   * The caller has established that the table belongs to the log `reader`
   * reads; only its shape is checked here.
   */
  static fromSnapshot(reader: KeyReader, entries: Int32Array, size: number): KeyIndex {
    const slots = entries.length / 2
    if (slots < CAPACITY_MIN || (slots & (slots - 1)) !== 0 || 2 * size > slots) {
      throw new RangeError(`an index table of ${slots} slots cannot hold ${size} keys`)
    }
    const index = new KeyIndex(reader)
    index.#entries = entries
    index.#mask = slots - 1
    index.#size = size
    return index
  }

  get(key: string): number | undefined {
    const slot = this.#find(key, hashKey(key))
    return slot < 0 ? undefined : this.#entries[2 * slot]
  }

  /** The location the index holds for the key of the record at `record`, if any. */
  getByRecord(record: number): number | undefined {
    const slot = this.#findRecord(record, this.#reader.keyHashAt(record))
    return slot < 0 ? undefined : this.#entries[2 * slot]
  }

  /**
   * Points the key of the record at `location` to it; returns the location
   * it replaces, if any. The key is read from the record, so replaying a log
   * creates no strings.
   */
  set(location: number, hash = this.#reader.keyHashAt(location)): number | undefined {
    const slot = this.#findRecord(location, hash)
    if (slot >= 0) {
      const previous = this.#entries[2 * slot]!
      this.#entries[2 * slot] = location
      return previous
    }
    if (2 * (this.#size + 1) > this.#mask + 1) this.#resize(2 * (this.#mask + 1))
    let i = hash & this.#mask
    while (this.#entries[2 * i] !== EMPTY) i = (i + 1) & this.#mask
    this.#entries[2 * i] = location
    this.#entries[2 * i + 1] = hash
    this.#size++
    this.#sorted?.insert(this.#reader.keyAt(location))
    return undefined
  }

  /** Removes the key of the record at `record`; returns the location it had, if any. */
  delete(record: number, hash?: number): number | undefined {
    if (this.#size === 0) return undefined
    let hole = this.#findRecord(record, hash ?? this.#reader.keyHashAt(record))
    if (hole < 0) return undefined
    const entries = this.#entries
    const previous = entries[2 * hole]!
    const mask = this.#mask
    // Backward-shift deletion: move later entries of the probe run into the
    // hole when their home slot does not lie between the hole and them, so
    // every remaining key stays reachable from its home slot.
    for (let j = (hole + 1) & mask; entries[2 * j] !== EMPTY; j = (j + 1) & mask) {
      const home = entries[2 * j + 1]! & mask
      const reachable = hole <= j ? home > hole && home <= j : home > hole || home <= j
      if (reachable) continue
      entries[2 * hole] = entries[2 * j]!
      entries[2 * hole + 1] = entries[2 * j + 1]!
      hole = j
    }
    entries[2 * hole] = EMPTY
    this.#size--
    this.#sorted?.delete(this.#reader.keyAt(record))
    return previous
  }

  /**
   * Removes every entry whose location `drop` selects, without reading the
   * records (they may have been overwritten), by rebuilding the table.
   * Returns how many were removed.
   */
  removeWhere(drop: (location: number) => boolean): number {
    const removed = this.#rebuild(this.#mask + 1, drop)
    this.#sorted = undefined
    return removed
  }

  /** Keys inside the bounds in bytewise order (descending when `reverse`). */
  keys(lower: Bound | undefined, upper: Bound | undefined, reverse: boolean): Generator<string> {
    if (this.#sorted === undefined) {
      const keys: string[] = []
      for (let i = 0; i < this.#entries.length; i += 2) {
        const location = this.#entries[i]!
        if (location !== EMPTY) keys.push(this.#reader.keyAt(location))
      }
      this.#sorted = SortedKeys.fromSorted(keys.sort())
    }
    return this.#sorted.range(lower, upper, reverse)
  }

  /** The slot holding `key`, or -1. */
  #find(key: string, hash: number): number {
    const entries = this.#entries
    const mask = this.#mask
    const tag = hash | 0
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const location = entries[2 * i]!
      if (location === EMPTY) return -1
      if (entries[2 * i + 1] === tag && this.#reader.keyMatches(location, key)) return i
    }
  }

  /** The slot holding the key of the record at `record`, or -1. */
  #findRecord(record: number, hash: number): number {
    const entries = this.#entries
    const mask = this.#mask
    const tag = hash | 0
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const location = entries[2 * i]!
      if (location === EMPTY) return -1
      if (entries[2 * i + 1] === tag && this.#reader.sameKey(location, record)) return i
    }
  }

  #resize(slots: number): void {
    this.#rebuild(slots, undefined)
  }

  /** Re-inserts every entry (but those `drop` selects) into a new table of `slots` slots; returns how many were dropped. */
  #rebuild(slots: number, drop: ((location: number) => boolean) | undefined): number {
    const old = this.#entries
    const entries = newEntries(slots)
    const mask = slots - 1
    let dropped = 0
    for (let i = 0; i < old.length; i += 2) {
      const location = old[i]!
      if (location === EMPTY) continue
      if (drop?.(location) === true) {
        dropped++
        continue
      }
      const hash = old[i + 1]!
      let j = hash & mask
      while (entries[2 * j] !== EMPTY) j = (j + 1) & mask
      entries[2 * j] = location
      entries[2 * j + 1] = hash
    }
    this.#entries = entries
    this.#mask = mask
    this.#size -= dropped
    return dropped
  }
}

/** A table of `slots` empty slots (the hash halves are -1 too, which nothing reads). */
function newEntries(slots: number): Int32Array {
  return new Int32Array(2 * slots).fill(EMPTY)
}
