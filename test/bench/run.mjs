// The daxkv benchmark: `npm run bench [-- options]`.
//
// Runs the same workloads on daxkv (msync and forced-dax modes) and on
// lmdb, classic-level and better-sqlite3, each measurement in a fresh child
// process (worker.mjs), on each storage directory. Prints a table, writes
// the results as JSON and, for a full run, regenerates docs/performance.md
// and docs/performance.svg.
//
// Options:
//   --dir PATH     a directory to benchmark on (repeatable); default /dev/shm and os.tmpdir()
//   --runs N       runs of the put workloads, the report shows medians (default 3; 1 with --quick)
//   --load-runs N  runs of the 1M-key workloads: bulk load, reads, open, crash (default 2, at most --runs)
//   --quick        smoke mode: 50k keys, short time bounds, 1 run; writes no docs
//   --stores LIST  comma-separated subset of: daxkv-msync,daxkv-forced-dax,lmdb,classic-level,better-sqlite3
//   --out FILE     results JSON (default test/bench/results/latest.json; with --quick, a file in the temp dir)
//   --docs / --no-docs   regenerate docs/performance.{md,svg} (default: yes for a full run, no for --quick)
//   --no-build     use dist/ as it is instead of compiling src/ first
//   --report FILE  measure nothing: re-render docs/performance.{md,svg} from a saved results JSON
//
// daxkv is compiled from src/ into node_modules/.cache/daxkv-bench/dist at the
// start, so the whole run measures one snapshot of the code even if dist/ is
// rebuilt meanwhile.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync, execSync, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { STORES, SETTINGS, packageVersion } from './stores.mjs'
import { fmt, machine, summarize, renderTable, renderSvg, renderMarkdown } from './report.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '../..')

function parseArgs(argv) {
  const args = { dirs: [], runs: undefined, quick: false, stores: STORES, out: undefined, docs: undefined, build: true }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--dir') args.dirs.push(path.resolve(value()))
    else if (a === '--runs') args.runs = Number(value())
    else if (a === '--load-runs') args.loadRuns = Number(value())
    else if (a === '--quick') args.quick = true
    else if (a === '--stores') args.stores = value().split(',')
    else if (a === '--out') args.out = path.resolve(value())
    else if (a === '--docs') args.docs = true
    else if (a === '--no-docs') args.docs = false
    else if (a === '--no-build') args.build = false
    else if (a === '--report') args.report = path.resolve(value())
    else if (a === '--help' || a === '-h') {
      const lines = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n')
      console.log(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).map((l) => l.slice(3)).join('\n'))
      process.exit(0)
    } else throw new Error(`unknown option ${a} (see --help)`)
  }
  for (const s of args.stores) if (!STORES.includes(s)) throw new Error(`unknown store ${s}; known: ${STORES.join(', ')}`)
  if (args.dirs.length === 0) args.dirs = ['/dev/shm', os.tmpdir()].filter((d) => fs.existsSync(d))
  args.runs ??= args.quick ? 1 : 3
  if (!Number.isInteger(args.runs) || args.runs < 1) throw new Error('--runs must be a positive whole number')
  if (args.loadRuns !== undefined && !(Number.isInteger(args.loadRuns) && args.loadRuns >= 1)) throw new Error('--load-runs must be a positive whole number')
  args.out ??= args.quick ? path.join(os.tmpdir(), 'daxkv-bench-quick.json') : path.join(here, 'results', 'latest.json')
  args.docs ??= !args.quick
  return args
}

const args = parseArgs(process.argv.slice(2))

const params = args.quick
  ? { keys: 50_000, putSeconds: 0.5, readSeconds: 0.5, maxGets: 1_000_000, probeSeconds: 0.5, autoGrowSize: '2MiB' }
  : { keys: 1_000_000, putSeconds: 1.5, readSeconds: 1, maxGets: 3_000_000, probeSeconds: 1, autoGrowSize: '16MiB' }
