// One measurement in a fresh process: `node --expose-gc worker.mjs '<spec JSON>'`.
// Prints one line `RESULT <json>` on stdout (the crash task prints `WRITING`
// and is killed by the parent instead).
//
// Tasks: put, bulk, read, crash, recover, syncprobe, autogrow (see run.mjs).

import fs from 'node:fs'
import path from 'node:path'
import { randomFillSync } from 'node:crypto'
import { adapter } from './stores.mjs'

const spec = JSON.parse(process.argv[2] ?? '{}')
const now = () => performance.now()

/** The i-th key: a bijective scramble of i (odd multiplier mod 2^32), 16 zero-padded decimal digits. */
export function keyOf(i) {
  return String(Math.imul(i, 0x9e3779b1) >>> 0).padStart(16, '0')
}

// Incompressible values: slices of a random pool at varying offsets.
const POOL_BYTES = 4 * 1024 * 1024
const pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES))
function valueOf(i, size) {
  const offset = ((i * 64) % (POOL_BYTES - size)) & ~7
  return pool.subarray(offset, offset + size)
}

// A small seeded PRNG (mulberry32), so runs draw the same key sequences.
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function result(value) {
  process.stdout.write(`RESULT ${JSON.stringify(value)}\n`)
}

/**
 * Apparent and allocated bytes of a file or directory tree (every file the
 * store keeps); `checkpoint` is the allocated bytes of daxkv's index
 * checkpoint (`*.index`) among them.
 */
export function diskUsage(target) {
  let apparent = 0
  let allocated = 0
  let checkpoint = 0
  const visit = (p) => {
    const st = fs.lstatSync(p)
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p)) visit(path.join(p, name))
    } else {
      apparent += st.size
      allocated += st.blocks * 512
      if (p.endsWith('.dax.index')) checkpoint += st.blocks * 512
    }
  }
  visit(target)
  return { apparent, allocated, checkpoint }
}

function memory() {
  globalThis.gc?.()
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
}

async function openStore(options = {}) {
  const store = await adapter(spec.store, { size: spec.size, dist: spec.dist, ...options })
  fs.mkdirSync(spec.path, { recursive: true })
  return store
}

// ---------------------------------------------------------------------------

/** Durable puts of new keys from `writers` loops, for `seconds` or `maxOps` ops. */
async function putTask() {
  const store = await openStore()
  await store.open(spec.path)
  const size = spec.valueSize
  const writers = spec.writers
  const maxOps = spec.maxOps
  const useSync = spec.variant === 'putSync'
  const warmOps = Math.min(500, maxOps)
  // Keys are made before timing, so the loop measures the store.
  const keys = Array.from({ length: warmOps + maxOps }, (_, i) => keyOf(i))
  let next = 0
  const single = async (deadline, limit) => {
    if (useSync) {
      while (next < limit && ((next & 15) !== 0 || now() < deadline)) {
        store.putSync(keys[next], valueOf(next, size))
        next++
      }
    } else {
      while (next < limit && now() < deadline) {
        const i = next++
        await store.put(keys[i], valueOf(i, size))
      }
    }
  }
  // Warm-up: not counted.
  await single(now() + 200, warmOps)
  const warm = next
  const t0 = now()
  const deadline = t0 + spec.seconds * 1000
  const limit = warm + maxOps
  if (writers === 1) {
    await single(deadline, limit)
  } else {
    const loop = async () => {
      while (next < limit && now() < deadline) {
        const i = next++
        await store.put(keys[i], valueOf(i, size))
      }
    }
    await Promise.all(Array.from({ length: writers }, loop))
  }
  const elapsed = now() - t0
  const ops = next - warm
  const info = store.info()
  await store.close()
  result({ ops, ms: elapsed, opsPerSec: (ops * 1000) / elapsed, info: slim(info) })
}

/** Loads `keys` keys in batches of `batch`, each batch durable. */
async function bulkTask() {
  const store = await openStore(spec.autoGrow === undefined ? {} : { autoGrow: spec.autoGrow })
  await store.open(spec.path)
  const n = spec.keys
  const keys = Array.from({ length: n }, (_, i) => keyOf(i))
  const t0 = now()
  for (let i = 0; i < n; i += spec.batch) {
    const entries = []
    for (let j = i; j < Math.min(n, i + spec.batch); j++) entries.push([keys[j], valueOf(j, spec.valueSize)])
    await store.batch(entries)
  }
  const elapsed = now() - t0
  const info = store.info()
  const t1 = now()
  await store.close()
  const closeMs = now() - t1
  const check = spec.verify ? await verifyStore(n) : undefined
  result({ ops: n, ms: elapsed, opsPerSec: (n * 1000) / elapsed, closeMs, info: slim(info), disk: diskUsage(spec.path), check })
}

/** Reopens a loaded store and checks its count and a sample of values. */
async function verifyStore(n) {
  const store = await openStore()
  await store.open(spec.path)
  const info = store.info()
  const random = rng(7)
  let missing = 0
  for (let s = 0; s < 10_000; s++) {
    const i = Math.floor(random() * n)
    const v = store.get(keyOf(i))
    if (v === undefined || !Buffer.from(v).equals(valueOf(i, spec.valueSize))) missing++
  }
  await store.close()
  return { keys: info.keys, sampled: 10_000, wrongOrMissing: missing }
}

