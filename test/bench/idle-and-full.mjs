#!/usr/bin/env node
// The two liveness measures of docs/space.md: CPU an idle store uses after
// heavy writes, and a full store emptied by deletes.
//
//   npm run prepare && node test/bench/idle-and-full.mjs [--dir /dev/shm] [--idle-seconds 10]
//
// Idle: three stores are written and then left alone for --idle-seconds;
// the process's CPU time over that wait (process.cpuUsage) and the
// cleanings done in it are printed. Full: a 512 KiB store (64 KiB
// segments, autoGrow off) is filled with 100-byte puts until DAXKV_FULL,
// then every other key is deleted, then compact() and one more put.
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { open } from '../../dist/index.js'

const { values: args } = parseArgs({
  options: { dir: { type: 'string', default: '/dev/shm' }, 'idle-seconds': { type: 'string', default: '10' } },
})
const dir = fs.mkdtempSync(path.join(args.dir, 'daxkv-idle-'))
const idleMs = 1000 * Number(args['idle-seconds'])
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function idle(name, fill) {
  const db = await fill(path.join(dir, `${name}.dax`))
  await sleep(200)
  const before = db.stats()
  const cpu = process.cpuUsage()
  const started = performance.now()
  await sleep(idleMs)
  const used = process.cpuUsage(cpu)
  const elapsed = performance.now() - started
  const after = db.stats()
  const percent = (100 * (used.user + used.system)) / 1000 / elapsed
  console.log(
    `idle, ${name}: CPU ${percent.toFixed(2)}% over ${(elapsed / 1000).toFixed(1)} s; ` +
      `${after.compactions - before.compactions} cleanings and ${after.bytesCopied - before.bytesCopied} bytes copied while idle`,
  )
  await db.close()
}

try {
  await idle('30 values of 1.4 MB', async (file) => {
    const db = await open(file, { valueEncoding: 'binary' })
    const value = Buffer.alloc(1_468_006, 1)
    for (let i = 0; i < 30; i++) await db.put(`k${i}`, value)
    return db
  })
  await idle('3000 puts of 100 B in 512 KiB', async (file) => {
    const db = await open(file, { size: '512KiB', valueEncoding: 'binary' })
    const value = Buffer.alloc(100, 1)
    for (let i = 0; i < 3000; i++) await db.put(`k${i}`, value)
    return db
  })
  await idle('200000 overwrites of 5000 keys in 4 MiB', async (file) => {
    const db = await open(file, { size: '4MiB', segmentSize: '64KiB', valueEncoding: 'binary' })
    for (let i = 0; i < 200_000; i++) db.putSync(`k${i % 5000}`, Buffer.alloc(100 + (i % 300), i & 255))
    return db
  })

  const db = await open(path.join(dir, 'full.dax'), { size: '512KiB', segmentSize: '64KiB', autoGrow: false, valueEncoding: 'binary' })
  const value = Buffer.alloc(100, 1)
  let puts = 0
  for (;;) {
    try {
      await db.put(`k${puts}`, value)
      puts++
    } catch (error) {
      if (error.code !== 'DAXKV_FULL') throw error
      break
    }
  }
  let deleted = 0
  let failure
  for (let i = 0; i < puts; i += 2) {
    try {
      await db.del(`k${i}`)
      deleted++
    } catch (error) {
      failure = error.code ?? String(error)
      break
    }
  }
  const outcome = async (work) => {
    try {
      await work()
      return 'ok'
    } catch (error) {
      return error.code ?? String(error)
    }
  }
  const compacted = await outcome(() => db.compact())
  const putAfter = await outcome(() => db.put('after', value))
  console.log(
    `full: ${puts} puts until DAXKV_FULL; ${deleted} of ${Math.ceil(puts / 2)} deletes of every other key succeeded` +
      `${failure === undefined ? '' : ` (then ${failure})`}; compact(): ${compacted}; a put after: ${putAfter}`,
  )
  await db.close()
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
