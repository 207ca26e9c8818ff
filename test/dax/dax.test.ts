import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { DaxKVError, ErrorCode, open, type DaxKV } from '../../src/index.js'
import { tempDir } from '../helpers.js'
import { daxDir, nodaxDir, SKIP_MESSAGE } from './env.js'

// Same-boot checks on a real fs-dax mount: the kernel grants MAP_SYNC, the
// store picks dax mode, and data written with cache flushes reads back after
// close and reopen. The cross-boot check is in reopen.test.ts.

const FLUSH_INSTRUCTIONS = ['clwb', 'clflushopt', 'clflush']

async function openError(file: string, options: Parameters<typeof open>[1]): Promise<unknown> {
  try {
    const db = await open(file, options)
    await db.close()
  } catch (error) {
    return error
  }
  return undefined
}

describe.skipIf(daxDir === undefined)(`on a DAX mount (${daxDir ?? SKIP_MESSAGE})`, () => {
  it('auto mode picks dax on an fs-dax mount, with the DAX attribute and a flush instruction', async () => {
    const file = path.join(tempDir(daxDir!), 'auto.dax')
    const db = await open(file, { size: '16MiB' })
    try {
      expect(db.mode).toBe('dax')
      const stats = db.stats()
      expect(stats.mode).toBe('dax')
      expect(stats.statxDax).toBe(true)
      expect(FLUSH_INSTRUCTIONS).toContain(stats.flushInstruction)
      expect(stats.fileBytes).toBe(16 * 1024 * 1024)
      expect(fs.statSync(file).size).toBe(16 * 1024 * 1024)
      console.log(`dax mode: flush instruction ${stats.flushInstruction}, crc32c ${stats.crc32c}, ${stats.segments} segments of ${stats.segmentBytes} bytes`)
    } finally {
      await db.close()
    }
  })

  it("mode 'dax' creates and reopens a daxfile on an fs-dax mount", async () => {
    const file = path.join(tempDir(daxDir!), 'forced.dax')
    let db = await open(file, { size: '16MiB', mode: 'dax' })
    expect(db.mode).toBe('dax')
    await db.put('a', 1)
    await db.close()
    db = await open(file, { mode: 'dax', create: false })
    expect(db.mode).toBe('dax')
    expect(db.get('a')).toBe(1)
    await db.close()
  })

  it('puts, batches and deletes survive close and reopen', async () => {
    const file = path.join(tempDir(daxDir!), 'ops.dax')
    let db: DaxKV = await open(file, { size: '16MiB' })
    expect(db.mode).toBe('dax')
    await Promise.all([db.put('a', { n: 1 }), db.put('b', 'two'), db.put('c', [3]), db.put('gone', true)])
    await db.batch([
      { type: 'put', key: 'd', value: 4 },
      { type: 'del', key: 'gone' },
      { type: 'put', key: 'a', value: { n: 11 } },
    ])
    await db.del('b')
    db.putSync('e', null)
    db.batchSync([{ type: 'put', key: 'f', value: 'six' }, { type: 'del', key: 'c' }])
    db.delSync('never-there')
    const before = db.stats()
    await db.close()

    db = await open(file, { create: false, indexCheckpoint: false })
    try {
      expect(db.mode).toBe('dax')
      expect([...db.range()]).toEqual([
        ['a', { n: 11 }],
        ['d', 4],
        ['e', null],
        ['f', 'six'],
      ])
      expect(db.recovery.batches).toBe(before.batchesWritten)
      expect(db.recovery.records).toBe(before.recordsWritten)
      expect(db.recovery.tornTail).toBeUndefined()
      expect(db.verify().problems).toEqual([])
    } finally {
      await db.close()
    }
  })

  it('values fill several segments and read back after reopen', async () => {
    const file = path.join(tempDir(daxDir!), 'segments.dax')
    const value = (i: number): Buffer => Buffer.alloc(64 * 1024, i)
    let db = await open<Uint8Array>(file, { size: '16MiB', segmentSize: '1MiB', valueEncoding: 'binary' })
    expect(db.mode).toBe('dax')
    for (let i = 0; i < 48; i++) await db.put(`blob-${String(i).padStart(2, '0')}`, value(i))
    const inUse = db.stats().segmentsInUse
    expect(inUse).toBeGreaterThan(2)
    await db.close()

    db = await open<Uint8Array>(file, { create: false, valueEncoding: 'binary' })
    try {
      expect(db.mode).toBe('dax')
      expect(db.stats().segmentsInUse).toBe(inUse)
      for (let i = 0; i < 48; i++) expect(Buffer.from(db.get(`blob-${String(i).padStart(2, '0')}`)!).equals(value(i))).toBe(true)
      expect(db.verify().problems).toEqual([])
    } finally {
      await db.close()
    }
  })

  it('the file grows by whole segments and stays in dax mode, before and after reopen', async () => {
    const file = path.join(tempDir(daxDir!), 'grow.dax')
    const value = (i: number): string => `${i}:`.padEnd(1000, String.fromCharCode(97 + (i % 26)))
    const count = 3000
    let db = await open<string>(file, { size: '1MiB', segmentSize: '64KiB', valueEncoding: 'utf8' })
    expect(db.mode).toBe('dax')
    for (let i = 0; i < count; i += 10) {
      await db.batch(Array.from({ length: 10 }, (_, n) => ({ type: 'put' as const, key: `g-${i + n}`, value: value(i + n) })))
    }
    const grown = db.stats()
    expect(grown.growths).toBeGreaterThan(0)
    expect(grown.fileBytes).toBeGreaterThan(1024 * 1024)
    expect(db.mode).toBe('dax')
    await db.close()
    expect(fs.statSync(file).size).toBe(grown.fileBytes)

    db = await open<string>(file, { create: false, mode: 'dax', valueEncoding: 'utf8' })
    try {
      expect(db.stats().statxDax).toBe(true)
      expect(db.stats().fileBytes).toBe(grown.fileBytes)
      expect(db.count).toBe(count)
      for (let i = 0; i < count; i++) expect(db.get(`g-${i}`)).toBe(value(i))
      expect(db.verify().problems).toEqual([])
    } finally {
      await db.close()
    }
  })

  it('compaction reuses segments in dax mode and loses nothing', async () => {
    const file = path.join(tempDir(daxDir!), 'compact.dax')
    const options = { segmentSize: '64KiB', valueEncoding: 'utf8', autoGrow: false, backgroundCompaction: false } as const
    let db = await open<string>(file, { ...options, size: '2MiB' })
    expect(db.mode).toBe('dax')
    // Overwrite 200 keys ten times: about nine tenths of the log is garbage.
    for (let round = 0; round < 10; round++) {
      await db.batch(Array.from({ length: 200 }, (_, k) => ({ type: 'put' as const, key: `c-${k}`, value: `${round}`.padEnd(300, '.') })))
    }
    for (let k = 0; k < 200; k += 2) await db.del(`c-${k}`)
    const result = await db.compact()
    expect(result.segmentsCleaned).toBeGreaterThan(0)
    // Write again into the cleaned segments, whose old batches must never come back.
    await db.batch(Array.from({ length: 50 }, (_, k) => ({ type: 'put' as const, key: `c-${2 * k + 1}`, value: 'final' })))
    const expected = new Map<string, string>()
    for (let k = 1; k < 200; k += 2) expected.set(`c-${k}`, k < 100 ? 'final' : '9'.padEnd(300, '.'))
    const check = (d: DaxKV<string>): void => {
      expect(d.count).toBe(expected.size)
      for (const [key, value] of expected) expect(d.get(key)).toBe(value)
      for (let k = 0; k < 200; k += 2) expect(d.has(`c-${k}`)).toBe(false)
      expect(d.verify().problems).toEqual([])
    }
    check(db)
    await db.close()

    db = await open<string>(file, { ...options, create: false })
    try {
      expect(db.mode).toBe('dax')
      expect(db.recovery.tornTail).toBeUndefined()
      check(db)
    } finally {
      await db.close()
    }
  })

  it('a second handle on the same daxfile is refused while the first is open', async () => {
    const file = path.join(tempDir(daxDir!), 'locked.dax')
    const db = await open(file, { size: '16MiB' })
    try {
      const error = await openError(file, {})
      expect(error).toBeInstanceOf(DaxKVError)
      expect((error as DaxKVError).code).toBe(ErrorCode.LOCKED)
    } finally {
      await db.close()
    }
  })

  it('a file on non-DAX storage opens in msync mode and refuses mode dax', async () => {
    const dir = tempDir(nodaxDir)
    const file = path.join(dir, 'nodax.dax')
    const db = await open(file, { size: '16MiB' })
    try {
      expect(db.mode).toBe('msync')
      expect(db.stats().statxDax).toBe(false)
      expect(db.stats().flushInstruction).toBeUndefined()
      await db.put('k', 'v')
    } finally {
      await db.close()
    }

    const existing = await openError(file, { mode: 'dax' })
    expect(existing).toBeInstanceOf(DaxKVError)
    expect((existing as DaxKVError).code).toBe(ErrorCode.MODE_UNAVAILABLE)

    const fresh = path.join(dir, 'fresh.dax')
    const created = await openError(fresh, { size: '16MiB', mode: 'dax' })
    expect(created).toBeInstanceOf(DaxKVError)
    expect((created as DaxKVError).code).toBe(ErrorCode.MODE_UNAVAILABLE)
    // A refused creation leaves no file behind (the other two are the store and its index checkpoint).
    expect(fs.readdirSync(dir).sort()).toEqual(['nodax.dax', 'nodax.dax.index'])

    // The refused opens did not damage or lock the existing file.
    const again = await open(file, { create: false })
    try {
      expect(again.mode).toBe('msync')
      expect(again.get('k')).toBe('v')
    } finally {
      await again.close()
    }
  })

  it("mode 'forced-dax' on non-DAX storage uses flush instructions and says so", async () => {
    const file = path.join(tempDir(nodaxDir), 'forced.dax')
    const db = await open(file, { size: '16MiB', mode: 'forced-dax' })
    try {
      expect(db.mode).toBe('forced-dax')
      expect(db.stats().statxDax).toBe(false)
      expect(FLUSH_INSTRUCTIONS).toContain(db.stats().flushInstruction)
      await db.put('k', 'v')
      expect(db.get('k')).toBe('v')
    } finally {
      await db.close()
    }
  })
})
