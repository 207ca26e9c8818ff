#!/usr/bin/env node
// Indicative write and read rates with 100-byte values, one daxfile per
// target directory. Inside the emulated guest (see run.sh) compare the DAX
// mount with the non-DAX one:
//
//   npm run prepare
//   ../shared/tools/daxvm/daxvm.sh "$PWD" -- sh -c 'node test/dax/bench.mjs $DAX_DIR $NODAX_DIR $NODAX_DIR:forced-dax'
//
// Each argument is DIR or DIR:MODE (MODE as in open(): auto, dax, msync,
// forced-dax; default auto). BENCH_OPS sets the operations per measurement,
// BENCH_SIZE the daxfile size (the guest's non-DAX ram disk is small).
// Under emulation the figures only compare the modes with each other.
import fs from 'node:fs'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { open } from '../../dist/index.js'

const OPS = Number(process.env.BENCH_OPS ?? 20_000)
const VALUE_BYTES = 100
const GROUP = 100
const SIZE = process.env.BENCH_SIZE ?? '16MiB'

const targets = process.argv.slice(2).map((arg) => {
  const at = arg.lastIndexOf(':')
  return at > 0 ? { dir: arg.slice(0, at), mode: arg.slice(at + 1) } : { dir: arg, mode: 'auto' }
})
if (targets.length === 0) {
  console.error('usage: node test/dax/bench.mjs DIR[:MODE]...')
  process.exit(2)
}

const key = (i) => `bench-${String(i).padStart(8, '0')}`
const value = Buffer.alloc(VALUE_BYTES, 0x61)

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')

// The mapping's finalizer runs on a later turn of the event loop than the
// collection that found it unreachable.
async function collectGarbage() {
  for (let round = 0; round < 3; round++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function rate(ops, startNs) {
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9
  return Math.round(ops / seconds)
}

// A fixed permutation, so reads hit the index in a scattered order.
function scattered(n) {
  const order = Array.from({ length: n }, (_, i) => i)
  let state = 12345
  for (let i = n - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    const j = state % (i + 1)
    ;[order[i], order[j]] = [order[j], order[i]]
  }
  return order
}

async function measure({ dir, mode }) {
  const work = fs.mkdtempSync(path.join(dir, 'daxkv-bench-'))
  const file = path.join(work, 'bench.dax')
  try {
    const db = await open(file, { size: SIZE, mode, valueEncoding: 'binary', cacheSize: 0 })

    // One commit (persist point) per put.
    let start = process.hrtime.bigint()
    for (let i = 0; i < OPS; i++) db.putSync(key(i), value)
    const putSync = rate(OPS, start)

    // Puts issued GROUP per tick: one group commit per GROUP puts.
    start = process.hrtime.bigint()
    for (let i = 0; i < OPS; i += GROUP) {
      const group = []
      for (let j = i; j < Math.min(i + GROUP, OPS); j++) group.push(db.put(key(OPS + j), value))
      await Promise.all(group)
    }
    const putGrouped = rate(OPS, start)

    // Reads of committed keys straight from the mapping (value cache off).
    const order = scattered(OPS)
    start = process.hrtime.bigint()
    let bytes = 0
    for (const i of order) bytes += db.get(key(i)).length
    const get = rate(OPS, start)
    if (bytes !== OPS * VALUE_BYTES) throw new Error(`read ${bytes} bytes, expected ${OPS * VALUE_BYTES}`)

    const flush = db.stats().flushInstruction ?? '-'
    await db.close()
    return { dir, mode: db.mode, flush, putSync, putGrouped, get }
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
    // A closed daxfile stays mapped until its Buffers are garbage-collected,
    // and a removed file keeps its blocks while mapped: collect now, or the
    // small ram disk of the guest fills up after a few rounds.
    await collectGarbage()
  }
}

// A first, discarded round over every target lets the JIT compile the hot
// paths and the guest settle, so the first target is not penalised.
for (const target of targets) await measure(target)
const rows = []
for (const target of targets) rows.push(await measure(target))

console.log(`${OPS} operations per column, ${VALUE_BYTES}-byte values; rates in operations per second`)
console.log(['directory', 'mode', 'flush', 'putSync/s', `put x${GROUP}/tick/s`, 'get/s'].join('\t'))
for (const r of rows) console.log([r.dir, r.mode, r.flush, r.putSync, r.putGrouped, r.get].join('\t'))
