/**
 * One test per error case: each checks the error's class and code, and that
 * nothing acknowledged before it is lost afterwards.
 */
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { DaxKVError, ErrorCode, open, type DaxKV, type OpenOptions, type ValueEncoding } from '../src/index.js'
import { SEGMENT_HEADER_BYTES, SUPERBLOCK_BYTES, SUPERBLOCK_SLOT_BYTES } from '../src/format/constants.js'
import { segmentHeaderOffset } from '../src/format/segment.js'
import { decodeSuperblock, encodeSuperblock } from '../src/format/superblock.js'
import { native } from '../src/platform/native.js'
import { batchesOf, patch, superblockOf } from './daxfile-surgery.js'
import { below, caught, expectCode, random, randomBytes, rejection, seedNote, SEED, tempDir } from './helpers.js'

const ROOT = path.resolve(import.meta.dirname, '..')
const DIST = path.join(ROOT, 'dist', 'index.js')

function fresh(parent = os.tmpdir()): string {
  return path.join(tempDir(parent), 'db.dax')
}

/** A closed 1 MiB daxfile with 64 KiB segments whose first `segments` segments hold acknowledged data. */
async function multiSegmentFile(segments: number): Promise<{ file: string; model: Map<string, string> }> {
  const file = fresh()
  const db = await open<string>(file, { size: '1MiB', segmentSize: '64KiB' })
  const model = new Map<string, string>()
  for (let i = 0; db.stats().segmentsInUse <= segments; i++) {
    const value = `${i}:`.padEnd(1500, 'v')
    db.putSync(`key-${String(i).padStart(4, '0')}`, value)
    model.set(`key-${String(i).padStart(4, '0')}`, value)
  }
  await db.close()
  return { file, model }
}

/**
 * Opens a damaged file: 'refused or intact' when the open fails with
 * DAXKV_CORRUPTION or returns exactly the acknowledged data; otherwise a
 * description of the wrong data it returned.
 */
async function refusedOrIntact(file: string, model: Map<string, string>): Promise<string> {
  let db: DaxKV<string>
  try {
    db = await open<string>(file)
  } catch (error) {
    return error instanceof DaxKVError && error.code === ErrorCode.CORRUPTION ? 'refused or intact' : `refused with ${String(error)}`
  }
  try {
    const missing = [...model.keys()].filter((k) => db.get(k) !== model.get(k))
    if (missing.length === 0 && db.count === model.size) return 'refused or intact'
    return `opened with ${missing.length} of ${model.size} acknowledged key(s) missing or wrong (${missing.slice(0, 3).join(', ')}, ...)`
  } finally {
    await db.close()
  }
}

async function expectOpenFails(file: string, code: string, options: OpenOptions = {}): Promise<DaxKVError> {
  const error = await rejection(open(file, options), `open ${file} should fail with ${code}`)
  expectCode(error, code, file)
  return error as DaxKVError
}