Object.assign(params, {
  runs: args.runs,
  loadRuns: Math.min(args.runs, args.loadRuns ?? (args.quick ? 1 : 2)),
  batch: 1000,
  valueSize: 100,
  bigValueSize: 4096,
  writers: 64,
  scanKeys: 10_000,
  daxkvSize: '512MiB',
  killAfterMs: 300,
  // Caps on put workloads, so a fast store stays inside its file.
  maxOps: { 100: 1_000_000, 4096: 60_000 },
})

const git = (cmd) => {
  try {
    return execSync(`git ${cmd}`, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}
// The code measured: the commit and how many files under src/ and native/ differ from it, at the start.
const snapshot = { commit: git('rev-parse --short HEAD'), modified: (git('status --porcelain -- src native') ?? '').split('\n').filter(Boolean).length }

if (args.report !== undefined) {
  // Re-render the docs from saved results (after a change to report.mjs), without measuring again.
  const saved = JSON.parse(fs.readFileSync(args.report, 'utf8'))
  const recs = saved.runs.map(([run, dir, store, workload, value]) => ({ run, dir, store, workload, value }))
  saved.summary = summarize(recs, saved.machine.dirs.map((d) => d.dir), Object.keys(saved.settings), saved.params)
  fs.writeFileSync(args.report, formatJson(saved))
  fs.writeFileSync(path.join(root, 'docs', 'performance.svg'), renderSvg(saved))
  fs.writeFileSync(path.join(root, 'docs', 'performance.md'), renderMarkdown(saved, path.relative(path.join(root, 'docs'), args.report)))
  console.log(renderTable(saved))
  console.log(`docs: docs/performance.md, docs/performance.svg re-rendered from ${args.report}`)
  process.exit(0)
}

let dist = path.join(root, 'dist')
if (args.build) {
  dist = path.join(root, 'node_modules', '.cache', 'daxkv-bench', 'dist')
  fs.rmSync(dist, { recursive: true, force: true })
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json'), '--outDir', dist], { stdio: 'inherit' })
}
if (!fs.existsSync(path.join(dist, 'index.js'))) throw new Error(`${dist}/index.js is missing: build daxkv first (npm run build)`)

/** JSON with one line per raw record: short, and its diffs readable. */
function formatJson(value) {
  return JSON.stringify(value, null, 1).replace(/\[\n\s*([^[\]{}]*?)\n\s*\]/g, (_, inner) => `[${inner.replace(/,\n\s*/g, ', ')}]`) + '\n'
}

const children = new Set()

/** Runs one worker; resolves with its RESULT object, or { error }. */
function runWorker(spec, { onLine, timeoutMs = 10 * 60_000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', path.join(here, 'worker.mjs'), JSON.stringify({ ...spec, dist })], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(child)
    let out = ''
    let err = ''
    let buffered = ''
    let resultLine
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stdout.on('data', (chunk) => {
      out += chunk
      buffered += chunk
      let nl
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        if (line.startsWith('RESULT ')) resultLine = line.slice(7)
        else onLine?.(line, child)
      }
    })
    child.stderr.on('data', (chunk) => (err += chunk))
    child.on('close', (code, signal) => {
      children.delete(child)
      clearTimeout(timer)
      if (resultLine !== undefined) resolve(JSON.parse(resultLine))
      else resolve({ error: `exit ${code ?? signal}: ${(err || out).trim().split('\n').slice(-3).join(' | ')}`, signal })
    })
  })
}

const isDaxkv = (store) => store.startsWith('daxkv')
const records = []
const failures = []
let done = 0
const started = Date.now()

function record(run, dir, store, workload, value) {
  if (typeof value === 'number' && Number.isFinite(value)) records.push({ run, dir, store, workload, value })
}

