import { isDeepStrictEqual } from 'node:util'
import { expect } from 'vitest'
import type { DaxKV } from '../../src/index.js'

/**
 * The known data set that the write phase leaves on the DAX mount and the
 * reopen phase checks after the guest reboots. Everything is derived from
 * the key number, so both phases compute the same expectation without
 * sharing anything but the daxfile.
 */
export const DATASET_KEYS = 1000

export type DatasetValue = { i: number; version: number; text: string; tags: string[] } | string | null

export function datasetKey(i: number): string {
  return `key-${String(i).padStart(5, '0')}`
}

// A small deterministic text generator (an LCG over the key number), so
// values differ in length and content without a random seed.
function text(i: number, version: number): string {
  let state = (i * 2654435761 + version * 40503) >>> 0
  const length = 20 + (i % 97)
  let out = ''
  for (let n = 0; n < length; n++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    out += String.fromCharCode(97 + (state >>> 27))
  }
  return out
}

function datasetValue(i: number, version: number): DatasetValue {
  return { i, version, text: text(i, version), tags: i % 3 === 0 ? ['three'] : [] }
}

const SPECIAL: ReadonlyArray<readonly [string, DatasetValue]> = [
  ['special/null', null],
  ['special/empty', ''],
  ['special/unicode-ключ-鍵', 'значение-値'],
]

/** Keys rewritten with version 2 after the first pass. */
const isOverwritten = (i: number): boolean => i % 10 === 0
/** Keys deleted at the end (some of them overwritten first). */
const isDeleted = (i: number): boolean => i % 7 === 3 || i % 50 === 0

/** The expected contents after {@link writeDataset}. */
export function expectedDataset(): Map<string, DatasetValue> {
  const expected = new Map<string, DatasetValue>()
  for (let i = 0; i < DATASET_KEYS; i++) {
    if (!isDeleted(i)) expected.set(datasetKey(i), datasetValue(i, isOverwritten(i) ? 2 : 1))
  }
  for (const [key, value] of SPECIAL) expected.set(key, value)
  return expected
}

/**
 * Writes the data set through every write path: puts issued in one tick
 * (group commit), batches, the synchronous calls, overwrites, and deletes
 * (single, batched and synchronous).
 */
export async function writeDataset(db: DaxKV<DatasetValue>): Promise<void> {
  const first = Array.from({ length: 400 }, (_, i) => db.put(datasetKey(i), datasetValue(i, 1)))
  await Promise.all(first)
  for (let start = 400; start < 800; start += 50) {
    await db.batch(Array.from({ length: 50 }, (_, n) => ({ type: 'put' as const, key: datasetKey(start + n), value: datasetValue(start + n, 1) })))
  }
  for (let i = 800; i < DATASET_KEYS; i++) db.putSync(datasetKey(i), datasetValue(i, 1))
  for (let i = 0; i < DATASET_KEYS; i++) if (isOverwritten(i)) await db.put(datasetKey(i), datasetValue(i, 2))
  for (const [key, value] of SPECIAL) await db.put(key, value)

  const deleted = Array.from({ length: DATASET_KEYS }, (_, i) => i).filter(isDeleted)
  const third = Math.floor(deleted.length / 3)
  await Promise.all(deleted.slice(0, third).map((i) => db.del(datasetKey(i))))
  await db.batch(deleted.slice(third, 2 * third).map((i) => ({ type: 'del' as const, key: datasetKey(i) })))
  for (const i of deleted.slice(2 * third)) db.delSync(datasetKey(i))
}

function compareBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** Checks that `db` holds exactly the data set: every value, the count, and the range order. */
export function checkDataset(db: DaxKV<DatasetValue>): void {
  const expected = expectedDataset()
  expect(db.count).toBe(expected.size)
  const wrong = [...expected].filter(([key, value]) => !isDeepStrictEqual(db.get(key), value)).map(([key]) => key)
  expect(wrong, 'keys whose value is not the expected one').toEqual([])
  for (let i = 0; i < DATASET_KEYS; i++) {
    if (isDeleted(i)) expect(db.has(datasetKey(i)), `${datasetKey(i)} was deleted`).toBe(false)
  }
  const sorted = [...expected].sort(([a], [b]) => compareBytewise(a, b))
  expect([...db.range()]).toEqual(sorted)
  expect(db.verify().problems).toEqual([])
}
