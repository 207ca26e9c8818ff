/**
 * The public API on real daxfiles, on ext4 (os.tmpdir()) and on tmpfs
 * (/dev/shm): reads, writes, scans, encodings, the cache, group commit and
 * reopening.
 */
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { open, type DaxKV, type OpenOptions, type RangeOptions, type ValueEncoding } from '../src/index.js'
import { below, compactBounded, compareBytes, entries, FILE_SYSTEMS, random, randomBytes, seedNote, SEED, tempDir } from './helpers.js'

/** `auto` falls back to msync on these non-DAX filesystems, unless the run forces the dax code path. */
const EXPECTED_MODE = process.env.DAXKV_MODE === 'forced-dax' ? 'forced-dax' : 'msync'

describe.each(FILE_SYSTEMS)('on $name', ({ parent }) => {
  let counter = 0
  function fresh(): string {
    return path.join(tempDir(parent), `db-${++counter}.dax`)
  }

  async function withDb<V = any>(options: OpenOptions, body: (db: DaxKV<V>, file: string) => Promise<void> | void, file = fresh()): Promise<string> {
    const db = await open<V>(file, { size: '2MiB', ...options })
    try {
      await body(db, file)
    } finally {
      if (!db.closed) await db.close()
    }
    return file
  }

  it('open creates a preallocated daxfile of the requested size, in msync mode', async () => {
    const file = fresh()
    expect(fs.existsSync(file)).toBe(false)
    const db = await open(file, { size: '2MiB' })
    expect(fs.statSync(file).size).toBe(2 * 1024 * 1024)
    // Fully allocated: no holes.
    expect(fs.statSync(file).blocks * 512).toBeGreaterThanOrEqual(2 * 1024 * 1024)
    expect(db.mode).toBe(EXPECTED_MODE)
    const stats = db.stats()
    expect(stats.mode).toBe(EXPECTED_MODE)
    expect(stats.fileBytes).toBe(2 * 1024 * 1024)
    expect(stats.segments * stats.segmentBytes).toBe(stats.fileBytes)
    expect(stats.keys).toBe(0)
    expect(stats.statxDax).toBe(false)
    expect(stats.sync).toBe(true)
    expect(db.path).toBe(file)
    expect(db.count).toBe(0)
    expect(db.recovery.tornTail).toBeUndefined()
    // No temporary file is left next to it.
    expect(fs.readdirSync(path.dirname(file))).toEqual([path.basename(file)])
    await db.close()
    expect(db.closed).toBe(true)
  })

  it('get, getMany and has see exactly what put, del and batch committed', async () => {
    await withDb({}, async (db) => {
      expect(db.get('a')).toBeUndefined()
      expect(db.has('a')).toBe(false)
      await db.put('a', 1)
      await db.put('b', { two: 2 })
      expect(db.get('a')).toBe(1)
      expect(db.get('b')).toEqual({ two: 2 })
      expect(db.has('a')).toBe(true)
      await db.put('a', 'one')
      expect(db.get('a')).toBe('one')
      await db.del('a')
      expect(db.get('a')).toBeUndefined()
      expect(db.has('a')).toBe(false)
      await db.del('never-there')
      await db.batch([
        { type: 'put', key: 'c', value: 3 },
        { type: 'put', key: 'd', value: 4 },
        { type: 'del', key: 'b' },
        { type: 'put', key: 'c', value: 33 },
      ])
      expect(db.getMany(['a', 'b', 'c', 'd', 'e'])).toEqual([undefined, undefined, 33, 4, undefined])
      expect(db.count).toBe(2)
      expect(entries(db)).toEqual([
        ['c', 33],
        ['d', 4],
      ])
      await db.batch([])
      expect(db.count).toBe(2)
    })
  })

  it('putSync, delSync and batchSync are visible when they return and survive a reopen', async () => {
    const file = await withDb({}, (db) => {
      db.putSync('x', [1, 2, 3])
      expect(db.get('x')).toEqual([1, 2, 3])
      db.putSync('y', 'why')
      db.delSync('x')
      expect(db.has('x')).toBe(false)
      db.batchSync([
        { type: 'put', key: 'z', value: null },
        { type: 'del', key: 'y' },
        { type: 'put', key: 'w', value: true },
      ])
      expect(db.getMany(['w', 'x', 'y', 'z'])).toEqual([true, undefined, undefined, null])
      expect(db.has('z')).toBe(true)
    })
    await withDb({}, (db) => expect(entries(db)).toEqual([['w', true], ['z', null]]), file)
  })

  it('range and keys honour every combination of gt/gte/lt/lte, reverse and limit', async () => {
    await withDb({}, async (db) => {
      const present = ['b', 'd', 'd0', 'f', 'h', 'j']
      await db.batch(present.map((key, i) => ({ type: 'put' as const, key, value: i })))
      const probes = ['a', 'b', 'c', 'd', 'd0', 'e', 'j', 'k']
      const lowers: [string, Partial<RangeOptions>, (k: string) => boolean][] = [['none', {}, () => true]]
      const uppers: [string, Partial<RangeOptions>, (k: string) => boolean][] = [['none', {}, () => true]]
      for (const p of probes) {
        lowers.push([`gt ${p}`, { gt: p }, (k) => k > p], [`gte ${p}`, { gte: p }, (k) => k >= p])
        uppers.push([`lt ${p}`, { lt: p }, (k) => k < p], [`lte ${p}`, { lte: p }, (k) => k <= p])
      }
      let combos = 0
      for (const [ln, lower, lok] of lowers) {
        for (const [un, upper, uok] of uppers) {
          for (const reverse of [false, true]) {
            for (const limit of [undefined, -1, 0, 1, 2, 10]) {
              const options: RangeOptions = { ...lower, ...upper, reverse }
              if (limit !== undefined) options.limit = limit
              let expected = present.filter((k) => lok(k) && uok(k))
              if (reverse) expected = expected.reverse()
              if (limit !== undefined && limit >= 0) expected = expected.slice(0, limit)
              const context = `${ln} / ${un} reverse ${reverse} limit ${limit}`
              expect([...db.range(options)].map(([k]) => k), context).toEqual(expected)
              expect([...db.keys(options)], context).toEqual(expected)
              combos++
            }
          }
        }
      }
      expect(combos).toBe(17 * 17 * 2 * 6)
      // Values come with their keys.
      expect([...db.range({ gte: 'd', lt: 'h' })]).toEqual([
        ['d', 1],
        ['d0', 2],
        ['f', 3],
      ])
    })
  })

  it('range rejects a bad limit and non-object options', async () => {
    await withDb({}, async (db) => {
      await db.put('a', 1)
      expect(() => [...db.range({ limit: 1.5 })]).toThrow(RangeError)
      expect(() => [...db.range({ limit: -2 })]).toThrow(RangeError)
      expect(() => [...db.range(null as unknown as RangeOptions)]).toThrow(TypeError)
    })
  })

  it('binary keys sort bytewise, bytes of 0x80 and above after ASCII, and come back as Buffers', async () => {
    const next = random(SEED)
    await withDb({ keyEncoding: 'binary', valueEncoding: 'json' }, async (db) => {
      const fixed = [[0x00], [0x00, 0x00], [0x01], [0x7f], [0x80], [0x80, 0x00], [0xc3, 0xa9], [0xfe, 0xff], [0xff], [0xff, 0xff, 0xff]].map((b) =>
        Buffer.from(b),
      )
      const randomKeys = Array.from({ length: 60 }, () => randomBytes(next, 1 + below(next, 6)))
      const all = new Map<string, Buffer>()
      for (const key of [...fixed, ...randomKeys]) all.set(key.toString('hex'), key)
      for (const [hex, key] of all) await db.put(key, hex)
      const expected = [...all.values()].sort(compareBytes)
      const got = [...db.range()]
      expect(got.map(([k]) => Buffer.isBuffer(k))).toEqual(expected.map(() => true))
      expect(got.map(([k]) => (k as Buffer).toString('hex')), seedNote()).toEqual(expected.map((k) => k.toString('hex')))
      expect(got.map(([, v]) => v), seedNote()).toEqual(expected.map((k) => k.toString('hex')))
      // Bounds are bytes too: everything from 0x80 up.
      const high = [...db.keys({ gte: Buffer.from([0x80]) })].map((k) => (k as Buffer).toString('hex'))
      expect(high, seedNote()).toEqual(expected.filter((k) => k[0]! >= 0x80).map((k) => k.toString('hex')))
      // A view into a larger buffer is the key it shows, not its whole backing store.
      const backing = Buffer.from([0x11, 0xff, 0xff, 0xff, 0x22])
      expect(db.get(backing.subarray(1, 4))).toBe('ffffff')
      expect(db.get(new Uint8Array(backing.buffer, backing.byteOffset + 1, 1))).toBe('ff')
      // A string and its UTF-8 bytes name the same key.
      await db.put('hé', 'string')
      expect(db.get(Buffer.from('hé', 'utf8'))).toBe('string')
    })
  })

  it('utf8 keys with non-ASCII characters sort as their UTF-8 bytes, not as UTF-16 code units', async () => {
    await withDb({}, async (db) => {
      // '\u{1F600}' is a surrogate pair (0xD83D...) and so sorts before '\uE000' in UTF-16, but after it in UTF-8.
      const keys = ['z', 'é', 'ÿ', 'Ā', '\u07ff', '\u0800', '\uE000', '\uFFFD', '\u{1F600}', '\u{10000}', 'a\u0000b', 'a', 'ab', '中文']
      for (const key of keys) await db.put(key, key)
      const expected = [...keys].sort((a, b) => compareBytes(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
      expect([...db.keys()]).toEqual(expected)
      expect([...db.range({ reverse: true })].map(([k, v]) => [k, v])).toEqual(expected.reverse().map((k) => [k, k]))
      expect([...db.keys({ gt: '\uE000', lt: '\u{1F600}' })]).toEqual(['\uFFFD', '\u{10000}'])
      for (const key of keys) expect(db.get(key)).toBe(key)
    })
  })

  it('msgpack keeps nested objects, arrays, Buffers, Dates, null, numbers and strings, also after a reopen', async () => {
    const value = {
      n: 1.5,
      big: 2 ** 40,
      neg: -7,
      s: 'text ✓',
      yes: true,
      nil: null,
      list: [1, 'two', [3], { four: 4 }],
      buf: Buffer.from([0, 1, 2, 255]),
      when: new Date('2020-02-29T12:34:56.789Z'),
      deep: { a: { b: { c: { d: 'deep' } } } },
    }
    const file = await withDb({}, async (db) => {
      await db.put('v', value)
      await db.put('nothing', null)
      await db.put('zero', 0)
      await db.put('empty', '')
      expect(db.get('v')).toEqual(value)
      expect(db.get('nothing')).toBeNull()
      expect(db.get('nothing')).toBeNull()
      expect(db.has('nothing')).toBe(true)
      expect(db.get('zero')).toBe(0)
      expect(db.get('empty')).toBe('')
    })
    await withDb(
      {},
      (db) => {
        const got = db.get('v') as typeof value
        expect(got).toEqual(value)
        expect(Buffer.isBuffer(got.buf)).toBe(true)
        expect(got.when).toBeInstanceOf(Date)
        expect(db.getMany(['nothing', 'zero', 'empty'])).toEqual([null, 0, ''])
      },
      file,
    )
  })

  it('json, utf8 and binary value encodings store and return their values, also after a reopen', async () => {
    const cases: [ValueEncoding, unknown][] = [
      ['json', { a: [1, 'b', null], c: { d: false } }],
      ['json', 'just a string'],
      ['utf8', 'héllo wörld ✓ \u{1F600}'],
      ['utf8', ''],
      ['binary', Buffer.from([0, 255, 128, 7])],
      ['binary', Buffer.alloc(0)],
    ]
    for (const [valueEncoding, value] of cases) {
      const file = await withDb({ valueEncoding }, async (db) => {
        await db.put('k', value)
        expect(db.get('k'), `${valueEncoding}`).toEqual(value)
      })
      await withDb({ valueEncoding }, (db) => expect(db.get('k'), `${valueEncoding} after reopen`).toEqual(value), file)
    }
  })

  it('returned Buffers are copies: mutating one does not change a later get or range', async () => {
    await withDb({ valueEncoding: 'binary' }, async (db) => {
      await db.put('k', Buffer.from('original'))
      const first = db.get('k') as Buffer
      first.fill(0x21)
      expect((db.get('k') as Buffer).toString()).toBe('original')
      const [[, fromRange]] = [...db.range()] as [[unknown, Buffer]]
      fromRange.fill(0x21)
      expect((db.get('k') as Buffer).toString()).toBe('original')
      // The value given to put is not kept by reference either.
      const given = Buffer.from('given')
      await db.put('g', given)
      given.fill(0x21)
      expect((db.get('g') as Buffer).toString()).toBe('given')
    })
    await withDb({ cacheSize: 0 }, async (db) => {
      await db.put('k', { buf: Buffer.from('inner') })
      const got = db.get('k') as { buf: Buffer }
      got.buf.fill(0x21)
      expect((db.get('k') as { buf: Buffer }).buf.toString()).toBe('inner')
    })
  })

  it('the value cache is invalidated by every kind of write', async () => {
    await withDb({}, async (db) => {
      await db.put('k', { v: 1 })
      expect(db.get('k')).toEqual({ v: 1 })
      expect(db.get('k')).toEqual({ v: 1 })
      expect(db.stats().cache.hits).toBeGreaterThanOrEqual(1)
      await db.put('k', { v: 2 })
      expect(db.get('k')).toEqual({ v: 2 })
      db.putSync('k', { v: 3 })
      expect(db.get('k')).toEqual({ v: 3 })
      await db.batch([{ type: 'put', key: 'k', value: { v: 4 } }])
      expect(db.get('k')).toEqual({ v: 4 })
      db.batchSync([{ type: 'put', key: 'k', value: { v: 5 } }])
      expect(db.get('k')).toEqual({ v: 5 })
      await db.del('k')
      expect(db.get('k')).toBeUndefined()
      db.putSync('k', null)
      expect(db.get('k')).toBeNull()
      db.delSync('k')
      expect(db.get('k')).toBeUndefined()
      await db.put('k', { v: 6 })
      expect([...db.range()]).toEqual([['k', { v: 6 }]])
      await db.put('k', { v: 7 })
      expect(db.get('k')).toEqual({ v: 7 })
    })
  })

  it('group commit: 100 puts issued in one tick share fewer than 100 batches, all resolve and all read back', async () => {
    await withDb({}, async (db) => {
      const before = db.stats().batchesWritten
      const promises = Array.from({ length: 100 }, (_, i) => db.put(`key-${String(i).padStart(3, '0')}`, { i }))
      // Nothing is visible before the commit point.
      expect(db.count).toBe(0)
      await Promise.all(promises)
      const batches = db.stats().batchesWritten - before
      expect(batches).toBeGreaterThanOrEqual(1)
      expect(batches).toBeLessThan(100)
      expect(db.stats().recordsWritten).toBe(100)
      for (let i = 0; i < 100; i++) expect(db.get(`key-${String(i).padStart(3, '0')}`)).toEqual({ i })
      expect(db.count).toBe(100)
    })
  })

  it('close commits writes queued in the same tick, and a reopen after a clean close keeps everything', async () => {
    const next = random(SEED + 3)
    const model = new Map<string, unknown>()
    const file = fresh()
    let db = await open(file, { size: '2MiB' })
    // Records the log must hold: every put, and every delete of a present key (a delete of an absent one writes nothing).
    let records = 1
    for (let i = 0; i < 300; i++) {
      const key = `k${below(next, 120)}`
      if (next() < 0.2) {
        await db.del(key)
        if (model.delete(key)) records++
      } else {
        records++
        const value = { i, pad: 'x'.repeat(below(next, 2000)) }
        await db.put(key, value)
        model.set(key, value)
      }
    }
    const last = db.put('queued', 'at close')
    model.set('queued', 'at close')
    await db.close()
    await last
    // The log itself, not the index checkpoint of that close, must hold every write.
    db = await open(file, { indexCheckpoint: false })
    const expected = [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    expect(entries(db), seedNote()).toEqual(expected)
    expect(db.recovery.tornTail).toBeUndefined()
    expect(db.recovery.records).toBeGreaterThanOrEqual(records)
    await db.close()
  })

  it('a store opened with sync: false reopens with all its data after close', async () => {
    const file = fresh()
    const db = await open(file, { size: '2MiB', sync: false, segmentSize: '64KiB' })
    expect(db.stats().sync).toBe(false)
    for (let i = 0; i < 200; i++) db.putSync(`k${i}`, 'v'.repeat(500) + i)
    await db.put('async', 1)
    db.delSync('k0')
    expect(db.stats().segmentsInUse).toBeGreaterThan(1)
    await db.close()
    const again = await open(file)
    expect(again.count).toBe(200)
    expect(again.get('k0')).toBeUndefined()
    expect(again.get('k199')).toBe('v'.repeat(500) + 199)
    expect(again.get('async')).toBe(1)
    expect(again.recovery.tornTail).toBeUndefined()
    await again.close()
  })

  it('a reopen ignores size and segmentSize options and keeps the geometry it was created with', async () => {
    const file = await withDb({ size: '1MiB', segmentSize: '64KiB' }, async (db) => {
      await db.put('a', 1)
    })
    await withDb(
      { size: '8MiB', segmentSize: '1MiB' },
      (db) => {
        expect(db.stats().fileBytes).toBe(1024 * 1024)
        expect(db.stats().segmentBytes).toBe(64 * 1024)
        expect(db.get('a')).toBe(1)
      },
      file,
    )
  })
})

describe('key and value identity', () => {
  async function scratch<V = any>(options: OpenOptions = {}): Promise<DaxKV<V>> {
    const parent = FILE_SYSTEMS[FILE_SYSTEMS.length - 1]!.parent
    return open<V>(path.join(tempDir(parent), 'db.dax'), { size: '1MiB', ...options })
  }

  it('a binary value is stored as it was when put was called, even if the caller reuses its buffer before the commit', async () => {
    const db = await scratch<Buffer>({ valueEncoding: 'binary' })
    const reused = Buffer.from('first')
    const first = db.put('a', reused)
    reused.write('later')
    const second = db.put('b', reused)
    reused.write('third')
    await Promise.all([first, second])
    expect([db.get('a')?.toString(), db.get('b')?.toString()]).toEqual(['first', 'later'])
    await db.close()
  })

  it('distinct string keys never share a slot: a lone surrogate is refused rather than stored as U+FFFD', async () => {
    const db = await scratch()
    await db.put('\uFFFD', 'replacement character')
    let outcome: string
    try {
      await db.put('\uD800', 'lone surrogate')
      outcome = db.get('\uFFFD') === 'replacement character' ? 'kept apart' : `'\\uFFFD' now reads ${JSON.stringify(db.get('\uFFFD'))}`
    } catch (error) {
      outcome = error instanceof TypeError ? 'kept apart' : String(error)
    }
    expect(outcome).toBe('kept apart')
    await db.close()
  })

  it("every key that keys() lists with keyEncoding 'utf8' reads back with get()", async () => {
    const db = await scratch()
    let stored = true
    try {
      await db.put(Buffer.from([0x61, 0xff, 0x62]), 'not UTF-8')
    } catch (error) {
      // Refusing bytes that are not UTF-8 (as a TypeError) is as good as keeping them exact.
      expect(error).toBeInstanceOf(TypeError)
      stored = false
    }
    await db.put('plain', 'utf8')
    const unreadable = [...db.keys()].filter((key) => db.get(key) === undefined)
    expect(unreadable.map((k) => JSON.stringify(k)), `stored: ${stored}`).toEqual([])
    await db.close()
  })
})

describe('live scans', () => {
  it('a range scan interleaved with writes, deletes and compaction never repeats a key, never skips one that stayed, and gives current values', async () => {
    const next = random(SEED + 9)
    const parent = FILE_SYSTEMS[FILE_SYSTEMS.length - 1]!.parent
    const db = await open<string>(path.join(tempDir(parent), 'db.dax'), { size: '1MiB', segmentSize: '64KiB', valueEncoding: 'utf8' })
    const model = new Map<string, string>()
    const keyOf = (n: number): string => `k${String(n).padStart(4, '0')}`
    for (let n = 0; n < 2000; n += 2) {
      model.set(keyOf(n), `v${n}`.padEnd(200, '.'))
      await db.put(keyOf(n), model.get(keyOf(n))!)
    }
    const atStart = new Set(model.keys())
    const deleted = new Set<string>()
    const seen: string[] = []
    for (const [key, value] of db.range({ gte: keyOf(100), lt: keyOf(1900) })) {
      const context = seedNote(`after ${seen.length} entries`)
      expect(value, `${context}: value of ${String(key)}`).toBe(model.get(key as string))
      if (seen.length > 0) expect((key as string) > seen[seen.length - 1]!, `${context}: order`).toBe(true)
      seen.push(key as string)
      // Between steps: overwrite and delete around the cursor, and let compaction move records.
      const r = next()
      const target = keyOf(below(next, 2000))
      if (r < 0.4) {
        const value = `w${seen.length}`.padEnd(300, '!')
        db.putSync(target, value)
        model.set(target, value)
      } else if (r < 0.6) {
        db.delSync(target)
        model.delete(target)
        deleted.add(target)
      } else if (r < 0.62) {
        await compactBounded(db)
      }
    }
    const inBounds = (k: string): boolean => k >= keyOf(100) && k < keyOf(1900)
    const skipped = [...atStart].filter((k) => inBounds(k) && !deleted.has(k) && !seen.includes(k))
    expect(skipped, seedNote('keys that stayed but were not produced')).toEqual([])
    expect(db.stats().compactions, 'the scan should have run alongside compaction').toBeGreaterThan(0)
    await db.close()
  })
})
