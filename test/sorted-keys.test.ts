/**
 * The in-memory ordered index (SortedKeys) and the key index built on it,
 * checked against a sorted array. Keys are byte strings (one char per byte),
 * so the alphabet includes 0x00, 0x7f, 0x80 and 0xff.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { KeyIndex, type KeyReader } from '../src/engine/key-index.js'
import { hashBytes, hashKey } from '../src/format/key-hash.js'
import { SortedKeys, type Bound } from '../src/engine/sorted-keys.js'
import { below, checkProperty, random, seedNote, SEED } from './helpers.js'

const ALPHABET = ['\x00', '\x01', 'a', 'b', 'z', '\x7f', '\x80', '\xc3', '\xff']

const shortKey = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 4 }).map((chars) => chars.join(''))

/** The sorted-array model: a sorted list of distinct byte strings. */
class Model {
  keys: string[] = []

  has(key: string): boolean {
    const i = this.#bisect(key)
    return this.keys[i] === key
  }

  insert(key: string): void {
    this.keys.splice(this.#bisect(key), 0, key)
  }

  delete(key: string): void {
    this.keys.splice(this.#bisect(key), 1)
  }

  range(lower: Bound | undefined, upper: Bound | undefined, reverse: boolean): string[] {
    const inside = this.keys.filter((k) => inBounds(k, lower, upper))
    return reverse ? inside.reverse() : inside
  }

  #bisect(key: string): number {
    let lo = 0
    let hi = this.keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.keys[mid]! < key) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

function inBounds(key: string, lower: Bound | undefined, upper: Bound | undefined): boolean {
  if (lower !== undefined && (key < lower.key || (key === lower.key && !lower.inclusive))) return false
  if (upper !== undefined && (key > upper.key || (key === upper.key && !upper.inclusive))) return false
  return true
}

/** A key of the big key space: a prefix, then a number spread by multiplication so inserts land all over. */
function bigKey(prefix: string, n: number): string {
  return `${prefix}${((n * 2654435761) >>> 0).toString(16).padStart(8, '0')}`
}

const boundArb: fc.Arbitrary<Bound | undefined> = fc.option(
  fc.record({ key: fc.oneof(shortKey, fc.integer({ min: 0, max: 4000 }).map((n) => bigKey('k', n))), inclusive: fc.boolean() }),
  { nil: undefined },
)

type Op =
  | { readonly t: 'toggle'; readonly key: string }
  | { readonly t: 'bulkInsert'; readonly prefix: string; readonly from: number; readonly count: number }
  | { readonly t: 'bulkDelete'; readonly seed: number; readonly fraction: number }
  | { readonly t: 'deleteRun'; readonly at: number; readonly count: number }
  | { readonly t: 'range'; readonly lower: Bound | undefined; readonly upper: Bound | undefined; readonly reverse: boolean }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: shortKey.map((key) => ({ t: 'toggle' as const, key })) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('bulkInsert' as const),
      prefix: fc.constantFrom('k', '\x80', 'a'),
      from: fc.integer({ min: 0, max: 3000 }),
      count: fc.integer({ min: 200, max: 1800 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('bulkDelete' as const), seed: fc.integer(), fraction: fc.double({ min: 0.1, max: 1, noNaN: true }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('deleteRun' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), count: fc.integer({ min: 1, max: 1500 }) }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('range' as const), lower: boundArb, upper: boundArb, reverse: fc.boolean() }) },
)

/** The operations both index shapes support, so one driver checks both. */
interface Subject {
  readonly size: number
  insert(key: string): void
  delete(key: string): void
  range(lower: Bound | undefined, upper: Bound | undefined, reverse: boolean): Iterable<string>
}

function sortedKeysSubject(): Subject {
  const s = new SortedKeys()
  return {
    get size() {
      return s.size
    },
    insert: (key) => s.insert(key),
    delete: (key) => s.delete(key),
    range: (lower, upper, reverse) => s.range(lower, upper, reverse),
  }
}

/**
 * A stand-in for the log: record i holds key records[i]. The index keeps
 * record locations and reads keys back through this reader.
 */
class RecordLog implements KeyReader {
  readonly records: string[] = []

  append(key: string): number {
    this.records.push(key)
    return this.records.length - 1
  }

  keyMatches(location: number, key: string): boolean {
    return this.records[location] === key
  }

  sameKey(a: number, b: number): boolean {
    return this.records[a] === this.records[b]
  }

  keyHashAt(location: number): number {
    return hashKey(this.records[location]!)
  }

  keyAt(location: number): string {
    return this.records[location]!
  }
}

