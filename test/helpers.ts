/**
 * Shared by the layer tests: the run's seed, a seeded generator, fast-check
 * wrappers that name the seed on failure, and temporary directories.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { afterAll, expect } from 'vitest'
import { Random } from '../src/crash/random.js'
import { DaxKVError } from '../src/index.js'
import type { DaxKV } from '../src/index.js'

/** The seed of this run: `DAXKV_TEST_SEED` replays a failure exactly. */
export const SEED: number = (() => {
  const fromEnv = process.env.DAXKV_TEST_SEED
  if (fromEnv !== undefined && fromEnv !== '') {
    const seed = Number(fromEnv)
    if (!Number.isSafeInteger(seed)) throw new Error(`DAXKV_TEST_SEED must be an integer, got ${JSON.stringify(fromEnv)}`)
    return seed
  }
  return (Math.random() * 2 ** 31) | 0
})()

/** Text to put in assertion messages so a failure names its seed. */
export function seedNote(extra = ''): string {
  return `seed ${SEED} (replay: DAXKV_TEST_SEED=${SEED})${extra === '' ? '' : `, ${extra}`}`
}

/** A seeded generator of floats in [0, 1): the crash campaigns' PRNG, so one seed means one sequence everywhere. */
export function random(seed: number): () => number {
  const generator = new Random(seed)
  return () => generator.next()
}

/** A whole number in [0, n) from `next`. */
export function below(next: () => number, n: number): number {
  return Math.floor(next() * n)
}

export function randomBytes(next: () => number, length: number): Buffer {
  const buf = Buffer.alloc(length)
  for (let i = 0; i < length; i++) buf[i] = below(next, 256)
  return buf
}

function withSeed(error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error)
  const wrapped = new Error(`${seedNote()}\n${message}`, { cause: error })
  return wrapped
}

/** fc.assert with the run's seed, rethrowing with the seed in the message. */
export function checkProperty<Ts>(property: fc.IProperty<Ts>, numRuns: number): void {
  try {
    fc.assert(property, { seed: SEED, numRuns })
  } catch (error) {
    throw withSeed(error)
  }
}

/**
 * The async form of {@link checkProperty}. `timeLimitMs` bounds the whole
 * check, shrinking included: a failure found before it is still reported,
 * with the counterexample shrunk as far as time allowed.
 */
export async function checkAsyncProperty<Ts>(property: fc.IAsyncProperty<Ts>, numRuns: number, timeLimitMs?: number): Promise<void> {
  try {
    await fc.assert(property, { seed: SEED, numRuns, ...(timeLimitMs === undefined ? {} : { interruptAfterTimeLimit: timeLimitMs }) })
  } catch (error) {
    throw withSeed(error)
  }
}

const made: string[] = []
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

/** A fresh directory under `parent` (default: os.tmpdir()), removed after the file's tests. */
export function tempDir(parent: string = os.tmpdir()): string {
  const dir = fs.mkdtempSync(path.join(parent, 'daxkv-test-'))
  made.push(dir)
  return dir
}

/** Directories to run real-file tests in: ext4 (os.tmpdir()) and tmpfs (/dev/shm), when present. */
export const FILE_SYSTEMS: readonly { readonly name: string; readonly parent: string }[] = [
  { name: `os.tmpdir() (${os.tmpdir()})`, parent: os.tmpdir() },
  ...(fs.existsSync('/dev/shm') ? [{ name: 'tmpfs (/dev/shm)', parent: '/dev/shm' }] : []),
]

/** All entries of `db` in key order. */
export function entries<V>(db: DaxKV<V>): [string, V][] {
  return [...db.range()].map(([key, value]) => [key as string, value])
}

/** Runs `fn` and returns what it threw (failing the test if it did not throw). */
export function caught(fn: () => unknown, context = ''): unknown {
  let result: unknown
  try {
    result = fn()
  } catch (error) {
    return error
  }
  return expect.unreachable(`expected the call to throw${context === '' ? '' : ` (${context})`}, it returned ${String(result)}`)
}

/** Awaits `promise` and returns its rejection (failing the test if it resolved). */
export async function rejection(promise: Promise<unknown>, context = ''): Promise<unknown> {
  let result: unknown
  try {
    result = await promise
  } catch (error) {
    return error
  }
  return expect.unreachable(`expected the promise to reject${context === '' ? '' : ` (${context})`}, it resolved to ${String(result)}`)
}

/** Asserts that `error` is a DaxKVError with `code`. */
export function expectCode(error: unknown, code: string, context = ''): void {
  expect(error, context).toBeInstanceOf(DaxKVError)
  expect((error as DaxKVError).code, `${context} ${String(error)}`).toBe(code)
}

/** Compares byte strings or buffers bytewise, for sorting models. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

/**
 * db.compact(), failing fast instead of hanging when it does not converge:
 * one call should clean each segment about once, so cleaning more than
 * `2 * segments + 4` segments in one call means it is going round in circles.
 */
export async function compactBounded(db: DaxKV<unknown>): Promise<{ segmentsCleaned: number; bytesCopied: number }> {
  const segments = db.stats().segments
  const limit = 2 * segments + 4
  const start = db.stats().compactions
  let done = false
  const compaction = db.compact().finally(() => {
    done = true
  })
  while (!done) {
    await new Promise<void>((resolve) => setTimeout(resolve, 2))
    const cleaned = db.stats().compactions - start
    if (!done && cleaned > limit) {
      throw new Error(`compact() did not finish: it cleaned ${cleaned} segments so far, in a store of ${segments} segments`)
    }
  }
  return compaction
}
