/**
 * The undamaged stores the corrupt-file campaign damages copies of, one per
 * shape a user's file can have: small; many segments; cleaned (compacted,
 * many deletes); grown from its smallest size; killed mid-write; copied
 * with `cp`-like reads while another process writes it. Each keeps, beside
 * its bytes, its index checkpoint, an older copy of itself where it has
 * one, and every value each key ever had.
 */
import fs from 'node:fs'
import path from 'node:path'
import { open } from '../../open.js'
import type { ModeRequest } from '../../platform/daxfile.js'
import { KILL_SHAPE, KILL_STEPS_MAX } from '../kill-settings.js'
import { runKillChild } from '../kill-runner.js'
import { Random } from '../random.js'
import { makeWorkload, runStepAsync, runStepSync, type Step, type WorkloadShape } from '../workload.js'
import { digestOf } from './protocol.js'

export type ShapeName = 'small' | 'multi-segment' | 'compacted' | 'grown' | 'killed' | 'copied'
export const SHAPES: readonly ShapeName[] = ['small', 'multi-segment', 'compacted', 'grown', 'killed', 'copied']

export interface BaseStore {
  readonly shape: ShapeName
  /** The daxfile's bytes, as the store left them. */
  readonly image: Buffer
  /** Its index checkpoint file, if the store left one. */
  readonly index: Buffer | undefined
  /** The same daxfile closed earlier in its life (for older-segment damage), if kept. */
  readonly older: Buffer | undefined
  /** Every value each key was ever given (digests), and undefined for keys ever deleted. */
  readonly histories: ReadonlyMap<string, ReadonlySet<string | undefined>>
  /** The acknowledged state, key to value digest, where the campaign knows it exactly (cleanly closed stores). */
  readonly acknowledged: ReadonlyMap<string, string> | undefined
}

interface CleanPlan {
  readonly options: Parameters<typeof open>[1]
  readonly steps: number
  readonly shape: Partial<WorkloadShape>
  /** Close and copy the file after this many steps, to keep an older copy of it. */
  readonly olderAfter: number | undefined
  readonly compactAtEnd: boolean
}

const SEGMENT = 64 * 1024
const PLANS: Record<'small' | 'multi-segment' | 'compacted' | 'grown', CleanPlan> = {
  small: { options: { size: 2 * SEGMENT }, steps: 40, shape: { keys: 12, valueBytesMax: 400 }, olderAfter: 20, compactAtEnd: false },
  'multi-segment': { options: { size: 16 * SEGMENT }, steps: 420, shape: { keys: 80, valueBytesMax: 3000 }, olderAfter: 250, compactAtEnd: false },
  compacted: {
    options: { size: 8 * SEGMENT },
    steps: 500,
    shape: { keys: 20, valueBytesMax: 2000, deleteRatio: 0.35, compactRatio: 0.03 },
    olderAfter: 300,
    compactAtEnd: true,
  },
  grown: { options: { size: 2 * SEGMENT, maxSize: 16 * SEGMENT }, steps: 300, shape: { keys: 40, valueBytesMax: 1500 }, olderAfter: 120, compactAtEnd: false },
}

/** Builds the base store of `shape` in `dir` from `seed`. */
export async function buildBase(shape: ShapeName, dir: string, seed: number, mode: ModeRequest): Promise<BaseStore> {
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, `${shape}.dax`)
  if (shape === 'killed' || shape === 'copied') return buildFromChild(shape, file, seed, mode)
  return buildClean(shape, PLANS[shape], file, seed, mode)
}

