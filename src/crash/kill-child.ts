/**
 * The child process of the process-kill campaign (process-kill.ts). It runs
 * workload steps against a real daxfile until the parent SIGKILLs it, and
 * records in an acknowledgement file what it issued and what the store
 * acknowledged, so the parent can tell which writes must survive.
 *
 * Usage: node kill-child.js --file F --acks A --seed S --first N [--mode M] [--size BYTES] [--steps N]
 *
 * Protocol: the child prints `ready` once the store is open and the workload
 * generated; then for each step it appends `I <index>` to the
 * acknowledgement file before issuing it, `A <index>` once the store
 * acknowledged it, and `R <index>` when the store refused it (full) with
 * nothing written. It prints `full` and exits when the daxfile has no room
 * for the next step, and `done` after its last step. It exits at once when
 * its standard input ends: the parent is gone.
 */
import fs from 'node:fs'
import { parseArgs } from 'node:util'
import type { DaxKV } from '../db.js'
import { open } from '../open.js'
import { DaxKVError, ErrorCode } from '../errors.js'
import type { ModeRequest } from '../platform/daxfile.js'
import { KILL_DB_OPTIONS, KILL_FILE_BYTES, KILL_FILE_BYTES_MAX, KILL_SHAPE, KILL_STEPS_MAX } from './kill-settings.js'
import { makeWorkload, runStepAsync, runStepSync, type Step } from './workload.js'

/** Async steps issued in one tick, as the power-failure campaign does: one group commit. */
const GROUP_STEPS_MAX = 4

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      file: { type: 'string' },
      acks: { type: 'string' },
      seed: { type: 'string' },
      first: { type: 'string' },
      mode: { type: 'string', default: 'msync' },
      size: { type: 'string', default: String(KILL_FILE_BYTES) },
      steps: { type: 'string', default: String(KILL_STEPS_MAX) },
    },
    strict: true,
  })
  if (values.file === undefined || values.acks === undefined) throw new TypeError('kill-child needs --file and --acks')
  const seed = wholeNumber(values.seed, 'seed')
  const first = wholeNumber(values.first, 'first')
  const stepsMax = wholeNumber(values.steps, 'steps')
  const db = await open<Buffer>(values.file, {
    ...KILL_DB_OPTIONS,
    mode: values.mode as ModeRequest,
    size: wholeNumber(values.size, 'size'),
    maxSize: KILL_FILE_BYTES_MAX,
  })
  const steps = makeWorkload(seed, stepsMax, KILL_SHAPE, first)
  // The acknowledgement file is written with plain write(2) calls: once one
  // returns, the line is in the page cache and survives the process, so a
  // kill can lose at most the line being written, never an earlier one.
  const acks = fs.openSync(values.acks, 'a')
  const note = (tag: 'I' | 'A' | 'R', index: number): void => {
    fs.writeSync(acks, `${tag} ${index}\n`)
  }
  // The parent holds our stdin open; end of input means it died, and a
  // child left alone would keep writing until its step limit.
  process.stdin.on('end', () => process.exit(3)).resume()
  process.stdout.write('ready\n')
  const ended = await runSteps(db, steps, note)
  fs.closeSync(acks)
  await db.close()
  process.stdout.write(`${ended}\n`)
  process.exit(0)
}

/** Runs the steps in order; returns why it stopped. */
async function runSteps(db: DaxKV<Buffer>, steps: readonly Step[], note: (tag: 'I' | 'A' | 'R', index: number) => void): Promise<'full' | 'done'> {
  for (let i = 0; i < steps.length; ) {
    const step = steps[i]!
    if (step.kind === 'compact') {
      // A full compaction changes no key; it is noted like any step so the
      // file shows where the kill landed.
      note('I', step.index)
      await db.compact()
      note('A', step.index)
      i++
      continue
    }
    if (step.sync) {
      note('I', step.index)
      try {
        runStepSync(db, step)
      } catch (error) {
        if (!isFull(error)) throw error
        note('R', step.index)
        return 'full'
      }
      note('A', step.index)
      i++
      await nextTurn()
      continue
    }
    // Consecutive promise-API steps go out in one tick so the store commits
    // them as one group; each intent is on file before any of them is issued.
    const group: Step[] = []
    while (i < steps.length && !steps[i]!.sync && steps[i]!.kind !== 'compact' && group.length < GROUP_STEPS_MAX) group.push(steps[i++]!)
    for (const s of group) note('I', s.index)
    const settled = await Promise.allSettled(
      group.map((s) =>
        runStepAsync(db, s).then(
          () => note('A', s.index),
          (error: unknown) => {
            if (isFull(error)) note('R', s.index)
            throw error
          },
        ),
      ),
    )
    const failures = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown)
    if (failures.length > 0) {
      const other = failures.find((error) => !isFull(error))
      if (other !== undefined) throw other
      return 'full'
    }
    await nextTurn()
  }
  return 'done'
}

/**
 * Yields one turn of the event loop. The store cleans segments in the
 * background from setImmediate callbacks; a loop that only awaited promises
 * would never let them run, and kills would never land inside compaction.
 */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function isFull(error: unknown): boolean {
  return error instanceof DaxKVError && error.code === ErrorCode.FULL
}

function wholeNumber(text: string | undefined, name: string): number {
  const n = Number(text)
  if (text === undefined || text === '' || !Number.isSafeInteger(n) || n < 0) throw new TypeError(`kill-child: --${name} must be a whole number, got ${JSON.stringify(text)}`)
  return n
}

main().catch((error: unknown) => {
  process.stderr.write(`kill-child: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(1)
})