describe('DAXKV_FULL', () => {
  const limits: [string, OpenOptions][] = [
    ['autoGrow off', { size: '256KiB', autoGrow: false }],
    ['at maxSize', { size: '256KiB', maxSize: '512KiB' }],
  ]

  /** Fills a fresh file with unique keys (nothing to reclaim) until a put fails; returns the store, what was acknowledged and the error. */
  async function fill(limit: OpenOptions): Promise<{ file: string; db: DaxKV<Buffer>; acked: Map<string, Buffer>; full: unknown }> {
    const next = random(SEED)
    const file = fresh()
    const db = await open<Buffer>(file, { ...limit, valueEncoding: 'binary' })
    const acked = new Map<string, Buffer>()
    let full: unknown
    for (let i = 0; i < 5000 && full === undefined; i++) {
      const key = `k${String(i).padStart(4, '0')}`
      const value = randomBytes(next, 500 + below(next, 1500))
      try {
        db.putSync(key, value)
        acked.set(key, value)
      } catch (error) {
        full = error
      }
    }
    return { file, db, acked, full }
  }

  for (const [what, limit] of limits) {
    it(`a full daxfile (${what}) refuses a put with DAXKV_FULL, keeps every acknowledged key readable, and reopens with all of them`, async () => {
      const { file, db, acked, full } = await fill(limit)
      expectCode(full, ErrorCode.FULL, seedNote())
      expect(acked.size).toBeGreaterThan(50)
      expect(db.stats().fileBytes).toBeLessThanOrEqual(limit.maxSize === undefined ? 256 * 1024 : 512 * 1024)
      for (const [key, value] of acked) expect(db.get(key), `${key} ${seedNote()}`).toEqual(value)
      expect(db.count).toBe(acked.size)
      await db.close()
      const again = await open<Buffer>(file, { ...limit, valueEncoding: 'binary' })
      expect(again.count).toBe(acked.size)
      for (const [key, value] of acked) expect(again.get(key), `${key} after reopen ${seedNote()}`).toEqual(value)
      expect(again.recovery.tornTail).toBeUndefined()
      await again.close()
    })

    it(`after DAXKV_FULL (${what}) the store is not latched: more puts fail with DAXKV_FULL, deletes work, and compaction makes room again`, async () => {
      const next = random(SEED + 1)
      const { file, db, acked, full } = await fill(limit)
      expectCode(full, ErrorCode.FULL, seedNote())
      expectCode(await rejection(db.put('big', Buffer.alloc(30_000))), ErrorCode.FULL, 'a second put')
      expectCode(caught(() => db.batchSync([{ type: 'put', key: 'b1', value: Buffer.alloc(30_000) }])), ErrorCode.FULL, 'a batch')
      expect(db.has('big')).toBe(false)
      expect(db.has('b1')).toBe(false)
      // The error message says deletes and compaction still work, and they must.
      const victims = [...acked.keys()].filter((_, i) => i % 2 === 0)
      for (const key of victims) {
        db.delSync(key)
        acked.delete(key)
      }
      await db.compact()
      for (let i = 0; i < 20; i++) {
        const value = randomBytes(next, 1000)
        db.putSync(`again${i}`, value)
        acked.set(`again${i}`, value)
      }
      expect(db.verify().problems.join('\n')).toBe('')
      await db.close()
      const again = await open<Buffer>(file, { ...limit, valueEncoding: 'binary' })
      expect(again.count).toBe(acked.size)
      for (const [key, value] of acked) expect(again.get(key), `${key} after reopen ${seedNote()}`).toEqual(value)
      await again.close()
    })
  }
})

describe('DAXKV_KEY_TOO_LARGE', () => {
  it('a key over 4096 bytes is refused by every call, and a key of exactly 4096 bytes works', async () => {
    const file = fresh()
    const db = await open(file, { size: '1MiB' })
    await db.put('before', 1)
    const tooLong = ['k'.repeat(4097), 'é'.repeat(2049), Buffer.alloc(4097, 1)]
    for (const key of tooLong) {
      expectCode(caught(() => db.get(key)), ErrorCode.KEY_TOO_LARGE)
      expectCode(caught(() => db.has(key)), ErrorCode.KEY_TOO_LARGE)
      expectCode(caught(() => db.putSync(key, 1)), ErrorCode.KEY_TOO_LARGE)
      expectCode(caught(() => db.delSync(key)), ErrorCode.KEY_TOO_LARGE)
      expectCode(await rejection(db.put(key, 1)), ErrorCode.KEY_TOO_LARGE)
      expectCode(await rejection(db.del(key)), ErrorCode.KEY_TOO_LARGE)
      expectCode(await rejection(db.batch([{ type: 'put', key: 'fine', value: 1 }, { type: 'put', key, value: 1 }])), ErrorCode.KEY_TOO_LARGE)
      expectCode(caught(() => [...db.range({ gte: key })]), ErrorCode.KEY_TOO_LARGE)
    }
    expect(db.has('fine')).toBe(false)
    const longest = 'x'.repeat(4096)
    await db.put(longest, 'ok')
    expect(db.get(longest)).toBe('ok')
    expect(db.get('before')).toBe(1)
    await db.close()
    const again = await open(file)
    expect(again.get(longest)).toBe('ok')
    expect(again.count).toBe(2)
    await again.close()
  })
})