/** KeyIndex builds its ordered view lazily, on the first scan: `eager` forces that before any insert. */
function keyIndexSubject(eager: boolean): Subject {
  const log = new RecordLog()
  const index = new KeyIndex(log)
  if (eager) [...index.keys(undefined, undefined, false)]
  return {
    get size() {
      return index.size
    },
    insert: (key) => expect(index.set(log.append(key))).toBeUndefined(),
    delete: (key) => expect(index.delete(log.append(key))).toBeDefined(),
    range: (lower, upper, reverse) => index.keys(lower, upper, reverse),
  }
}

function apply(subject: Subject, model: Model, op: Op): void {
  switch (op.t) {
    case 'toggle':
      if (model.has(op.key)) {
        subject.delete(op.key)
        model.delete(op.key)
      } else {
        subject.insert(op.key)
        model.insert(op.key)
      }
      return
    case 'bulkInsert':
      for (let n = op.from; n < op.from + op.count; n++) {
        const key = bigKey(op.prefix, n)
        if (model.has(key)) continue
        subject.insert(key)
        model.insert(key)
      }
      return
    case 'bulkDelete': {
      const next = random(op.seed)
      for (const key of [...model.keys]) {
        if (next() >= op.fraction) continue
        subject.delete(key)
        model.delete(key)
      }
      return
    }
    case 'deleteRun': {
      // A contiguous run of keys: empties whole blocks, which must then be removed.
      const start = Math.floor(op.at * model.keys.length)
      for (const key of model.keys.slice(start, start + op.count)) {
        subject.delete(key)
        model.delete(key)
      }
      return
    }
    case 'range':
      expect([...subject.range(op.lower, op.upper, op.reverse)]).toEqual(model.range(op.lower, op.upper, op.reverse))
      return
  }
}

function expectSame(subject: Subject, model: Model, context: string): void {
  expect(subject.size, context).toBe(model.keys.length)
  expect([...subject.range(undefined, undefined, false)], context).toEqual(model.keys)
  expect([...subject.range(undefined, undefined, true)], context).toEqual([...model.keys].reverse())
}

describe('SortedKeys and KeyIndex against a sorted array', () => {
  const subjects: [string, () => Subject][] = [
    ['SortedKeys', sortedKeysSubject],
    ['KeyIndex (ordered view built lazily)', () => keyIndexSubject(false)],
    ['KeyIndex (ordered view built first)', () => keyIndexSubject(true)],
  ]

  for (const [name, make] of subjects) {
    it(`${name} holds exactly the model's keys in bytewise order after any inserts and deletes, and every range agrees`, () => {
      checkProperty(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
          const subject = make()
          const model = new Model()
          ops.forEach((op, step) => {
            apply(subject, model, op)
            if (op.t !== 'range' && op.t !== 'toggle') expectSame(subject, model, `step ${step} ${op.t}`)
          })
          expectSame(subject, model, 'end')
        }),
        name === 'SortedKeys' ? 60 : 25,
      )
    })
  }

  it('splits blocks past 1024 keys and removes emptied blocks, keeping order through 5000 random inserts and deletes', () => {
    const next = random(SEED)
    const subject = sortedKeysSubject()
    const model = new Model()
    const pool = Array.from({ length: 6000 }, (_, n) => bigKey(n % 3 === 0 ? '\xff' : 'k', n))
    for (const key of pool.slice(0, 5000)) {
      subject.insert(key)
      model.insert(key)
    }
    expectSame(subject, model, seedNote('after inserts'))
    for (let round = 0; round < 20; round++) {
      // Bounds drawn from the pool: both present and absent keys.
      const a = pool[below(next, pool.length)]!
      const b = pool[below(next, pool.length)]!
      const lower = { key: a < b ? a : b, inclusive: next() < 0.5 }
      const upper = { key: a < b ? b : a, inclusive: next() < 0.5 }
      for (const reverse of [false, true]) {
        expect([...subject.range(lower, upper, reverse)], seedNote(`round ${round}`)).toEqual(model.range(lower, upper, reverse))
        expect([...subject.range(lower, undefined, reverse)], seedNote(`round ${round}`)).toEqual(model.range(lower, undefined, reverse))
        expect([...subject.range(undefined, upper, reverse)], seedNote(`round ${round}`)).toEqual(model.range(undefined, upper, reverse))
      }
    }
    // Delete everything in random order: every block empties and goes.
    const order = [...model.keys].sort(() => next() - 0.5)
    order.forEach((key, i) => {
      subject.delete(key)
      model.delete(key)
      if (i % 997 === 0) expectSame(subject, model, seedNote(`after ${i + 1} deletes`))
    })
    expectSame(subject, model, seedNote('empty'))
    expect([...subject.range({ key: 'k', inclusive: true }, undefined, false)]).toEqual([])
    subject.insert('again')
    model.insert('again')
    expectSame(subject, model, 'reused after emptying')
  })

  it('builds from sorted keys (fromSorted) into the same order, and keeps it through later changes', () => {
    const keys = Array.from({ length: 2600 }, (_, n) => bigKey('p', n)).sort()
    const sorted = SortedKeys.fromSorted(keys)
    expect(sorted.size).toBe(keys.length)
    expect([...sorted.range(undefined, undefined, false)]).toEqual(keys)
    const model = new Model()
    model.keys = [...keys]
    const next = random(SEED + 1)
    for (let i = 0; i < 3000; i++) {
      const key = bigKey(next() < 0.5 ? 'p' : 'q', below(next, 4000))
      if (model.has(key)) {
        sorted.delete(key)
        model.delete(key)
      } else {
        sorted.insert(key)
        model.insert(key)
      }
    }
    expect([...sorted.range(undefined, undefined, false)], seedNote()).toEqual(model.keys)
    expect([...sorted.range(undefined, undefined, true)], seedNote()).toEqual([...model.keys].reverse())
  })

  it('returns nothing from an empty set, in both directions and with bounds', () => {
    const sorted = new SortedKeys()
    expect([...sorted.range(undefined, undefined, false)]).toEqual([])
    expect([...sorted.range(undefined, undefined, true)]).toEqual([])
    expect([...sorted.range({ key: 'a', inclusive: true }, { key: 'z', inclusive: true }, true)]).toEqual([])
    expect([...SortedKeys.fromSorted([]).range(undefined, undefined, true)]).toEqual([])
  })

  it('KeyIndex.set and delete report the location they replace, and size counts keys once', () => {
    const log = new RecordLog()
    const index = new KeyIndex(log)
    const a1 = log.append('a')
    expect(index.set(a1)).toBeUndefined()
    const a2 = log.append('a')
    expect(index.set(a2)).toBe(a1)
    expect(index.size).toBe(1)
    expect(index.get('a')).toBe(a2)
    expect(index.getByRecord(log.append('a'))).toBe(a2)
    expect(index.delete(log.append('b'))).toBeUndefined()
    expect([...index.keys(undefined, undefined, false)]).toEqual(['a'])
    const a3 = log.append('a')
    expect(index.set(a3)).toBe(a2)
    expect([...index.keys(undefined, undefined, false)]).toEqual(['a'])
    expect(index.delete(log.append('a'))).toBe(a3)
    expect(index.delete(log.append('a'))).toBeUndefined()
    expect(index.size).toBe(0)
    expect(index.get('a')).toBeUndefined()
    expect(index.getByRecord(log.append('a'))).toBeUndefined()
    expect([...index.keys(undefined, undefined, false)]).toEqual([])
  })
})

