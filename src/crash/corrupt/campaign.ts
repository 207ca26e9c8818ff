/**
 * The corrupt-file campaign: builds stores of several shapes, damages
 * copies of them in every way damage-daxfile.ts and damage-index.ts know,
 * opens each copy in a child process with a time limit (pool.ts) and
 * judges what it saw (judge.ts). Case n draws its damage from the seed and
 * n alone, so a run replays from its seed; the stores written by a killed
 * or copied writer also depend on timing.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { ModeRequest } from '../../platform/daxfile.js'
import { Random } from '../random.js'
import { DAXFILE_DAMAGE, type DamageInput } from './damage-daxfile.js'
import { INDEX_DAMAGE, type IndexCase } from './damage-index.js'
import { judge, type JudgedCase, type Outcome } from './judge.js'
import { mapDaxfile, type FileLayout } from './layout.js'
import { CasePool, type CaseRun } from './pool.js'
import { PROBE_KEY } from './protocol.js'
import { SHAPES, buildBase, type BaseStore, type ShapeName } from './stores.js'

export interface CorruptCampaignOptions {
  /** Working directory: the stores, the case file, and copies of violating cases. */
  readonly dir: string
  readonly seed: number
  readonly cases: number
  readonly mode: ModeRequest
  /** A case with no reply within this time is a hang. */
  readonly timeoutMs?: number
  readonly onProgress?: (done: number, result: CorruptCampaignResult) => void
}

export interface CorruptViolation {
  readonly case: number
  readonly shape: ShapeName
  readonly damageClass: string
  readonly detail: string
  readonly invariant: string
  readonly explanation: string
  readonly kept: readonly string[]
}

export interface CorruptCampaignResult {
  readonly seed: number
  cases: number
  /** Per damage class, how many cases ended in each outcome. */
  readonly table: Record<string, Partial<Record<Outcome, number>>>
  readonly casesPerShape: Partial<Record<ShapeName, number>>
  /** Stores that could not serve as a base, and why (a copy of a live file need not open). */
  readonly basesSkipped: string[]
  readonly violations: CorruptViolation[]
  durationMs: number
}

const TIMEOUT_MS = 20_000
/** Tries at a base whose undamaged file must open (only the copy of a live file may fail to). */
const BASE_TRIES = 3

interface ReadyBase {
  readonly base: BaseStore
  readonly layout: FileLayout
  readonly reference: ReadonlyMap<string, string>
  readonly keys: readonly string[]
}