describe('DAXKV_VALUE_TOO_LARGE', () => {
  it('a value larger than a segment is refused, a value that exactly fills one is stored', async () => {
    const file = fresh()
    const db = await open<Buffer>(file, { size: '1MiB', segmentSize: '64KiB', valueEncoding: 'binary' })
    await db.put('before', Buffer.from('b'))
    expectCode(caught(() => db.putSync('k', Buffer.alloc(70_000))), ErrorCode.VALUE_TOO_LARGE)
    expectCode(await rejection(db.put('k', Buffer.alloc(70_000))), ErrorCode.VALUE_TOO_LARGE)
    // 32-byte batch header + 8-byte record header + 1-byte key + value, aligned to 8, within 64 KiB - 64.
    const largest = 65536 - 64 - 32 - 8 - 1
    expectCode(caught(() => db.putSync('k', Buffer.alloc(largest + 1, 3))), ErrorCode.VALUE_TOO_LARGE)
    db.putSync('k', Buffer.alloc(largest, 3))
    expect(db.get('k')?.length).toBe(largest)
    expect(db.get('before')?.toString()).toBe('b')
    await db.close()
    const again = await open<Buffer>(file, { valueEncoding: 'binary' })
    expect(again.get('k')?.equals(Buffer.alloc(largest, 3))).toBe(true)
    await again.close()
  })

  it('a batch whose values fit one by one but not together is refused whole, and the store keeps working', async () => {
    const db = await open<Buffer>(fresh(), { size: '1MiB', segmentSize: '64KiB', valueEncoding: 'binary' })
    const ops = Array.from({ length: 5 }, (_, i) => ({ type: 'put' as const, key: `part${i}`, value: Buffer.alloc(20_000, i) }))
    expectCode(await rejection(db.batch(ops)), ErrorCode.VALUE_TOO_LARGE)
    expectCode(caught(() => db.batchSync(ops)), ErrorCode.VALUE_TOO_LARGE)
    expect(db.count).toBe(0)
    await db.put('after', Buffer.from('a'))
    expect(db.get('after')?.toString()).toBe('a')
    await db.close()
  })

  it('a batch too large for a segment fails alone: writes issued after it in the same tick still commit', async () => {
    const db = await open<Buffer>(fresh(), { size: '1MiB', segmentSize: '64KiB', valueEncoding: 'binary' })
    const ops = Array.from({ length: 5 }, (_, i) => ({ type: 'put' as const, key: `part${i}`, value: Buffer.alloc(20_000, i) }))
    const tooBig = db.batch(ops)
    const small = db.put('small', Buffer.from('s'))
    const [bigResult, smallResult] = await Promise.allSettled([tooBig, small])
    expect(bigResult.status).toBe('rejected')
    expect(smallResult.status === 'fulfilled' ? 'fulfilled' : `rejected: ${String(smallResult.reason)}`).toBe('fulfilled')
    expect(db.get('small')?.toString()).toBe('s')
    // The same through the synchronous path: the oversized batch queued first must not fail putSync.
    const queued = db.batch(ops)
    let syncError: unknown
    try {
      db.putSync('sync', Buffer.from('y'))
    } catch (error) {
      syncError = error
    }
    await queued.catch(() => undefined)
    expect(syncError === undefined ? 'committed' : String(syncError)).toBe('committed')
    await db.close()
  })
})

describe('DAXKV_ENCODING', () => {
  const cases: [ValueEncoding, string, () => unknown][] = [
    ['msgpack', 'a symbol', () => Symbol('s')],
    ['msgpack', 'a function', () => () => 1],
    ['msgpack', 'a BigInt beyond 64 bits', () => 2n ** 70n],
    ['msgpack', 'an object holding a symbol', () => ({ s: Symbol('s') })],
    ['json', 'a circular object', () => {
      const o: Record<string, unknown> = {}
      o.self = o
      return o
    }],
    ['json', 'a BigInt', () => 1n],
    ['json', 'a function', () => () => 1],
    ['json', 'a symbol', () => Symbol('s')],
    ['utf8', 'a number', () => 42],
    ['utf8', 'a Buffer', () => Buffer.from('x')],
    ['utf8', 'null', () => null],
    ['binary', 'a string', () => 'text'],
    ['binary', 'a number', () => 7],
    ['binary', 'an array of bytes', () => [1, 2, 3]],
  ]
  for (const [valueEncoding, what, make] of cases) {
    it(`${valueEncoding} refuses ${what} with DAXKV_ENCODING and writes nothing`, async () => {
      const db = await open(fresh('/dev/shm'), { size: '1MiB', valueEncoding })
      const good = valueEncoding === 'binary' ? Buffer.from('ok') : 'ok'
      await db.put('before', good)
      const batchesBefore = db.stats().batchesWritten
      expectCode(caught(() => db.putSync('k', make())), ErrorCode.ENCODING, what)
      expectCode(await rejection(db.put('k', make())), ErrorCode.ENCODING, what)
      expectCode(await rejection(db.batch([{ type: 'put', key: 'other', value: good }, { type: 'put', key: 'k', value: make() }])), ErrorCode.ENCODING, what)
      expect(db.stats().batchesWritten).toBe(batchesBefore)
      expect(db.has('k')).toBe(false)
      expect(db.has('other')).toBe(false)
      expect(db.get('before')).toEqual(good)
      await db.close()
    })
  }
})

