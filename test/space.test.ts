import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DaxKVError, open } from '../src/index.js'
import { openOnDomain } from '../src/crash/open-on-domain.js'
import { SimulatedDomain } from '../src/platform/simulated-domain.js'
import { Random } from '../src/crash/random.js'
import { SEED as baseSeed } from './helpers.js'

const dirs: string[] = []
function tempFile(root = os.tmpdir()): string {
  const dir = fs.mkdtempSync(path.join(root, 'daxkv-space-'))
  dirs.push(dir)
  return path.join(dir, 'db.dax')
}
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

function valueOf(key: string, version: number, bytes: number): string {
  return `${key}@${version}:`.padEnd(bytes, String.fromCharCode(97 + (version % 26)))
}

describe('space reclamation and growth', () => {
  for (const background of [true, false]) {
    it(`an overwrite-heavy workload writing 20x the file size stays bounded and intact (background compaction ${background})`, async () => {
      const file = tempFile('/dev/shm')
      const initialBytes = 1024 * 1024
      const db = await open<string>(file, { size: initialBytes, segmentSize: '64KiB', valueEncoding: 'utf8', backgroundCompaction: background })
      const random = new Random(baseSeed)
      const keys = 150
      const model = new Map<string, string>()
      let written = 0
      let version = 0
      while (written < 20 * initialBytes) {
        const key = `key-${random.int(0, keys - 1)}`
        const value = valueOf(key, version++, random.int(200, 2000))
        if (version % 7 === 0) await db.put(key, value)
        else db.putSync(key, value)
        model.set(key, value)
        written += value.length
      }
      const stats = db.stats()
      // Live data is about 150 x 1.1 KiB; the file may grow for headroom but must not track the 20 MiB written.
      expect(stats.fileBytes, JSON.stringify(stats)).toBeLessThanOrEqual(2 * initialBytes)
      expect(stats.compactions).toBeGreaterThan(0)
      expect(stats.writeAmplification).toBeGreaterThan(1)
      expect(db.verify().problems).toEqual([])
      await db.close()
      const reopened = await open<string>(file, { valueEncoding: 'utf8' })
      expect(reopened.count).toBe(model.size)
      for (const [key, value] of model) expect(reopened.get(key)).toBe(value)
      expect(reopened.verify().problems).toEqual([])
      await reopened.close()
    })
  }

  it('grows by whole segments when live data outgrows the file, online, and keeps everything across reopen', async () => {
    const file = tempFile()
    const db = await open<string>(file, { size: '256KiB', segmentSize: '64KiB', valueEncoding: 'utf8' })
    for (let i = 0; i < 600; i++) db.putSync(`k${i}`, valueOf(`k${i}`, i, 1000))
    const stats = db.stats()
    expect(stats.growths).toBeGreaterThan(0)
    expect(stats.fileBytes % stats.segmentBytes).toBe(0)
    expect(fs.statSync(file).size).toBe(stats.fileBytes)
    await db.close()
    const reopened = await open<string>(file, { valueEncoding: 'utf8' })
    expect(reopened.stats().fileBytes).toBe(stats.fileBytes)
    for (let i = 0; i < 600; i++) expect(reopened.get(`k${i}`)).toBe(valueOf(`k${i}`, i, 1000))
    expect(reopened.verify().problems).toEqual([])
    await reopened.close()
  })

  it('at maxSize a put fails with DAXKV_FULL; nothing acknowledged is lost; reads, deletes and compaction work; it reopens', async () => {
    const file = tempFile()
    const db = await open<string>(file, { size: '128KiB', maxSize: '512KiB', segmentSize: '64KiB', valueEncoding: 'utf8' })
    const acked = new Map<string, string>()
    let full: unknown
    for (let i = 0; i < 10_000 && full === undefined; i++) {
      const key = `k${i}`
      try {
        db.putSync(key, valueOf(key, i, 900))
        acked.set(key, valueOf(key, i, 900))
      } catch (error) {
        full = error
      }
    }
    expect(full).toBeInstanceOf(DaxKVError)
    expect((full as DaxKVError).code).toBe('DAXKV_FULL')
    expect((full as DaxKVError).message).toMatch(/Nothing acknowledged is lost/)
    expect(db.stats().fileBytes).toBeLessThanOrEqual(512 * 1024)
    await expect(db.put('one-more', 'x'.repeat(900))).rejects.toMatchObject({ code: 'DAXKV_FULL' })
    for (const [key, value] of acked) expect(db.get(key)).toBe(value)
    // Deletes use the reserve; compaction then turns the garbage into free space.
    const deleted = [...acked.keys()].filter((_, i) => i % 2 === 0)
    for (const key of deleted) {
      await db.del(key)
      acked.delete(key)
    }
    const compacted = await db.compact()
    expect(compacted.segmentsCleaned).toBeGreaterThan(0)
    db.putSync('after-full', 'works again')
    acked.set('after-full', 'works again')
    expect(db.verify().problems).toEqual([])
    await db.close()
    const reopened = await open<string>(file, { valueEncoding: 'utf8' })
    expect(reopened.count).toBe(acked.size)
    for (const [key, value] of acked) expect(reopened.get(key)).toBe(value)
    for (const key of deleted) expect(reopened.has(key)).toBe(false)
    await reopened.close()
  })

  it('with autoGrow off a full file fails puts with DAXKV_FULL and never grows', async () => {
    const file = tempFile()
    const db = await open<string>(file, { size: '128KiB', segmentSize: '64KiB', valueEncoding: 'utf8', autoGrow: false })
    let code: string | undefined
    for (let i = 0; i < 1000 && code === undefined; i++) {
      try {
        db.putSync(`k${i}`, 'v'.repeat(1000))
      } catch (error) {
        code = (error as DaxKVError).code
      }
    }
    expect(code).toBe('DAXKV_FULL')
    expect(db.stats().fileBytes).toBe(128 * 1024)
    expect(fs.statSync(file).size).toBe(128 * 1024)
    await db.close()
  })

  it('delete, compact, crash at every step of the compaction: a deleted key never comes back', async () => {
    const domain = new SimulatedDomain(512 * 1024, 'cache-line')
    const options = { valueEncoding: 'utf8', segmentSize: '64KiB', cacheSize: 0, backgroundCompaction: false } as const
    const db = openOnDomain<string>(domain, options)
    for (let round = 0; round < 3; round++) for (let i = 0; i < 120; i++) db.putSync(`k${i}`, valueOf(`k${i}`, round, 700))
    const deleted = new Set<string>()
    for (let i = 0; i < 120; i += 3) {
      db.delSync(`k${i}`)
      deleted.add(`k${i}`)
    }
    const expected = new Map([...db.range()].map(([k, v]) => [k as string, v]))
    const random = new Random(baseSeed)
    let images = 0
    const checkImages = (): void => {
      for (let sample = 0; sample < 3; sample++) {
        const image = sample === 0 ? domain.durableImage() : domain.crashImage(() => random.chance(0.5))
        images++
        const recovered = openOnDomain<string>(SimulatedDomain.fromImage(image), options)
        for (const key of deleted) expect(recovered.has(key), `${key} resurrected (seed ${baseSeed})`).toBe(false)
        for (const [key, value] of expected) expect(recovered.get(key)).toBe(value)
      }
    }
    domain.onEvent = checkImages
    const result = await db.compact()
    // Tombstones survive the first pass while older segments still hold
    // superseded puts. Once those are cleaned and the tombstones' segment is
    // sealed (new writes move the head on), a second pass drops them.
    domain.onEvent = undefined
    for (let i = 0; i < 100; i++) {
      db.putSync(`filler${i}`, valueOf(`filler${i}`, i, 700))
      expected.set(`filler${i}`, valueOf(`filler${i}`, i, 700))
    }
    for (let i = 0; i < 100; i++) db.putSync(`filler${i}`, valueOf(`filler${i}`, i, 700))
    domain.onEvent = checkImages
    await db.compact()
    domain.onEvent = undefined
    expect(result.segmentsCleaned).toBeGreaterThan(0)
    expect(images).toBeGreaterThan(50)
    expect(db.stats().tombstonesDropped).toBeGreaterThan(0)
    const after = openOnDomain<string>(SimulatedDomain.fromImage(domain.durableImage()), options)
    for (const key of deleted) expect(after.has(key)).toBe(false)
    expect(after.verify().problems).toEqual([])
  })

  it('stats report capacity, live bytes, garbage and write amplification consistently', async () => {
    const db = openOnDomain<string>(new SimulatedDomain(1024 * 1024), { valueEncoding: 'utf8', segmentSize: '64KiB', backgroundCompaction: false })
    // Keys 0-19 first, then only keys 0-9 overwritten: sealed segments keep
    // live records of keys 10-19 among the garbage, which compaction copies.
    for (let i = 0; i < 20; i++) db.putSync(`k${i}`, 'x'.repeat(500))
    for (let i = 0; i < 300; i++) db.putSync(`k${i % 10}`, 'x'.repeat(500))
    const s = db.stats()
    expect(s.usedBytes).toBeGreaterThan(s.liveBytes)
    expect(s.liveBytes).toBeGreaterThanOrEqual(20 * 500)
    expect(s.writeAmplification).toBe(1)
    expect(s.garbageRatio).toBeGreaterThan(0.5)
    expect(s.segmentsInUse + s.segmentsFree).toBe(s.segments)
    await db.compact()
    const t = db.stats()
    expect(t.garbageRatio).toBeLessThan(s.garbageRatio)
    expect(t.writeAmplification).toBeGreaterThan(1)
    expect(t.bytesCopied).toBeGreaterThan(0)
  })
})

describe('growth with large batches', () => {
  it('grows instead of failing when segments can only be filled in part (batches over half a segment)', async () => {
    const file = tempFile()
    const db = await open<string>(file, { size: '1MiB', segmentSize: '64KiB', valueEncoding: 'utf8' })
    for (let i = 0; i < 3000; i += 40) {
      await db.batch(Array.from({ length: 40 }, (_, n) => ({ type: 'put' as const, key: `g-${i + n}`, value: 'x'.repeat(1000) })))
    }
    const stats = db.stats()
    expect(db.count).toBe(3000)
    expect(stats.growths).toBeGreaterThan(0)
    expect(db.verify().problems).toEqual([])
    await db.close()
  })
})