describe('KeyIndex hash table against a Map', () => {
  /**
   * Sets, overwrites and deletes thousands of keys, so the table resizes
   * several times and deletions shift long probe runs (wrapping around the
   * end of the table); after every operation the touched key, and every
   * 200 operations every key, must resolve to its latest location.
   */
  for (const [name, seedOffset, universe] of [
    ['a few hundred keys (the smallest table)', 10, 400],
    ['several thousand keys (resizes)', 11, 6000],
  ] as const) {
    it(`get, getByRecord, set and delete agree with a Map over ${name}`, () => {
      const next = random(SEED + seedOffset)
      const log = new RecordLog()
      const index = new KeyIndex(log)
      const model = new Map<string, number>()
      const keys = Array.from({ length: universe }, (_, n) => bigKey(n % 5 === 0 ? '\xff' : '', n).slice(0, 3 + (n % 7)))
      const checkAll = (context: string): void => {
        expect(index.size, context).toBe(model.size)
        for (const key of keys) expect(index.get(key), `${context}: get(${JSON.stringify(key)})`).toBe(model.get(key))
      }
      for (let op = 0; op < 12_000; op++) {
        const key = keys[below(next, keys.length)]!
        const context = seedNote(`op ${op}`)
        // Grow while filling, then shrink, so deletes dominate in the second half.
        if (next() < (op < 6000 ? 0.75 : 0.3)) {
          const location = log.append(key)
          expect(index.set(location), context).toBe(model.get(key))
          model.set(key, location)
        } else {
          expect(index.delete(log.append(key)), context).toBe(model.get(key))
          model.delete(key)
        }
        expect(index.get(key), context).toBe(model.get(key))
        expect(index.getByRecord(log.append(key)), context).toBe(model.get(key))
        if (op % 200 === 199) checkAll(context)
      }
      checkAll(seedNote('end'))
      expect([...index.keys(undefined, undefined, false)]).toEqual([...model.keys()].sort())
    })
  }

  it('deleting from probe runs that wrap around the end of the table keeps every other key reachable', () => {
    // Keys whose home slot in the smallest table (1024 slots) is one of its last or first few.
    const crowded: string[] = []
    for (let n = 0; crowded.length < 60; n++) {
      const home = hashKey(`w${n}`) & 1023
      if (home >= 1016 || home <= 3) crowded.push(`w${n}`)
    }
    const next = random(SEED + 13)
    const log = new RecordLog()
    const index = new KeyIndex(log)
    const model = new Map<string, number>()
    for (let op = 0; op < 4000; op++) {
      const key = crowded[below(next, crowded.length)]!
      if (next() < 0.55) {
        const location = log.append(key)
        index.set(location)
        model.set(key, location)
      } else {
        index.delete(log.append(key))
        model.delete(key)
      }
      for (const k of crowded) expect(index.get(k), seedNote(`op ${op}: get(${k})`)).toBe(model.get(k))
    }
    expect(index.size).toBe(model.size)
  })

  it('hashKey of a byte string equals hashBytes of its bytes', () => {
    const next = random(SEED + 12)
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.from(Array.from({ length: below(next, 40) }, () => below(next, 256)))
      const padded = Buffer.concat([Buffer.from([1, 2, 3]), bytes, Buffer.from([4])])
      expect(hashBytes(padded, 3, 3 + bytes.length), seedNote(bytes.toString('hex'))).toBe(hashKey(bytes.toString('latin1')))
    }
  })
})