describe('TypeError and RangeError for misuse (no code)', () => {
  function expectMisuse(error: unknown, kind: typeof TypeError | typeof RangeError, context: string): void {
    expect(error, context).toBeInstanceOf(kind)
    expect(error, context).not.toBeInstanceOf(DaxKVError)
    expect((error as { code?: unknown }).code, context).toBeUndefined()
  }

  it('an undefined value is a TypeError, in every write call', async () => {
    const db = await open(fresh('/dev/shm'), { size: '1MiB' })
    expectMisuse(caught(() => db.putSync('k', undefined)), TypeError, 'putSync')
    expectMisuse(await rejection(db.put('k', undefined)), TypeError, 'put')
    expectMisuse(await rejection(db.batch([{ type: 'put', key: 'k', value: undefined }])), TypeError, 'batch')
    expectMisuse(caught(() => db.batchSync([{ type: 'put', key: 'k', value: undefined }])), TypeError, 'batchSync')
    expect(db.count).toBe(0)
    await db.close()
  })

  it('a key that is not a string or Uint8Array is a TypeError, in every call', async () => {
    const db = await open(fresh('/dev/shm'), { size: '1MiB' })
    for (const key of [null, undefined, 42, {}, ['a'], true]) {
      const k = key as unknown as string
      const context = `key ${String(key)}`
      expectMisuse(caught(() => db.get(k)), TypeError, `get ${context}`)
      expectMisuse(caught(() => db.has(k)), TypeError, `has ${context}`)
      expectMisuse(caught(() => db.getMany([k])), TypeError, `getMany ${context}`)
      expectMisuse(caught(() => db.putSync(k, 1)), TypeError, `putSync ${context}`)
      expectMisuse(caught(() => db.delSync(k)), TypeError, `delSync ${context}`)
      expectMisuse(await rejection(db.put(k, 1)), TypeError, `put ${context}`)
      expectMisuse(await rejection(db.del(k)), TypeError, `del ${context}`)
    }
    expectMisuse(await rejection(db.batch('nope' as unknown as [])), TypeError, 'batch of a string')
    expectMisuse(await rejection(db.batch([{ type: 'upsert', key: 'k', value: 1 } as unknown as { type: 'put'; key: string; value: number }])), TypeError, 'batch op type')
    expectMisuse(await rejection(db.batch([null as unknown as { type: 'del'; key: string }])), TypeError, 'batch op null')
    expect(db.count).toBe(0)
    await db.close()
  })

  it('bad open options are TypeErrors or RangeErrors and create no file', async () => {
    const dir = tempDir()
    const file = path.join(dir, 'db.dax')
    const cases: [string, () => Promise<unknown>, typeof TypeError | typeof RangeError][] = [
      ['empty path', () => open(''), TypeError],
      ['non-string path', () => open(42 as unknown as string), TypeError],
      ['null options', () => open(file, null as unknown as OpenOptions), TypeError],
      ['unknown valueEncoding', () => open(file, { valueEncoding: 'yaml' as 'json' }), TypeError],
      ['unknown keyEncoding', () => open(file, { keyEncoding: 'ascii' as 'utf8' }), TypeError],
      ['unknown mode', () => open(file, { mode: 'fast' as 'auto' }), TypeError],
      ['negative cacheSize', () => open(file, { cacheSize: -1 }), RangeError],
      ['fractional cacheSize', () => open(file, { cacheSize: 1.5 }), RangeError],
      ['size not a size', () => open(file, { size: 'huge' }), RangeError],
      ['size below the minimum', () => open(file, { size: 4096 }), RangeError],
      ['size above the maximum', () => open(file, { size: '3GiB' }), RangeError],
      ['segmentSize not a power of two', () => open(file, { size: '1MiB', segmentSize: 100_000 }), RangeError],
      ['segmentSize below 64 KiB', () => open(file, { size: '1MiB', segmentSize: '4KiB' }), RangeError],
      ['negative checkpointInterval', () => open(file, { checkpointInterval: -1 }), RangeError],
      ['checkpointInterval not a size', () => open(file, { checkpointInterval: 'often' }), RangeError],
      ['a misspelt option', () => open(file, { sizee: '8MiB' } as unknown as OpenOptions), TypeError],
      ['an option open() does not know', () => open(file, { prefix: 'a' } as unknown as OpenOptions), TypeError],
      ['a boolean option given a string', () => open(file, { sync: 'false' } as unknown as OpenOptions), TypeError],
      ['maxSize above the largest daxfile', () => open(file, { maxSize: '4GiB' }), RangeError],
      ['size above maxSize', () => open(file, { size: '8MiB', maxSize: '4MiB' }), RangeError],
    ]
    for (const [what, attempt, kind] of cases) expectMisuse(await rejection(attempt()), kind, what)
    expect(fs.readdirSync(dir)).toEqual([])
  })
})