function note(what, res) {
  done++
  const t = ((Date.now() - started) / 1000).toFixed(0)
  if (res.error !== undefined) {
    failures.push(`${what}: ${res.error}`)
    process.stderr.write(`  [${t}s] ${what}: FAILED ${res.error}\n`)
  } else {
    process.stderr.write(`  [${t}s] ${what}\n`)
  }
}

function scratch(dir, name) {
  const p = path.join(dir, `daxkv-bench-${process.pid}`, name)
  fs.rmSync(p, { recursive: true, force: true })
  return p
}

async function putWorkloads(run, dir, store) {
  const variants = isDaxkv(store) ? ['putSync', 'put'] : ['put']
  for (const size of [params.valueSize, params.bigValueSize]) {
    const tag = size === params.valueSize ? '100' : '4k'
    for (const variant of variants) {
      const p = scratch(dir, `${store}-put`)
      const res = await runWorker({ task: 'put', store, path: p, valueSize: size, writers: 1, variant, seconds: params.putSeconds, maxOps: params.maxOps[size], size: params.daxkvSize })
      note(`${store} durable put ${tag} (${variant}) on ${dir}: ${fmt(res.opsPerSec)} ops/s`, res)
      record(run, dir, store, variant === 'put' && isDaxkv(store) ? `put-${tag}-await` : `put-${tag}`, res.opsPerSec)
      fs.rmSync(p, { recursive: true, force: true })
    }
    const p = scratch(dir, `${store}-group`)
    const res = await runWorker({ task: 'put', store, path: p, valueSize: size, writers: params.writers, variant: 'put', seconds: params.putSeconds, maxOps: params.maxOps[size], size: params.daxkvSize })
    note(`${store} group commit ${tag} (${params.writers} writers) on ${dir}: ${fmt(res.opsPerSec)} ops/s`, res)
    record(run, dir, store, `group-${tag}`, res.opsPerSec)
    fs.rmSync(p, { recursive: true, force: true })
  }
}