export async function runCorruptCampaign(options: CorruptCampaignOptions): Promise<CorruptCampaignResult> {
  const started = performance.now()
  const { dir, seed, mode } = options
  fs.mkdirSync(dir, { recursive: true })
  const result: CorruptCampaignResult = { seed, cases: 0, table: {}, casesPerShape: {}, basesSkipped: [], violations: [], durationMs: 0 }
  const pool = new CasePool(options.timeoutMs ?? TIMEOUT_MS)
  const caseFile = path.join(dir, 'case.dax')
  try {
    const bases: ReadyBase[] = []
    for (const [n, shape] of SHAPES.entries()) {
      const ready = await prepareBase(shape, n, options, pool, caseFile, result)
      if (ready !== undefined) bases.push(ready)
    }
    fs.rmSync(path.join(dir, 'bases'), { recursive: true, force: true })
    if (bases.length === 0) return result
    const classes = [...Object.keys(DAXFILE_DAMAGE), ...Object.keys(INDEX_DAMAGE)]
    for (let n = 0; n < options.cases; n++) {
      const random = new Random((seed ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0)
      const ready = bases[n % bases.length]!
      const other = bases[(n + 1) % bases.length]!.base
      const made = damageCase(ready, other, classes, random)
      if (made === undefined) continue
      const run = await runCase(pool, caseFile, made.image, made.index, mode, ready.keys)
      const verdict = judge(made, run)
      result.cases++
      result.casesPerShape[ready.base.shape] = (result.casesPerShape[ready.base.shape] ?? 0) + 1
      const row = (result.table[made.damageClass] ??= {})
      row[verdict.outcome] = (row[verdict.outcome] ?? 0) + 1
      if (verdict.outcome === 'violation') {
        const kept = keepCase(dir, `violation-${n}`, made.image, made.index)
        result.violations.push({
          case: n,
          shape: ready.base.shape,
          damageClass: made.damageClass,
          detail: made.detail,
          invariant: verdict.invariant!,
          explanation: verdict.explanation!,
          kept,
        })
      }
      options.onProgress?.(n + 1, result)
    }
  } finally {
    await pool.close()
    removeCase(caseFile)
    result.durationMs = performance.now() - started
  }
  return result
}

/** Builds one base and opens it undamaged, with and without its checkpoint; both must give its state. */
async function prepareBase(
  shape: ShapeName,
  n: number,
  options: CorruptCampaignOptions,
  pool: CasePool,
  caseFile: string,
  result: CorruptCampaignResult,
): Promise<ReadyBase | undefined> {
  const why: string[] = []
  for (let attempt = 0; attempt < BASE_TRIES; attempt++) {
    const base = await buildBase(shape, path.join(options.dir, 'bases', shape), (options.seed + n * 7919 + attempt * 104_729) >>> 0, options.mode)
    const keys = [...base.histories.keys()]
    const states: Map<string, string>[] = []
    for (const index of base.index === undefined ? [undefined] : [base.index, undefined]) {
      const run = await runCase(pool, caseFile, base.image, index === undefined ? { kind: 'absent' } : { kind: 'bytes', bytes: index }, options.mode, keys)
      const problem = undamagedProblem(run)
      if (problem !== undefined) {
        why.push(`${index === undefined ? 'without' : 'with'} its index checkpoint: ${problem}`)
        break
      }
      if (run.kind === 'reply') states.push(new Map(run.reply.entries.filter(([k]) => k !== PROBE_KEY)))
    }
    const expected = base.acknowledged ?? states[0]
    const mismatch = states.length === 0 ? 'did not open' : states.map((s) => differences(expected!, s)).find((d) => d !== undefined)
    if (mismatch === undefined) return { base, layout: mapDaxfile(base.image), reference: expected!, keys }
    if (states.length > 0) why.push(mismatch)
    // Only a copy taken while another process writes may legitimately be no valid daxfile.
    if (shape !== 'copied' || states.length > 0) break
  }
  const explanation = `the undamaged ${shape} store: ${why.join('; ')}`
  if (shape === 'copied' && why.every((w) => w.includes('refused'))) result.basesSkipped.push(explanation)
  else result.violations.push({ case: -1, shape, damageClass: 'none', detail: 'the undamaged store', invariant: 'an undamaged store opens to its acknowledged state', explanation, kept: [] })
  return undefined
}

function undamagedProblem(run: CaseRun): string | undefined {
  if (run.kind === 'hang') return `no reply within ${run.ms} ms`
  if (run.kind === 'died') return `the child ${run.how}`
  const e = run.reply.error
  if (e !== undefined) return `refused at ${e.stage}: ${e.code ?? 'untyped'}: ${e.message}`
  if (run.reply.problems.length > 0) return `verify found ${run.reply.problems.join('; ')}`
  return undefined
}

function differences(want: ReadonlyMap<string, string>, have: ReadonlyMap<string, string>): string | undefined {
  for (const key of new Set([...want.keys(), ...have.keys()])) {
    if (want.get(key) !== have.get(key)) return `key ${JSON.stringify(key)} opens as ${have.get(key) ?? 'absent'}, acknowledged ${want.get(key) ?? 'absent'}`
  }
  return undefined
}

type MadeCase = JudgedCase & { readonly detail: string }

function damageCase(ready: ReadyBase, other: BaseStore, classes: readonly string[], random: Random): MadeCase | undefined {
  const input: DamageInput = { base: ready.base, layout: ready.layout, other, random }
  const baseIndex = ready.base.index
  // Draw classes until one applies to this base (a class may need a free segment, an older copy, a checkpoint).
  for (let tries = 0; tries < 50; tries++) {
    const damageClass = random.pick(classes)
    const onFile = DAXFILE_DAMAGE[damageClass]
    if (onFile !== undefined) {
      const damage = onFile(input)
      if (damage === undefined || damage.image.equals(ready.base.image)) continue
      const index: IndexCase = baseIndex !== undefined && random.chance(0.5) ? { kind: 'bytes', bytes: baseIndex } : { kind: 'absent' }
      const detail = `${damage.detail}; ${index.kind === 'absent' ? 'no index checkpoint' : 'its index checkpoint beside it'}`
      return { ...ready, damageClass, image: damage.image, index, forged: false, detail }
    }
    if (baseIndex === undefined) continue
    const damage = INDEX_DAMAGE[damageClass]!(input, baseIndex)
    if (damage === undefined) continue
    return { ...ready, damageClass, image: damage.image, index: damage.index, forged: damageClass.includes('forged'), detail: damage.detail }
  }
  return undefined
}

async function runCase(pool: CasePool, file: string, image: Buffer, index: IndexCase, mode: ModeRequest, keys: readonly string[]): Promise<CaseRun> {
  removeCase(file)
  writeFresh(file, image)
  placeIndex(`${file}.index`, index)
  return pool.run({ file, mode, indexCheckpoint: true, keys })
}

/**
 * Writes a new file and fsyncs it: not for durability, for the daxfile
 * contract (open() refuses blocks that are still delayed allocations).
 */
function writeFresh(file: string, bytes: Buffer): void {
  const fd = fs.openSync(file, 'w')
  try {
    let done = 0
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, done)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

function placeIndex(file: string, index: IndexCase): void {
  if (index.kind === 'bytes') fs.writeFileSync(file, index.bytes)
  else if (index.kind === 'symlink') fs.symlinkSync(index.target, file)
  else if (index.kind === 'directory') fs.mkdirSync(file)
  else if (index.kind === 'fifo') execFileSync('mkfifo', [file])
}

function removeCase(file: string): void {
  for (const f of [file, `${file}.index`]) fs.rmSync(f, { recursive: true, force: true })
}

/** Keeps a violating case's files (a special index file is described, not copied). */
function keepCase(dir: string, name: string, image: Buffer, index: IndexCase): string[] {
  const file = path.join(dir, `${name}.dax`)
  fs.writeFileSync(file, image)
  if (index.kind === 'bytes') fs.writeFileSync(`${file}.index`, index.bytes)
  return index.kind === 'bytes' ? [file, `${file}.index`] : index.kind === 'absent' ? [file] : [file, `(index: a ${index.kind})`]
}