describe('DAXKV_NOT_DAXFILE', () => {
  const cases: [string, () => Buffer][] = [
    ['a random file of 1 MiB', () => randomBytes(random(SEED), 1024 * 1024)],
    ['a file of 1 MiB of zeros', () => Buffer.alloc(1024 * 1024)],
    ['an empty file', () => Buffer.alloc(0)],
    ['a tiny file', () => Buffer.from('hello\n')],
    ['a file one byte short of the smallest daxfile', () => Buffer.alloc(128 * 1024 - 1, 1)],
  ]
  for (const [what, make] of cases) {
    it(`${what} is refused with DAXKV_NOT_DAXFILE and left untouched`, async () => {
      const file = fresh()
      const content = make()
      fs.writeFileSync(file, content)
      await expectOpenFails(file, ErrorCode.NOT_DAXFILE)
      expect(fs.readFileSync(file).equals(content), seedNote()).toBe(true)
      // The failed open released the lock: a second attempt gets the same answer, not DAXKV_LOCKED.
      await expectOpenFails(file, ErrorCode.NOT_DAXFILE)
    })
  }

  it('a daxfile of a future format version is refused with DAXKV_NOT_DAXFILE', async () => {
    const file = fresh()
    await (await open(file, { size: '1MiB' })).close()
    const sb = superblockOf(file)
    const future = encodeSuperblock(sb, native.crc32c)
    future.writeUInt32LE(sb.formatVersion + 1, 8)
    future.writeUInt32LE(native.crc32c(future, 0, 60), 60)
    patch(file, 0, future)
    patch(file, SUPERBLOCK_SLOT_BYTES, future)
    const error = await expectOpenFails(file, ErrorCode.NOT_DAXFILE)
    expect(error.message).toMatch(/format version/)
  })
})

