import type { DaxKV } from '../db.js'
import { Random } from './random.js'

/** One key's change: a value (bytes) or a deletion (undefined). */
export type Change = readonly [key: string, value: Buffer | undefined]

/**
 * One step of a crash workload. Each step is one atomic unit: a put, a
 * delete, or an atomic batch. `sync` steps use putSync/delSync/batchSync;
 * others are issued with the promise API, `group` of them in the same tick
 * so they are group-committed.
 */
export interface Step {
  readonly index: number
  /** 'compact' runs db.compact(): it changes no key, only where records live. */
  readonly kind: 'put' | 'del' | 'batch' | 'compact'
  readonly changes: readonly Change[]
  readonly sync: boolean
}

/** What a workload mixes; every field has a default in {@link makeWorkload}. */
export interface WorkloadShape {
  /** Distinct keys touched (small, so overwrites and deletes hit live keys). */
  readonly keys: number
  /** Largest value in bytes ("several pages"). */
  readonly valueBytesMax: number
  readonly deleteRatio: number
  readonly batchRatio: number
  /** Share of steps issued with the synchronous API. */
  readonly syncRatio: number
  /** Share of steps that run a full compaction. */
  readonly compactRatio: number
}

export const DEFAULT_SHAPE: WorkloadShape = {
  keys: 24,
  valueBytesMax: 3 * 4096 + 100,
  deleteRatio: 0.15,
  batchRatio: 0.2,
  syncRatio: 0.5,
  compactRatio: 0,
}

/**
 * Generates the steps of a workload from a seed. Values carry their step
 * index and key in their first bytes, so an explanation can say which write
 * a read value came from, and a value mixed from two writes never passes an
 * equality check.
 */
export function makeWorkload(seed: number, steps: number, shape: Partial<WorkloadShape> = {}, firstIndex = 0): Step[] {
  const s = { ...DEFAULT_SHAPE, ...shape }
  const random = new Random(seed ^ 0x5bd1e995)
  const keys = Array.from({ length: s.keys }, (_, i) => keyName(random, i))
  // Skip the steps before firstIndex so a workload can continue across rounds.
  const out: Step[] = []
  for (let index = 0; index < firstIndex + steps; index++) {
    const step = makeStep(random, keys, s, index)
    if (index >= firstIndex) out.push(step)
  }
  return out
}

function makeStep(random: Random, keys: readonly string[], s: WorkloadShape, index: number): Step {
  // Draw the compaction choice only when it is enabled, so workloads without
  // it stay identical to what they were for the same seed.
  if (s.compactRatio > 0 && random.chance(s.compactRatio)) return { index, kind: 'compact', changes: [], sync: true }
  const sync = random.chance(s.syncRatio)
  if (random.chance(s.batchRatio)) {
    const n = random.int(2, 6)
    const changes: Change[] = []
    for (let i = 0; i < n; i++) {
      const key = random.pick(keys)
      changes.push([key, random.chance(s.deleteRatio) ? undefined : makeValue(random, s, index, key)])
    }
    return { index, kind: 'batch', changes, sync }
  }
  const key = random.pick(keys)
  if (random.chance(s.deleteRatio)) return { index, kind: 'del', changes: [[key, undefined]], sync }
  return { index, kind: 'put', changes: [[key, makeValue(random, s, index, key)]], sync }
}

/** Keys of assorted lengths: short ones, and long ones that cross cache lines. */
function keyName(random: Random, i: number): string {
  const base = `k${i.toString().padStart(3, '0')}`
  return random.chance(0.3) ? base + '-'.repeat(random.int(50, 150)) + i : base
}

function makeValue(random: Random, s: WorkloadShape, index: number, key: string): Buffer {
  const roll = random.next()
  const bytes =
    roll < 0.05 ? 0 : roll < 0.6 ? random.int(1, 120) : roll < 0.85 ? random.int(120, 1500) : random.int(1500, s.valueBytesMax)
  const value = Buffer.alloc(bytes)
  const tag = Buffer.from(`#${index}:${key.slice(0, 8)}:`, 'latin1')
  tag.copy(value, 0, 0, Math.min(tag.length, bytes))
  for (let i = tag.length; i < bytes; i++) value[i] = (index * 31 + i * 7) & 0xff
  return value
}

/** "12 bytes from step 7" — for violation reports. */
export function describeValue(value: Buffer | undefined): string {
  if (value === undefined) return 'absent'
  const tag = /^#(\d+):/.exec(value.subarray(0, 16).toString('latin1'))
  return tag === null ? `${value.length} bytes (untagged)` : `${value.length} bytes written by step ${tag[1]}`
}

/** Runs a put, del or batch step with the synchronous API (a compact step is the caller's: it is async). */
export function runStepSync(db: DaxKV<Buffer>, step: Step): void {
  if (step.kind === 'batch') db.batchSync(toBatch(step))
  else if (step.kind === 'put') db.putSync(step.changes[0]![0], step.changes[0]![1]!)
  else if (step.kind === 'del') db.delSync(step.changes[0]![0])
  else throw new Error(`runStepSync cannot run a ${step.kind} step`)
}

/** Runs a put, del or batch step with the promise API. */
export function runStepAsync(db: DaxKV<Buffer>, step: Step): Promise<void> {
  if (step.kind === 'batch') return db.batch(toBatch(step))
  if (step.kind === 'put') return db.put(step.changes[0]![0], step.changes[0]![1]!)
  if (step.kind === 'del') return db.del(step.changes[0]![0])
  return Promise.reject(new Error(`runStepAsync cannot run a ${step.kind} step`))
}

function toBatch(step: Step): ({ type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string })[] {
  return step.changes.map(([key, value]) => (value === undefined ? { type: 'del', key } : { type: 'put', key, value }))
}
