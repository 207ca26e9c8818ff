import { SortedKeys, type Bound } from './sorted-keys.js'

/**
 * The in-memory index: key -> file offset of the key's latest put record.
 * Point lookups go through a hash map; the ordered view for range scans is
 * built on the first scan (one sort) and kept current from then on, so a
 * store that is only read by key never pays for ordering at open.
 */
export class KeyIndex {
  readonly #locations = new Map<string, number>()
  #sorted: SortedKeys | undefined

  get size(): number {
    return this.#locations.size
  }

  get(key: string): number | undefined {
    return this.#locations.get(key)
  }

  /** Points `key` at `location`; returns the location it replaces, if any. */
  set(key: string, location: number): number | undefined {
    const previous = this.#locations.get(key)
    this.#locations.set(key, location)
    if (previous === undefined) this.#sorted?.insert(key)
    return previous
  }

  /** Removes `key`; returns the location it had, if any. */
  delete(key: string): number | undefined {
    const previous = this.#locations.get(key)
    if (previous === undefined) return undefined
    this.#locations.delete(key)
    this.#sorted?.delete(key)
    return previous
  }

  /** Keys inside the bounds in bytewise order (descending when `reverse`). */
  keys(lower: Bound | undefined, upper: Bound | undefined, reverse: boolean): Generator<string> {
    if (this.#sorted === undefined) this.#sorted = SortedKeys.fromSorted([...this.#locations.keys()].sort())
    return this.#sorted.range(lower, upper, reverse)
  }
}
