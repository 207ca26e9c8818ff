#!/usr/bin/env node
// Put latency with compaction running vs not, and write amplification.
//
//   node test/bench/compaction-latency.mjs [--dir /dev/shm] [--puts 200000] [--mode msync]
//
// Both runs do the same overwrite-heavy workload (durable `await put`,
// 100-byte values, 16-byte keys over a 20k-key working set), each put timed
// from the call to its promise resolving, so time spent in background
// compaction steps on the event loop counts. "quiet" gets a file so large
// that no segment is ever cleaned (and background cleaning off); "compacting"
// gets a file of 4x the live data with autoGrow off, so segment cleaning
// (foreground when space runs low, background between writes) runs
// throughout.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { open } from '../../dist/index.js'

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string', default: '/dev/shm' },
    puts: { type: 'string', default: '200000' },
    keys: { type: 'string', default: '20000' },
    mode: { type: 'string', default: 'msync' },
  },
})
const puts = Number(args.puts)
const keys = Number(args.keys)
const value = Buffer.alloc(100, 0x61)

async function run(label, options) {
  const dir = fs.mkdtempSync(path.join(args.dir, 'daxkv-lat-'))
  const file = path.join(dir, 'db.dax')
  const db = await open(file, { valueEncoding: 'binary', mode: args.mode, ...options })
  const latencies = new Float64Array(puts)
  let seed = 12345
  for (let i = 0; i < puts; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    const key = String(seed % keys).padStart(16, '0')
    const t = process.hrtime.bigint()
    await db.put(key, value)
    latencies[i] = Number(process.hrtime.bigint() - t) / 1000
  }
  const stats = db.stats()
  await db.close()
  fs.rmSync(dir, { recursive: true, force: true })
  latencies.sort()
  const q = (p) => latencies[Math.min(puts - 1, Math.floor(p * puts))]
  return {
    label,
    putsPerSecond: Math.round(puts / (latencies.reduce((a, b) => a + b, 0) / 1e6)),
    p50Us: q(0.5),
    p99Us: q(0.99),
    p999Us: q(0.999),
    maxUs: latencies[puts - 1],
    fileBytes: stats.fileBytes,
    compactions: stats.compactions,
    writeAmplification: Number(stats.writeAmplification.toFixed(3)),
  }
}

const liveBytes = keys * 128
const results = [
  await run('quiet (no cleaning)', { size: Math.max(64 << 20, puts * 160), autoGrow: false, backgroundCompaction: false }),
  await run('compacting', { size: 4 * liveBytes, segmentSize: '256KiB', autoGrow: false }),
]
console.log(`dir ${args.dir} (${os.cpus()[0]?.model}), mode ${args.mode}, ${puts} durable puts over ${keys} keys`)
console.table(results)
console.log(`p99 ratio compacting/quiet: ${(results[1].p99Us / results[0].p99Us).toFixed(2)}`)