describe('SortedKeys scans under mutation', () => {
  /**
   * Walks a range while inserting and deleting around the cursor, and checks
   * the documented promise: keys come out strictly in order (so none twice),
   * each key produced is present and inside the bounds when produced, and
   * every key that was present at the start, inside the bounds and never
   * deleted during the walk is produced.
   */
  function walk(seed: number, reverse: boolean, bounded: boolean): void {
    const next = random(seed)
    const sorted = new SortedKeys()
    const present = new Set<string>()
    const universe = Array.from({ length: 4000 }, (_, n) => bigKey('k', n))
    for (const key of universe) {
      if (next() < 0.6) {
        sorted.insert(key)
        present.add(key)
      }
    }
    const sortedUniverse = [...universe].sort()
    const lower: Bound | undefined = bounded ? { key: sortedUniverse[below(next, 1000)]!, inclusive: next() < 0.5 } : undefined
    const upper: Bound | undefined = bounded ? { key: sortedUniverse[3000 + below(next, 1000)]!, inclusive: next() < 0.5 } : undefined
    const atStart = [...present].filter((k) => inBounds(k, lower, upper))
    const deletedDuringWalk = new Set<string>()
    const produced: string[] = []
    for (const key of sorted.range(lower, upper, reverse)) {
      const context = seedNote(`reverse ${reverse} bounded ${bounded} after ${produced.length} keys`)
      expect(present.has(key), `${context}: produced a key that is not present`).toBe(true)
      expect(inBounds(key, lower, upper), `${context}: produced a key outside the bounds`).toBe(true)
      const previous = produced[produced.length - 1]
      if (previous !== undefined) expect(reverse ? key < previous : key > previous, `${context}: out of order or repeated`).toBe(true)
      produced.push(key)
      // Mutate: sometimes nothing, sometimes the key just produced, keys nearby, or a burst that splits or empties blocks.
      const action = next()
      if (action < 0.3) continue
      const burst = action < 0.33 ? 300 : 1 + below(next, 4)
      for (let m = 0; m < burst; m++) {
        const target = m === 0 && next() < 0.3 ? key : universe[below(next, universe.length)]!
        if (present.has(target)) {
          sorted.delete(target)
          present.delete(target)
          deletedDuringWalk.add(target)
        } else {
          sorted.insert(target)
          present.add(target)
        }
      }
    }
    const producedSet = new Set(produced)
    const skipped = atStart.filter((k) => !deletedDuringWalk.has(k) && !producedSet.has(k))
    expect(skipped, seedNote(`reverse ${reverse} bounded ${bounded}: keys that stayed but were skipped`)).toEqual([])
  }

  for (const reverse of [false, true]) {
    for (const bounded of [false, true]) {
      it(`a ${reverse ? 'descending' : 'ascending'}${bounded ? ' bounded' : ''} scan never repeats a key and never skips one that stayed`, () => {
        for (let run = 0; run < 6; run++) walk(SEED * 31 + run, reverse, bounded)
      })
    }
  }

  it('a scan started before a change sees the state at its first step', () => {
    const sorted = SortedKeys.fromSorted(['a', 'b', 'c'])
    const scan = sorted.range(undefined, undefined, false)
    sorted.delete('a')
    sorted.insert('aa')
    expect([...scan]).toEqual(['aa', 'b', 'c'])
  })
})