async function loadedWorkloads(run, dir, store) {
  const p = scratch(dir, `${store}-1m`)
  const base = { store, path: p, keys: params.keys, valueSize: params.valueSize, size: params.daxkvSize }
  const bulk = await runWorker({ ...base, task: 'bulk', batch: params.batch })
  note(`${store} bulk load ${params.keys} on ${dir}: ${fmt(bulk.opsPerSec)} ops/s`, bulk)
  record(run, dir, store, 'bulk', bulk.opsPerSec)
  if (bulk.error === undefined) {
    const read = await runWorker({ ...base, task: 'read', seconds: params.readSeconds, maxGets: params.maxGets, scanKeys: params.scanKeys, seed: run })
    note(`${store} reads on ${dir}: open ${fmt(read.openMs)} ms, get ${fmt(read.get?.opsPerSec)}/s, first scan ${fmt(read.firstScan?.ms)} ms, scan ${fmt(read.scan?.opsPerSec)} keys/s`, read)
    if (read.error === undefined) {
      record(run, dir, store, 'open-ms', read.openMs)
      record(run, dir, store, 'get', read.get.opsPerSec)
      record(run, dir, store, 'fullpass', read.fullPass.opsPerSec)
      record(run, dir, store, 'scan', read.scan.opsPerSec)
      record(run, dir, store, 'disk-allocated', read.disk.allocated)
      record(run, dir, store, 'disk-apparent', read.disk.apparent)
      record(run, dir, store, 'rss', read.memory.rss)
      record(run, dir, store, 'heap-used', read.memory.heapUsed)
      record(run, dir, store, 'array-buffers', read.memory.arrayBuffers)
      record(run, dir, store, 'first-scan-ms', read.firstScan.ms)
      const r = read.info?.recovery
      if (r !== undefined) {
        record(run, dir, store, 'used-bytes', read.info.usedBytes)
        if (r.durationMs > 0) record(run, dir, store, 'scan-rate-clean', (r.bytesScanned / r.durationMs) * 1000)
        record(run, dir, store, 'recovery-ms-clean', r.durationMs)
      }
    }
    // Crash during writes, then time the open in a new process.
    let killedAt
    const crash = await runWorker(
      { ...base, task: 'crash' },
      {
        onLine: (line, child) => {
          if (line === 'WRITING' && killedAt === undefined) {
            killedAt = 0
            setTimeout(() => {
              killedAt = Date.now()
              child.kill('SIGKILL')
            }, params.killAfterMs)
          }
        },
      },
    )
    const killed = crash.signal === 'SIGKILL' && killedAt !== undefined
    note(`${store} kill -9 during writes on ${dir}: ${killed ? 'killed' : 'NOT killed'}`, killed ? {} : crash)
    if (killed) {
      const rec = await runWorker({ ...base, task: 'recover' })
      note(`${store} open after kill -9 on ${dir}: ${fmt(rec.openMs)} ms`, rec)
      if (rec.error === undefined) {
        record(run, dir, store, 'recover-ms', rec.openMs)
        if (rec.missingOfSample > 0) failures.push(`${store} on ${dir}: ${rec.missingOfSample} of 10000 sampled keys missing after recovery`)
        const r = rec.info?.recovery
        if (r !== undefined && r.durationMs > 0) {
          record(run, dir, store, 'scan-rate-crash', (r.bytesScanned / r.durationMs) * 1000)
          record(run, dir, store, 'recovery-ms-crash', r.durationMs)
          if (r.source === 'checkpoint') record(run, dir, store, 'replayed-after-kill', r.recordsReplayed)
        }
      }
      // daxkv without its index checkpoint: the whole log replayed into the
      // index, as after a crash of a store that was never closed cleanly.
      if (store.startsWith('daxkv')) {
        const replay = await runWorker({ ...base, task: 'recover', indexCheckpoint: false })
        note(`${store} open replaying the whole log on ${dir}: ${fmt(replay.openMs)} ms`, replay)
        const r = replay.info?.recovery
        if (replay.error === undefined && r !== undefined && r.source === 'log' && r.durationMs > 0) {
          record(run, dir, store, 'replay-ms', replay.openMs)
          record(run, dir, store, 'scan-rate-replay', (r.bytesScanned / r.durationMs) * 1000)
        }
      }
    }
  }
  fs.rmSync(p, { recursive: true, force: true })
}

async function syncProbe(dir) {
  const p = scratch(dir, 'probe')
  const probe = await runWorker({ task: 'syncprobe', path: p, seconds: params.probeSeconds, maxOps: 200_000 })
  note(`4 KiB pwrite + fdatasync on ${dir}: ${fmt(probe.opsPerSec)} ops/s`, probe)
  fs.rmSync(p, { recursive: true, force: true })
  return probe.opsPerSec
}

/** daxkv's autoGrow: load the same keys into a file created small. */
async function autoGrowCheck(run, dir) {
  const p = scratch(dir, 'daxkv-autogrow')
  const res = await runWorker({ task: 'bulk', store: 'daxkv-msync', path: p, keys: params.keys, valueSize: params.valueSize, batch: params.batch, size: params.autoGrowSize, autoGrow: true, verify: true })
  note(`daxkv-msync bulk load from ${params.autoGrowSize} with autoGrow on ${dir}: ${fmt(res.opsPerSec)} ops/s, ${res.info?.growths} growths, file ${fmt(res.disk?.allocated / 2 ** 20)} MiB`, res)
  fs.rmSync(p, { recursive: true, force: true })
  if (res.error !== undefined) return { dir, error: res.error }
  record(run, dir, 'daxkv-msync', 'autogrow-bulk', res.opsPerSec)
  record(run, dir, 'daxkv-msync', 'autogrow-allocated', res.disk.allocated)
  record(run, dir, 'daxkv-msync', 'autogrow-checkpoint', res.disk.checkpoint)
  const ok = res.check?.keys === params.keys && res.check?.wrongOrMissing === 0 && res.info.growths > 0
  if (!ok) failures.push(`autoGrow check on ${dir}: ${JSON.stringify(res.check)}, growths ${res.info.growths}`)
  return { dir, ok, opsPerSec: res.opsPerSec, growths: res.info.growths, fileBytes: res.info.fileBytes, allocated: res.disk.allocated, usedBytes: res.info.usedBytes, check: res.check }
}