async function buildClean(shape: ShapeName, plan: CleanPlan, file: string, seed: number, mode: ModeRequest): Promise<BaseStore> {
  const steps = makeWorkload(seed, plan.steps, plan.shape)
  const options = { ...plan.options, segmentSize: SEGMENT, mode, valueEncoding: 'binary', cacheSize: 0 } as const
  const state = new Map<string, string>()
  let older: Buffer | undefined
  let db = await open<Buffer>(file, options)
  for (const step of steps) {
    if (step.index === plan.olderAfter) {
      await db.close()
      older = fs.readFileSync(file)
      db = await open<Buffer>(file, { ...options, create: false })
    }
    if (step.kind === 'compact') await db.compact()
    else if (step.sync) runStepSync(db, step)
    else await runStepAsync(db, step)
    for (const [key, value] of step.changes) {
      if (value === undefined) state.delete(key)
      else state.set(key, digestOf(value))
    }
  }
  if (plan.compactAtEnd) await db.compact()
  await db.close()
  return {
    shape,
    image: fs.readFileSync(file),
    index: readIfThere(`${file}.index`),
    older,
    histories: historiesOf(steps),
    acknowledged: latin1Keys(state),
  }
}

/** How long the writer runs before it is killed, or before the copy starts. */
const CHILD_DELAY_MS = { min: 150, max: 600 }
const COPY_CHUNK_BYTES = 32 * 1024

/**
 * A store written by the process-kill campaign's child: killed after a
 * random delay ('killed'), or copied chunk by chunk, with pauses that let
 * the writer go on, while it runs ('copied', what `cp` of a live file
 * gives). Which writes were acknowledged is the kill campaign's business;
 * here what the file opens to, undamaged, is the reference.
 */
async function buildFromChild(shape: 'killed' | 'copied', file: string, seed: number, mode: ModeRequest): Promise<BaseStore> {
  const random = new Random(seed ^ 0x2c1b3c6d)
  const delayMs = random.int(CHILD_DELAY_MS.min, CHILD_DELAY_MS.max)
  const ackFile = `${file}.acks`
  const copy = `${file}.copy`
  let copied: { image: Buffer; index: Buffer | undefined } | undefined
  const run = runKillChild({ file, ackFile, seed, firstIndex: 0, mode, delayMs: shape === 'copied' ? delayMs + 2000 : delayMs, fileBytes: 16 * SEGMENT })
  if (shape === 'copied') {
    // The child needs some time to start; copy once the file has batches in it.
    await sleep(delayMs + 300)
    copied = { image: await copyWhileWritten(file, copy), index: readIfThere(`${file}.index`) }
  }
  const ended = await run
  if (ended.ended === 'failed') throw new Error(`the ${shape} store's writer failed: ${ended.stderr}`)
  const image = copied?.image ?? fs.readFileSync(file)
  const index = copied === undefined ? readIfThere(`${file}.index`) : copied.index
  return {
    shape,
    image,
    index,
    older: undefined,
    histories: historiesOf(makeWorkload(seed, KILL_STEPS_MAX, KILL_SHAPE)),
    acknowledged: undefined,
  }
}

async function copyWhileWritten(file: string, copy: string): Promise<Buffer> {
  for (let waited = 0; !(fs.existsSync(file) && fs.statSync(file).size > 0); waited += 10) {
    if (waited > 30_000) throw new Error(`the copied store's writer never created ${file}`)
    await sleep(10)
  }
  const fd = fs.openSync(file, 'r')
  try {
    const size = fs.fstatSync(fd).size
    const out = Buffer.alloc(size)
    for (let at = 0; at < size; at += COPY_CHUNK_BYTES) {
      fs.readSync(fd, out, at, Math.min(COPY_CHUNK_BYTES, size - at), at)
      await sleep(1)
    }
    fs.writeFileSync(copy, out)
    return out
  } finally {
    fs.closeSync(fd)
  }
}

function historiesOf(steps: readonly Step[]): Map<string, Set<string | undefined>> {
  const out = new Map<string, Set<string | undefined>>()
  for (const step of steps) {
    for (const [key, value] of step.changes) {
      const k = Buffer.from(key, 'utf8').toString('latin1')
      let set = out.get(k)
      if (set === undefined) out.set(k, (set = new Set([undefined])))
      set.add(value === undefined ? undefined : digestOf(value))
    }
  }
  return out
}

function latin1Keys(state: Map<string, string>): Map<string, string> {
  return new Map([...state].map(([k, v]) => [Buffer.from(k, 'utf8').toString('latin1'), v]))
}

function readIfThere(file: string): Buffer | undefined {
  return fs.existsSync(file) ? fs.readFileSync(file) : undefined
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
