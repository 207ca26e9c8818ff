import { assert } from '../errors.js'

/** Keys per block after a split; a block splits when it reaches twice this. */
const BLOCK_LOAD = 512

/** A bound of a range: the key and whether the key itself is inside the range. */
export interface Bound {
  readonly key: string
  readonly inclusive: boolean
}

/**
 * The ordered set of keys, as a list of sorted blocks (the layout of Python's
 * sortedcontainers): inserting or deleting moves at most one block of about
 * BLOCK_LOAD..2*BLOCK_LOAD strings, and seeking is two binary searches. Keys
 * are byte strings (one char per byte), so `<` on them is bytewise order.
 */
export class SortedKeys {
  #blocks: string[][] = []
  /** The last key of each block. */
  #maxes: string[] = []
  #size = 0
  /** Bumped on every insert and delete, so a cursor knows to re-seek. */
  #version = 0

  /** Builds from keys already sorted and distinct. */
  static fromSorted(keys: readonly string[]): SortedKeys {
    const sorted = new SortedKeys()
    for (let i = 0; i < keys.length; i += BLOCK_LOAD) {
      const block = keys.slice(i, i + BLOCK_LOAD)
      sorted.#blocks.push(block)
      sorted.#maxes.push(block[block.length - 1]!)
    }
    sorted.#size = keys.length
    return sorted
  }

  get size(): number {
    return this.#size
  }

  /** Inserts a key that is not present. */
  insert(key: string): void {
    this.#version++
    this.#size++
    if (this.#blocks.length === 0) {
      this.#blocks.push([key])
      this.#maxes.push(key)
      return
    }
    let b = bisectLeft(this.#maxes, key)
    if (b === this.#blocks.length) {
      b--
      this.#blocks[b]!.push(key)
      this.#maxes[b] = key
    } else {
      const block = this.#blocks[b]!
      const i = bisectLeft(block, key)
      assert(block[i] !== key, 'insert of a key already present')
      block.splice(i, 0, key)
    }
    const block = this.#blocks[b]!
    if (block.length >= 2 * BLOCK_LOAD) {
      const tail = block.splice(BLOCK_LOAD)
      this.#blocks.splice(b + 1, 0, tail)
      this.#maxes.splice(b + 1, 0, tail[tail.length - 1]!)
      this.#maxes[b] = block[block.length - 1]!
    }
  }

  /** Deletes a key that is present. */
  delete(key: string): void {
    const b = bisectLeft(this.#maxes, key)
    const block = this.#blocks[b]
    assert(block !== undefined, 'delete of a key not present')
    const i = bisectLeft(block, key)
    assert(block[i] === key, 'delete of a key not present')
    this.#version++
    this.#size--
    block.splice(i, 1)
    if (block.length === 0) {
      this.#blocks.splice(b, 1)
      this.#maxes.splice(b, 1)
    } else if (i === block.length) {
      this.#maxes[b] = block[i - 1]!
    }
  }

  /**
   * Keys between the bounds, ascending or descending. The walk tolerates
   * inserts and deletes between steps: after any change it re-seeks past the
   * last key it returned, so it never repeats or skips a key that stayed.
   */
  *range(lower: Bound | undefined, upper: Bound | undefined, reverse: boolean): Generator<string> {
    let last: string | undefined
    let version = -1
    let b = 0
    let i = 0
    for (;;) {
      if (version !== this.#version) {
        version = this.#version
        ;[b, i] = reverse
          ? this.#seekBefore(last === undefined ? upper : { key: last, inclusive: false })
          : this.#seekAfter(last === undefined ? lower : { key: last, inclusive: false })
      }
      const key = this.#blocks[b]?.[i]
      if (key === undefined) return
      if (reverse ? lower !== undefined && (key < lower.key || (key === lower.key && !lower.inclusive)) : upper !== undefined && (key > upper.key || (key === upper.key && !upper.inclusive))) return
      last = key
      yield key
      if (version !== this.#version) continue
      if (reverse) {
        if (--i < 0) {
          b--
          i = (this.#blocks[b]?.length ?? 0) - 1
        }
      } else if (++i >= this.#blocks[b]!.length) {
        b++
        i = 0
      }
    }
  }

  /** Position of the first key inside `lower` (block, index); past the end when none. */
  #seekAfter(lower: Bound | undefined): [number, number] {
    if (lower === undefined) return [0, 0]
    const search = lower.inclusive ? bisectLeft : bisectRight
    const b = search(this.#maxes, lower.key)
    if (b === this.#blocks.length) return [b, 0]
    return [b, search(this.#blocks[b]!, lower.key)]
  }

  /** Position of the last key inside `upper`; (-1, -1) when none. */
  #seekBefore(upper: Bound | undefined): [number, number] {
    if (upper === undefined) {
      const b = this.#blocks.length - 1
      return [b, (this.#blocks[b]?.length ?? 0) - 1]
    }
    const [b, i] = this.#seekAfter({ key: upper.key, inclusive: !upper.inclusive })
    if (i > 0) return [b, i - 1]
    return [b - 1, (this.#blocks[b - 1]?.length ?? 0) - 1]
  }
}

/** First index whose element is >= key. */
function bisectLeft(a: readonly string[], key: string): number {
  let lo = 0
  let hi = a.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (a[mid]! < key) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** First index whose element is > key. */
function bisectRight(a: readonly string[], key: string): number {
  let lo = 0
  let hi = a.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (a[mid]! <= key) lo = mid + 1
    else hi = mid
  }
  return lo
}