// ---------------------------------------------------------------------------

// An interrupted run leaves no store files behind (tmpfs holds them in memory).
process.on('SIGINT', () => {
  for (const child of children) child.kill('SIGKILL')
  for (const dir of args.dirs) fs.rmSync(path.join(dir, `daxkv-bench-${process.pid}`), { recursive: true, force: true })
  process.exit(130)
})

const info = machine(args.dirs)
console.log(`daxkv benchmark: ${args.quick ? 'quick' : 'full'} mode, ${params.runs} run(s), ${params.keys} keys, stores ${args.stores.join(', ')}`)
for (const d of info.dirs) console.log(`  ${d.dir}: ${d.fstype} (${d.source}${d.options.includes('dax') ? ', dax' : ''})`)

const autoGrow = []
for (let run = 1; run <= params.runs; run++) {
  for (const dir of args.dirs) {
    process.stderr.write(`run ${run}/${params.runs}, ${dir}\n`)
    // The one-sync-per-op ceiling, probed before and after the stores (the disk is shared): the mean is kept.
    const probes = [await syncProbe(dir)]
    for (const store of args.stores) {
      await putWorkloads(run, dir, store)
      if (run <= params.loadRuns) await loadedWorkloads(run, dir, store)
    }
    probes.push(await syncProbe(dir))
    const ok = probes.filter((x) => x !== undefined)
    if (ok.length > 0) record(run, dir, 'pwrite+fdatasync', 'syncprobe', ok.reduce((a, b) => a + b, 0) / ok.length)
    if (run === 1 && args.stores.includes('daxkv-msync')) autoGrow.push(await autoGrowCheck(run, dir))
    fs.rmSync(path.join(dir, `daxkv-bench-${process.pid}`), { recursive: true, force: true })
  }
}

const elapsedSec = (Date.now() - started) / 1000
const versions = {
  daxkv: JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version,
  daxkvCommit: snapshot.commit,
  daxkvSrcModified: snapshot.modified,
  lmdb: packageVersion('lmdb'),
  'classic-level': packageVersion('classic-level'),
  'better-sqlite3': packageVersion('better-sqlite3'),
}
const summary = summarize(records, args.dirs, args.stores, params)
const results = {
  generated: new Date().toISOString(),
  mode: args.quick ? 'quick' : 'full',
  elapsedSec: Math.round(elapsedSec),
  machine: info,
  versions,
  params,
  settings: Object.fromEntries(args.stores.map((s) => [s, SETTINGS[s]])),
  summary,
  autoGrow,
  failures,
  runs: records.map((r) => [r.run, r.dir, r.store, r.workload, Number(r.value.toPrecision(5))]),
}

fs.mkdirSync(path.dirname(args.out), { recursive: true })
fs.writeFileSync(args.out, formatJson(results))
console.log('')
console.log(renderTable(results))
console.log(`\n${done} measurements in ${elapsedSec.toFixed(0)} s; results: ${path.relative(process.cwd(), args.out) || args.out}`)
if (args.docs) {
  fs.writeFileSync(path.join(root, 'docs', 'performance.svg'), renderSvg(results))
  fs.writeFileSync(path.join(root, 'docs', 'performance.md'), renderMarkdown(results, path.relative(path.join(root, 'docs'), args.out)))
  console.log('docs: docs/performance.md, docs/performance.svg')
}
if (failures.length > 0) {
  console.log(`\n${failures.length} problem(s):`)
  for (const f of failures) console.log(`  ${f}`)
  process.exitCode = 1
}
