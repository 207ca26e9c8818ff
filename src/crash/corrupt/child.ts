/**
 * The child process of the corrupt-file campaign (pool.ts). For each
 * request line on its standard input it opens one damaged daxfile with the
 * public open(), reads every key (range() and a get() of each key it is
 * told to expect), runs verify(), writes one probe record and closes; then
 * it prints one reply line. Values travel as SHA-256 digests, so replies
 * stay small whatever the values hold.
 *
 * It runs in its own process so that a damaged file that made open() hang,
 * crash or allocate without bound shows up as exactly that (a timeout, a
 * signal, a peak RSS) instead of taking the campaign down.
 */
import readline from 'node:readline'
import type { DaxKV } from '../../db.js'
import { DaxKVError } from '../../errors.js'
import { open } from '../../open.js'
import { PROBE_KEY, digestOf, type CaseReply, type CaseRequest, type CaseStage } from './protocol.js'

async function runCase(request: CaseRequest): Promise<CaseReply> {
  const entries: [string, string][] = []
  const getMismatches: string[] = []
  let problems: string[] = []
  let stage: CaseStage = 'open'
  let db: DaxKV<Buffer> | undefined
  let opened = false
  try {
    db = await open<Buffer>(request.file, {
      create: false,
      mode: request.mode,
      valueEncoding: 'binary',
      cacheSize: 0,
      backgroundCompaction: false,
      indexCheckpoint: request.indexCheckpoint,
    })
    opened = true
    stage = 'read'
    const seen = new Map<string, string>()
    for (const [key, value] of db.range()) {
      const k = Buffer.from(key as string, 'utf8').toString('latin1')
      const d = digestOf(value)
      seen.set(k, d)
      entries.push([k, d])
    }
    for (const k of request.keys) {
      const value = db.get(Buffer.from(k, 'latin1').toString('utf8'))
      const d = value === undefined ? undefined : digestOf(value)
      if (d !== seen.get(k)) getMismatches.push(k)
    }
    stage = 'verify'
    problems = db.verify().problems
    stage = 'write'
    await db.put(PROBE_KEY, Buffer.from('probe'))
    stage = 'close'
    const closing = db
    db = undefined
    await closing.close()
    return { opened, entries, getMismatches, problems, error: undefined, maxRssBytes: maxRss() }
  } catch (error) {
    if (db !== undefined) await db.close().catch(() => undefined)
    const code = error instanceof DaxKVError ? error.code : undefined
    const message = error instanceof Error ? error.message : String(error)
    return { opened, entries, getMismatches, problems, error: { stage, code, message }, maxRssBytes: maxRss() }
  }
}

function maxRss(): number {
  // resourceUsage reports kilobytes.
  return process.resourceUsage().maxRSS * 1024
}

const lines = readline.createInterface({ input: process.stdin })
// One case at a time: the next line waits until this reply is out.
let queue = Promise.resolve()
lines.on('line', (line) => {
  queue = queue.then(async () => {
    const reply = await runCase(JSON.parse(line) as CaseRequest)
    process.stdout.write(`${JSON.stringify(reply)}\n`)
  })
})
lines.on('close', () => {
  void queue.then(() => process.exit(0))
})