describe('DAXKV_CORRUPTION', () => {
  it('both superblock copies damaged is DAXKV_CORRUPTION, and the open changes nothing', async () => {
    const file = fresh()
    const db = await open(file, { size: '1MiB' })
    await db.put('k', 1)
    await db.close()
    patch(file, 20, Buffer.from([0xde, 0xad]))
    patch(file, SUPERBLOCK_SLOT_BYTES + 40, Buffer.from([0xbe, 0xef]))
    const before = fs.readFileSync(file)
    await expectOpenFails(file, ErrorCode.CORRUPTION)
    expect(fs.readFileSync(file).equals(before)).toBe(true)
    await expectOpenFails(file, ErrorCode.CORRUPTION)
  })

  it('a damaged batch in a sealed segment, followed by valid data, is DAXKV_CORRUPTION', async () => {
    const { file } = await multiSegmentFile(3)
    const batches = batchesOf(file, 0)
    expect(batches.length).toBeGreaterThan(3)
    expect(batchesOf(file, 1).length).toBeGreaterThan(0)
    const victim = batches[1]!
    const byte = fs.readFileSync(file)[victim.offset + 40]!
    patch(file, victim.offset + 40, Buffer.from([byte ^ 0x01]))
    const error = await expectOpenFails(file, ErrorCode.CORRUPTION)
    expect(error.message).toMatch(/sealed/)
  })

  it('the last batch of a sealed segment zeroed out is DAXKV_CORRUPTION (or harmless), never a silent gap in the log', async () => {
    const { file, model } = await multiSegmentFile(3)
    const batches = batchesOf(file, 0)
    const last = batches[batches.length - 1]!
    patch(file, last.offset, Buffer.alloc(last.length))
    // Recovery must not apply batches after a lost one: it would return a
    // log with a hole (a later delete without the put before it, or the reverse).
    expect(await refusedOrIntact(file, model)).toBe('refused or intact')
  })

  it('the header of a sealed segment zeroed out is DAXKV_CORRUPTION (or harmless), never a silently dropped segment', async () => {
    const { file, model } = await multiSegmentFile(3)
    const sb = superblockOf(file)
    expect(batchesOf(file, 1).length).toBeGreaterThan(0)
    patch(file, segmentHeaderOffset(1, sb.segmentBytes), Buffer.alloc(SEGMENT_HEADER_BYTES))
    expect(await refusedOrIntact(file, model)).toBe('refused or intact')
  })

  it('a daxfile truncated outside daxkv is DAXKV_CORRUPTION', async () => {
    const file = fresh()
    const db = await open(file, { size: '1MiB', segmentSize: '64KiB' })
    await db.put('k', 1)
    await db.close()
    fs.truncateSync(file, 512 * 1024)
    await expectOpenFails(file, ErrorCode.CORRUPTION)
  })

  it('a daxfile extended outside daxkv either opens with its data or is refused with DAXKV_CORRUPTION', async () => {
    const file = fresh()
    const db = await open(file, { size: '1MiB', segmentSize: '64KiB' })
    await db.put('k', 1)
    await db.close()
    fs.appendFileSync(file, Buffer.alloc(64 * 1024, 0xaa))
    let outcome: string
    try {
      const again = await open(file)
      outcome = again.get('k') === 1 && again.count === 1 ? 'opened intact' : `opened with ${JSON.stringify([...again.range()])}`
      await again.close()
    } catch (error) {
      outcome = error instanceof DaxKVError && error.code === ErrorCode.CORRUPTION ? 'opened intact' : String(error)
    }
    expect(outcome).toBe('opened intact')
  })
})

describe('superblock repair', () => {
  for (const slot of [0, 1] as const) {
    it(`one damaged superblock copy (copy ${slot}) is repaired from the other, with all data intact`, async () => {
      const file = fresh()
      let db = await open(file, { size: '1MiB' })
      for (let i = 0; i < 50; i++) await db.put(`k${i}`, i)
      await db.close()
      const clean = fs.readFileSync(file).subarray(0, SUPERBLOCK_BYTES)
      patch(file, slot * SUPERBLOCK_SLOT_BYTES + 24, Buffer.from([0x55, 0x55, 0x55]))
      const before = decodeSuperblock(clean, native.crc32c)
      db = await open(file)
      expect(db.recovery.superblockRepaired).toBe(slot)
      expect(db.count).toBe(50)
      for (let i = 0; i < 50; i++) expect(db.get(`k${i}`)).toBe(i)
      await db.close()
      // Both copies are valid again, and the file is the same file with the same geometry (later updates alternate between them).
      const image = fs.readFileSync(file)
      for (const copy of [image.subarray(0, SUPERBLOCK_BYTES), image.subarray(SUPERBLOCK_SLOT_BYTES, SUPERBLOCK_SLOT_BYTES + SUPERBLOCK_BYTES)]) {
        const check = decodeSuperblock(copy, native.crc32c)
        if (!check.ok || !before.ok) throw new Error(`a superblock copy is invalid after the repair: ${JSON.stringify(check)}`)
        const { fileId, fileBytes, segmentBytes, createdMs } = check.superblock
        expect({ fileId, fileBytes, segmentBytes, createdMs }).toEqual({
          fileId: before.superblock.fileId,
          fileBytes: before.superblock.fileBytes,
          segmentBytes: before.superblock.segmentBytes,
          createdMs: before.superblock.createdMs,
        })
      }
    })
  }
})