/** Open time after a clean close, file size, memory after a full get pass, random gets, range scans. */
async function readTask() {
  const disk = diskUsage(spec.path)
  const store = await openStore()
  const t0 = now()
  await store.open(spec.path)
  const first = store.get(keyOf(0))
  const openMs = now() - t0
  if (first === undefined) throw new Error('key 0 missing after open')
  const info = store.info()
  const n = spec.keys
  // Full pass over every key (in scrambled order).
  const t1 = now()
  let missing = 0
  for (let i = 0; i < n; i++) if (store.get(keyOf(i)) === undefined) missing++
  const fullPassMs = now() - t1
  if (missing > 0) throw new Error(`${missing} keys missing in the full get pass`)
  const mem = memory()
  // Uniform random gets; keys and the random order are made before timing
  // (after the memory figures, so they do not count there).
  const random = rng(spec.seed ?? 1)
  const keys = Array.from({ length: n }, (_, i) => keyOf(i))
  const order = new Uint32Array(1 << 20)
  for (let k = 0; k < order.length; k++) order[k] = Math.floor(random() * n)
  const mask = order.length - 1
  let gets = 0
  const t2 = now()
  const getDeadline = t2 + spec.seconds * 1000
  while (gets < spec.maxGets && ((gets & 255) !== 0 || now() < getDeadline)) {
    if (store.get(keys[order[gets & mask]]) === undefined) throw new Error('random get missed')
    gets++
  }
  const getMs = now() - t2
  // Range scans of `scanKeys` consecutive keys from random points; the
  // first one is timed on its own (a store may build something on it).
  const startKey = () => String(Math.floor(random() * 0.97 * 4294967296)).padStart(16, '0')
  const tf = now()
  const firstScanKeys = await store.scan(startKey(), spec.scanKeys)
  const firstScanMs = now() - tf
  let scanned = 0
  let scans = 0
  const t3 = now()
  const scanDeadline = t3 + spec.seconds * 1000
  while (scans < 3 || (now() < scanDeadline && scans < 2000)) {
    scanned += await store.scan(startKey(), spec.scanKeys)
    scans++
  }
  const scanMs = now() - t3
  await store.close()
  result({
    openMs,
    disk,
    memory: mem,
    fullPass: { ops: n, ms: fullPassMs, opsPerSec: (n * 1000) / fullPassMs },
    get: { ops: gets, ms: getMs, opsPerSec: (gets * 1000) / getMs },
    firstScan: { keys: firstScanKeys, ms: firstScanMs },
    scan: { scans, keys: scanned, ms: scanMs, opsPerSec: (scanned * 1000) / scanMs },
    info: slim(info),
  })
}

/** Writes durably from 64 loops until killed; says WRITING once writes are flowing. */
async function crashTask() {
  const store = await openStore()
  await store.open(spec.path)
  let next = spec.keys
  let acked = 0
  let told = false
  const deadline = now() + 60_000
  const loop = async () => {
    while (now() < deadline) {
      const i = next++
      await store.put(keyOf(i), valueOf(i, spec.valueSize))
      acked++
      if (!told && acked >= 256) {
        told = true
        process.stdout.write('WRITING\n')
      }
    }
  }
  await Promise.all(Array.from({ length: 64 }, loop))
  result({ error: 'not killed' })
}

/** Opens a store after a crash: time to the first get, and daxkv's recovery report. */
async function recoverTask() {
  const store = await openStore(spec.indexCheckpoint === undefined ? {} : { indexCheckpoint: spec.indexCheckpoint })
  const t0 = now()
  await store.open(spec.path)
  const first = store.get(keyOf(0))
  const openMs = now() - t0
  if (first === undefined) throw new Error('key 0 missing after recovery')
  const info = store.info()
  const random = rng(11)
  let missing = 0
  for (let s = 0; s < 10_000; s++) if (store.get(keyOf(Math.floor(random() * spec.keys))) === undefined) missing++
  await store.close()
  result({ openMs, missingOfSample: missing, info: slim(info) })
}

/** The one-sync-per-op ceiling: 4 KiB pwrite + fdatasync into a preallocated file. */
async function syncProbeTask() {
  fs.mkdirSync(spec.path, { recursive: true })
  const file = path.join(spec.path, 'probe.bin')
  const blocks = 4096
  const fd = fs.openSync(file, 'w+')
  const zero = Buffer.alloc(1024 * 1024)
  for (let off = 0; off < blocks * 4096; off += zero.length) fs.writeSync(fd, zero, 0, zero.length, off)
  fs.fsyncSync(fd)
  const page = randomFillSync(Buffer.alloc(4096))
  let ops = 0
  const t0 = now()
  const deadline = t0 + spec.seconds * 1000
  while (ops < spec.maxOps && now() < deadline) {
    fs.writeSync(fd, page, 0, 4096, (ops % blocks) * 4096)
    fs.fdatasyncSync(fd)
    ops++
  }
  const ms = now() - t0
  fs.closeSync(fd)
  result({ ops, ms, opsPerSec: (ops * 1000) / ms })
}

function slim(info) {
  if (info?.recovery === undefined) return info
  const r = info.recovery
  return {
    ...info,
    recovery: {
      batches: r.batches,
      records: r.records,
      bytesScanned: r.bytesScanned,
      durationMs: r.durationMs,
      tornTail: r.tornTail !== undefined,
      source: r.source,
      recordsReplayed: r.recordsReplayed,
      checkpointRejected: r.checkpointRejected,
    },
  }
}

const tasks = { put: putTask, bulk: bulkTask, read: readTask, crash: crashTask, recover: recoverTask, syncprobe: syncProbeTask }
const task = tasks[spec.task]
if (task === undefined) {
  console.error(`unknown task ${spec.task}`)
  process.exit(2)
}
try {
  await task()
  process.exit(0)
} catch (error) {
  console.error(error?.stack ?? String(error))
  process.exit(1)
}
