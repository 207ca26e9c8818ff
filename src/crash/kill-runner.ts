import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ModeRequest } from '../platform/daxfile.js'
import { KILL_FILE_BYTES, KILL_STEPS_MAX } from './kill-settings.js'

/** How a child run ended. */
export interface ChildRun {
  /** `killed` by the parent, stopped on its own (`full`, `done`), or `failed` (exited with an error). */
  readonly ended: 'killed' | 'full' | 'done' | 'failed'
  readonly stderr: string
}

const READY_TIMEOUT_MS = 30_000
const STDERR_BYTES_MAX = 8192

/** One child run: what to run, and when to kill it. */
export interface ChildInput {
  readonly file: string
  readonly ackFile: string
  readonly seed: number
  readonly firstIndex: number
  readonly mode: ModeRequest
  /** Time between the child's `ready` and the SIGKILL. */
  readonly delayMs: number
  readonly stepsMax?: number
  readonly fileBytes?: number
}

/**
 * Starts the child, waits for `ready`, waits `delayMs`, SIGKILLs it and
 * waits for it to exit. A child that stops on its own first (full, done or
 * failed) is reported as such.
 */
export async function runKillChild(input: ChildInput): Promise<ChildRun> {
  const script = childScript()
  const child = spawn(
    process.execPath,
    [
      script,
      '--file', input.file,
      '--acks', input.ackFile,
      '--seed', String(input.seed),
      '--first', String(input.firstIndex),
      '--mode', input.mode,
      '--size', String(input.fileBytes ?? KILL_FILE_BYTES),
      '--steps', String(input.stepsMax ?? KILL_STEPS_MAX),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  let killed = false
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', () => resolve())
  })
  let onReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => (onReady = resolve))
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    if (/^ready$/m.test(stdout)) onReady()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < STDERR_BYTES_MAX) stderr += chunk
  })
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), READY_TIMEOUT_MS)))
  const first = await Promise.race([ready.then(() => 'ready' as const), exited.then(() => 'exited' as const), timeout])
  clearTimeout(timer)
  if (first === 'timeout') {
    child.kill('SIGKILL')
    await exited
    return { ended: 'failed', stderr: `the child did not report ready within ${READY_TIMEOUT_MS} ms\n${stderr}` }
  }
  if (first === 'ready') {
    if (input.delayMs > 0) {
      let delay: NodeJS.Timeout | undefined
      await Promise.race([exited, new Promise((resolve) => (delay = setTimeout(resolve, input.delayMs)))])
      clearTimeout(delay)
    }
    if (child.exitCode === null && child.signalCode === null) killed = child.kill('SIGKILL')
  }
  await exited
  if (killed && child.signalCode === 'SIGKILL') return { ended: 'killed', stderr }
  if (child.exitCode === 0 && /^full$/m.test(stdout)) return { ended: 'full', stderr }
  if (child.exitCode === 0 && /^done$/m.test(stdout)) return { ended: 'done', stderr }
  return { ended: 'failed', stderr: stderr === '' ? `the child exited with ${child.exitCode ?? child.signalCode}` : stderr }
}

/**
 * The compiled child script. From dist/ it sits next to this module; under
 * vitest this module runs from src/, and the child must still run as plain
 * JavaScript, so it points to the build in dist/ (the test setup builds it).
 */
export function childScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const script = import.meta.url.endsWith('.ts')
    ? path.resolve(here, '../../dist/crash/kill-child.js')
    : path.join(here, 'kill-child.js')
  if (!fs.existsSync(script)) throw new Error(`the kill campaign's child ${script} does not exist; build first (npm run build)`)
  return script
}