describe('DAXKV_LOCKED', () => {
  beforeAll(() => {
    // The child processes import the built package; global setup normally builds it.
    if (!fs.existsSync(DIST)) {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], {
        stdio: 'inherit',
      })
    }
  })

  const childScript = (body: string): string => `
    import { open } from ${JSON.stringify(pathToFileURL(DIST).href)}
    const file = process.env.DAXKV_TEST_FILE
    ${body}`

  it('a second open in the same process is DAXKV_LOCKED until the first closes', async () => {
    const file = fresh()
    const db = await open(file, { size: '1MiB' })
    await db.put('k', 'first')
    await expectOpenFails(file, ErrorCode.LOCKED)
    // The refused open did not disturb the holder.
    expect(db.get('k')).toBe('first')
    await db.put('k2', 'still writable')
    await db.close()
    const again = await open(file)
    expect(again.get('k')).toBe('first')
    expect(again.get('k2')).toBe('still writable')
    await again.close()
  })

  it('an open from another process is DAXKV_LOCKED while this process holds the file', async () => {
    const file = fresh()
    const db = await open(file, { size: '1MiB' })
    await db.put('k', 1)
    const output = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', childScript(`
        try { const db = await open(file); await db.close(); console.log('opened') }
        catch (error) { console.log(error.code) }`)],
      { env: { ...process.env, DAXKV_TEST_FILE: file }, encoding: 'utf8', cwd: ROOT },
    )
    expect(output.trim()).toBe(ErrorCode.LOCKED)
    expect(db.get('k')).toBe(1)
    await db.close()
  })

  it('a file held by another process is DAXKV_LOCKED here, and opens with every acknowledged write once that process is killed', async () => {
    const file = fresh()
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', childScript(`
        const db = await open(file, { size: '1MiB' })
        for (let i = 0; i < 100; i++) db.putSync('k' + i, i)
        console.log('ready')
        setInterval(() => {}, 1000)`)],
      { env: { ...process.env, DAXKV_TEST_FILE: file }, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('ready')) resolve()
        })
        child.once('exit', (code) => reject(new Error(`child exited with ${code} before it was ready: ${stderr}`)))
      })
      await expectOpenFails(file, ErrorCode.LOCKED)
    } finally {
      child.kill('SIGKILL')
      await exited
    }
    const db = await open(file)
    expect(db.count).toBe(100)
    for (let i = 0; i < 100; i++) expect(db.get(`k${i}`)).toBe(i)
    await db.close()
  })
})

describe('DAXKV_CLOSED', () => {
  it('every call after close fails with DAXKV_CLOSED, and close is idempotent', async () => {
    const db = await open(fresh('/dev/shm'), { size: '1MiB' })
    await db.put('k', 1)
    await db.put('l', 2)
    const scan = db.range()
    expect(scan.next().value).toEqual(['k', 1])
    const closing = db.close()
    expect(db.close()).toBe(closing)
    await closing
    expect(db.closed).toBe(true)
    const syncCalls: [string, () => unknown][] = [
      ['get', () => db.get('k')],
      ['getMany', () => db.getMany(['k'])],
      ['has', () => db.has('k')],
      ['count', () => db.count],
      ['stats', () => db.stats()],
      ['putSync', () => db.putSync('k', 2)],
      ['delSync', () => db.delSync('k')],
      ['batchSync', () => db.batchSync([{ type: 'put', key: 'k', value: 2 }])],
      ['range', () => [...db.range()]],
      ['keys', () => [...db.keys()]],
      ['a scan started before close', () => scan.next()],
    ]
    for (const [what, call] of syncCalls) expectCode(caught(call, what), ErrorCode.CLOSED, what)
    expectCode(await rejection(db.put('k', 2)), ErrorCode.CLOSED, 'put')
    expectCode(await rejection(db.del('k')), ErrorCode.CLOSED, 'del')
    expectCode(await rejection(db.batch([{ type: 'del', key: 'k' }])), ErrorCode.CLOSED, 'batch')
    await db.close()
  })

  it('a write issued after close has begun fails with DAXKV_CLOSED and is not stored', async () => {
    const file = fresh('/dev/shm')
    const db = await open(file, { size: '1MiB' })
    const closing = db.close()
    expectCode(await rejection(db.put('late', 1)), ErrorCode.CLOSED)
    await closing
    const again = await open(file)
    expect(again.has('late')).toBe(false)
    await again.close()
  })
})

describe('DAXKV_NOT_FOUND', () => {
  it('create: false on a missing file is DAXKV_NOT_FOUND and creates nothing', async () => {
    const dir = tempDir()
    const file = path.join(dir, 'missing.dax')
    await expectOpenFails(file, ErrorCode.NOT_FOUND, { create: false })
    expect(fs.readdirSync(dir)).toEqual([])
    // With the file present, create: false opens it.
    await (await open(file, { size: '1MiB' })).close()
    const db = await open(file, { create: false })
    expect(db.count).toBe(0)
    await db.close()
  })
})

describe('DAXKV_MODE_UNAVAILABLE', () => {
  for (const parent of [os.tmpdir(), '/dev/shm']) {
    it.skipIf(!fs.existsSync(parent))(`mode 'dax' on ${parent} (not DAX) is DAXKV_MODE_UNAVAILABLE, leaving no file and an existing daxfile intact`, async () => {
      const dir = tempDir(parent)
      const file = path.join(dir, 'db.dax')
      await expectOpenFails(file, ErrorCode.MODE_UNAVAILABLE, { mode: 'dax', size: '1MiB' })
      expect(fs.readdirSync(dir)).toEqual([])
      const db = await open(file, { size: '1MiB' })
      await db.put('k', 'v')
      await db.close()
      await expectOpenFails(file, ErrorCode.MODE_UNAVAILABLE, { mode: 'dax' })
      const again = await open(file, { mode: 'msync' })
      expect(again.get('k')).toBe('v')
      expect(again.mode).toBe('msync')
      await again.close()
    })
  }
})

describe('DAXKV_BAD_EXTENTS', () => {
  const fiemapSupported = (() => {
    const probe = path.join(tempDir(), 'probe')
    fs.writeFileSync(probe, Buffer.alloc(4096, 1))
    const fd = fs.openSync(probe, 'r')
    try {
      return native.fiemap(fd).supported
    } finally {
      fs.closeSync(fd)
    }
  })()
  if (!fiemapSupported) console.warn(`DAXKV_BAD_EXTENTS tests skipped: ${os.tmpdir()} has no FIEMAP`)

  /** A file of `size` bytes with a valid daxfile's superblock area written into it, and the rest made by `fill`. */
  async function withValidSuperblocks(fill: (fd: number, size: number) => void): Promise<string> {
    const source = fresh()
    await (await open(source, { size: '1MiB' })).close()
    const head = fs.readFileSync(source).subarray(0, 2 * SUPERBLOCK_SLOT_BYTES)
    const file = fresh()
    const fd = fs.openSync(file, 'w+')
    try {
      fill(fd, 1024 * 1024)
      fs.writeSync(fd, head, 0, head.length, 0)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    return file
  }

  it.skipIf(!fiemapSupported)('a file only fallocated (unwritten extents) is DAXKV_BAD_EXTENTS', async () => {
    const file = await withValidSuperblocks((fd, size) => native.fallocate(fd, 0, size))
    const fd = fs.openSync(file, 'r')
    const report = native.fiemap(fd)
    fs.closeSync(fd)
    expect(report.unwritten, 'setup: fallocate should leave unwritten extents').toBeGreaterThan(0)
    const error = await expectOpenFails(file, ErrorCode.BAD_EXTENTS)
    expect(error.message).toMatch(/unwritten/)
  })

  it.skipIf(!fiemapSupported)('a sparse file (holes) is DAXKV_BAD_EXTENTS', async () => {
    const file = await withValidSuperblocks((fd, size) => fs.ftruncateSync(fd, size))
    const error = await expectOpenFails(file, ErrorCode.BAD_EXTENTS)
    expect(error.message).toMatch(/holes/)
  })

  it.skipIf(!fiemapSupported)('the same superblocks in a fully written copy open fine', async () => {
    const file = await withValidSuperblocks((fd, size) => fs.writeSync(fd, Buffer.alloc(size), 0, size, 0))
    const db = await open(file)
    expect(db.count).toBe(0)
    await db.close()
  })
})

