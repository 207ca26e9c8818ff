import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { CaseReply, CaseRequest } from './protocol.js'

/** How one case ended, seen from outside the child. */
export type CaseRun =
  | { readonly kind: 'reply'; readonly reply: CaseReply }
  /** No reply within the time limit: the child was killed. */
  | { readonly kind: 'hang'; readonly ms: number }
  /** The child died: by a signal, or exiting on its own (an uncaught error, an abort). */
  | { readonly kind: 'died'; readonly how: string; readonly stderr: string }

const STDERR_BYTES_MAX = 4096
/** The child's V8 heap limit, far above what a campaign file needs: an unbounded allocation ends in an abort, not in swapping. */
const CHILD_HEAP_MB = 512

/**
 * Runs cases one at a time in a long-lived child process (child.ts), and
 * starts a new child after one hangs or dies, so each case is judged on
 * its own. A case that gives no reply within `timeoutMs` is a hang.
 */
export class CasePool {
  readonly #timeoutMs: number
  #child: ChildProcessWithoutNullStreams | undefined
  #replies: string[] = []
  #waiting: ((line: string | undefined) => void) | undefined
  #stderr = ''
  #exit: string | undefined

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs
  }

  async run(request: CaseRequest): Promise<CaseRun> {
    const child = this.#ensureChild()
    this.#stderr = ''
    const started = performance.now()
    child.stdin.write(`${JSON.stringify(request)}\n`)
    let timer: NodeJS.Timeout | undefined
    const line = await new Promise<string | undefined | 'timeout'>((resolve) => {
      const queued = this.#replies.shift()
      if (queued !== undefined) return resolve(queued)
      if (this.#exit !== undefined) return resolve(undefined)
      this.#waiting = resolve
      timer = setTimeout(() => resolve('timeout'), this.#timeoutMs)
    })
    clearTimeout(timer)
    this.#waiting = undefined
    if (line === 'timeout') {
      await this.#stop()
      return { kind: 'hang', ms: Math.round(performance.now() - started) }
    }
    if (line === undefined) {
      const how = this.#exit ?? 'exited'
      const stderr = this.#stderr
      await this.#stop()
      return { kind: 'died', how, stderr }
    }
    return { kind: 'reply', reply: JSON.parse(line) as CaseReply }
  }

  async close(): Promise<void> {
    await this.#stop()
  }

  #ensureChild(): ChildProcessWithoutNullStreams {
    if (this.#child !== undefined && this.#exit === undefined) return this.#child
    const child = spawn(process.execPath, [`--max-old-space-size=${CHILD_HEAP_MB}`, childScript()], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.#child = child
    this.#replies = []
    this.#exit = undefined
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (this.#waiting !== undefined) this.#waiting(line)
      else this.#replies.push(line)
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.#stderr.length < STDERR_BYTES_MAX) this.#stderr += chunk
    })
    child.once('exit', (code, signal) => {
      this.#exit = signal !== null ? `killed by ${signal}` : `exited with code ${code}`
      // Let readline deliver a last reply first, if there was one.
      setImmediate(() => this.#waiting?.(undefined))
    })
    child.stdin.on('error', () => undefined)
    return child
  }

  async #stop(): Promise<void> {
    const child = this.#child
    this.#child = undefined
    if (child === undefined) return
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
  }
}

/**
 * The compiled child script: beside this module in dist/; under vitest this
 * module runs from src/, and the child must run as plain JavaScript, so it
 * is the build in dist/ (the test setup builds it).
 */
function childScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const script = import.meta.url.endsWith('.ts') ? path.resolve(here, '../../../dist/crash/corrupt/child.js') : path.join(here, 'child.js')
  if (!fs.existsSync(script)) throw new Error(`the corrupt-file campaign's child ${script} does not exist; build first (npm run build)`)
  return script
}
