/**
 * The encodings a daxfile records (superblock bytes 80 and 81; README,
 * "Encodings"): an open without them uses the recorded ones, an open that
 * asks for others is refused with DAXKV_ENCODING before anything is
 * written, except the raw view ('binary'); files from before they were
 * recorded behave as they always did; a code this daxkv does not know is
 * a typed error.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { valueCodec } from '../src/encoding.js'
import { KEY_ENCODING_CODES, VALUE_ENCODING_CODES } from '../src/format/superblock.js'
import { ErrorCode, open, type KeyEncoding, type OpenOptions, type ValueEncoding } from '../src/index.js'
import { recordEncodingCodes, superblockOf } from './daxfile-surgery.js'
import { caught, expectCode, rejection, tempDir } from './helpers.js'

const VALUE_ENCODINGS: readonly ValueEncoding[] = ['msgpack', 'json', 'utf8', 'binary']
const KEY_ENCODINGS: readonly KeyEncoding[] = ['utf8', 'binary']

/** Values each encoding stores, chosen so that most would not decode, or would decode differently, under another. */
const SAMPLES: Record<ValueEncoding, readonly unknown[]> = {
  msgpack: [{ a: 1, b: [true, null] }, 'text', 42, Buffer.from([0xc1, 0xff])],
  json: [{ a: 1, b: [true, null] }, 'text', 42],
  utf8: ['plain text', '\u00c1 is not MessagePack', '{"looks":"like json"}'],
  binary: [Buffer.from([0xc1, 0xff, 0x00]), Buffer.from('text'), Buffer.from([0x2a])],
}

let counter = 0
function fresh(): string {
  return path.join(tempDir('/dev/shm'), `enc-${++counter}.dax`)
}

/** A closed daxfile created with `options`, holding `values` under keys k0, k1, ... */
async function created(options: OpenOptions, values: readonly unknown[]): Promise<string> {
  const file = fresh()
  const db = await open(file, { size: '1MiB', ...options })
  for (const [i, value] of values.entries()) await db.put(`k${i}`, value)
  await db.close()
  return file
}

/** A digest of the daxfile and its index checkpoint, to show that a refused open wrote nothing. */
function digestOf(file: string): string {
  const hash = createHash('sha256').update(fs.readFileSync(file))
  if (fs.existsSync(`${file}.index`)) hash.update(fs.readFileSync(`${file}.index`))
  return hash.digest('hex')
}

describe('a daxfile records the encodings it was created with', () => {
  it('in superblock bytes 80 and 81 of both copies, the defaults when the options name none', async () => {
    const utf8 = await created({ valueEncoding: 'utf8', keyEncoding: 'binary' }, [])
    const defaults = await created({}, [])
    for (const slot of [0, 1] as const) {
      expect(VALUE_ENCODING_CODES[superblockOf(utf8, slot).valueEncodingCode]).toBe('utf8')
      expect(KEY_ENCODING_CODES[superblockOf(utf8, slot).keyEncodingCode]).toBe('binary')
      expect(VALUE_ENCODING_CODES[superblockOf(defaults, slot).valueEncodingCode]).toBe('msgpack')
      expect(KEY_ENCODING_CODES[superblockOf(defaults, slot).keyEncodingCode]).toBe('utf8')
    }
  })

  it("a 'utf8' store opened with 'msgpack' is refused with DAXKV_ENCODING naming both and what to do, and nothing is written", async () => {
    const file = await created({ valueEncoding: 'utf8' }, ['hello'])
    const before = digestOf(file)
    const error = await rejection(open(file, { valueEncoding: 'msgpack' }))
    expectCode(error, ErrorCode.ENCODING)
    const message = (error as Error).message
    expect(message).toContain(file)
    expect(message).toContain("created with valueEncoding 'utf8', but this open asks for 'msgpack'")
    expect(message).toContain("Open it with valueEncoding: 'utf8', or omit valueEncoding")
    expect(digestOf(file)).toBe(before)
    // The refused open released the file: the next one works.
    const db = await open(file, { valueEncoding: 'utf8' })
    expect(db.get('k0')).toBe('hello')
    await db.close()
  })

  it('an open without valueEncoding or keyEncoding uses the recorded ones', async () => {
    const file = await created({ valueEncoding: 'utf8', keyEncoding: 'binary' }, ['hello', '\u00c1'])
    const db = await open(file)
    expect(db.get('k0')).toBe('hello')
    expect([...db.range()]).toEqual([
      [Buffer.from('k0'), 'hello'],
      [Buffer.from('k1'), '\u00c1'],
    ])
    await db.put('k2', 'more')
    expect(db.stats().encodings).toEqual({ value: 'utf8', key: 'binary', recordedValue: 'utf8', recordedKey: 'binary' })
    expectCode(await rejection(db.put('k3', { not: 'a string' })), ErrorCode.ENCODING)
    await db.close()
  })

  it("'binary' is a raw view of a store of another encoding: reads give the stored bytes, writes store the bytes given", async () => {
    const file = await created({ valueEncoding: 'msgpack' }, [{ a: 1 }])
    const raw = await open<Buffer>(file, { valueEncoding: 'binary' })
    expect(raw.stats().encodings).toEqual({ value: 'binary', key: 'utf8', recordedValue: 'msgpack', recordedKey: 'utf8' })
    const stored = raw.get('k0')!
    expect(valueCodec('msgpack').decode(stored, 0, stored.length)).toEqual({ a: 1 })
    // Bytes in the recorded encoding, copied through the view, read back as values.
    await raw.put('copy', stored)
    // Bytes that are not: stored as given, and reported when read with the recorded encoding.
    await raw.put('junk', Buffer.from([0xc1, 0xff, 0x00]))
    await raw.close()
    const db = await open(file)
    expect(db.get('copy')).toEqual({ a: 1 })
    const error = caught(() => db.get('junk'))
    expectCode(error, ErrorCode.ENCODING)
    expect((error as Error).message).toContain('stored through a raw view')
    expect(db.verify().problems).toEqual([expect.stringContaining('the value of key "junk" does not decode as msgpack')])
    await db.close()
  })

  it("keys: 'utf8' on a 'binary' store is refused; 'binary' on a 'utf8' store is a view that still writes only UTF-8 keys", async () => {
    const binary = await created({ keyEncoding: 'binary' }, [1])
    const error = await rejection(open(binary, { keyEncoding: 'utf8' }))
    expectCode(error, ErrorCode.ENCODING)
    expect((error as Error).message).toContain("created with keyEncoding 'binary', but this open asks for 'utf8'")
    expect((error as Error).message).toContain("Open it with keyEncoding: 'binary', or omit keyEncoding")

    const utf8 = await created({ keyEncoding: 'utf8' }, [1])
    const view = await open(utf8, { keyEncoding: 'binary' })
    expect([...view.keys()]).toEqual([Buffer.from('k0')])
    await view.put(Buffer.from('\u00e9t\u00e9', 'utf8'), 2)
    expect(caught(() => view.putSync(Buffer.from([0x61, 0xff]), 3))).toBeInstanceOf(TypeError)
    await view.close()
    const db = await open(utf8)
    expect([...db.keys()]).toEqual(['k0', '\u00e9t\u00e9'])
    await db.close()
  })
})

describe('a daxfile from before encodings were recorded', () => {
  /** A store of utf8 values made into an old file: codes 0 in both copies, sealed with a valid checksum. */
  async function oldFile(): Promise<string> {
    const file = await created({ valueEncoding: 'utf8' }, ['hello'])
    recordEncodingCodes(file, 0, 0)
    return file
  }

  it('opens with the defaults, or any encoding asked for, as before, and stays unrecorded', async () => {
    const file = await oldFile()
    const db = await open(file)
    expect(db.stats().encodings).toEqual({ value: 'msgpack', key: 'utf8', recordedValue: null, recordedKey: null })
    // As before: the value does not decode with the default, and the error says why.
    const error = caught(() => db.get('k0'))
    expectCode(error, ErrorCode.ENCODING)
    expect((error as Error).message).toContain('another valueEncoding')
    await db.close()
    for (const valueEncoding of ['utf8', 'json', 'binary'] as const) {
      const other = await open(file, { valueEncoding })
      expect(other.stats().encodings.value).toBe(valueEncoding)
      if (valueEncoding === 'utf8') {
        expect(other.get('k0')).toBe('hello')
        await other.put('k1', 'written later')
      }
      await other.close()
    }
    // Opens, writes and clean closes (which update the superblock) left it unrecorded.
    for (const slot of [0, 1] as const) expect([superblockOf(file, slot).valueEncodingCode, superblockOf(file, slot).keyEncodingCode]).toEqual([0, 0])
  })
})

describe('a recorded code this daxkv does not know', () => {
  for (const [what, value, key] of [
    ['value', 99, 1],
    ['key', 1, 7],
  ] as const) {
    it(`(${what} encoding) is refused with DAXKV_ENCODING that names it, whatever the options, and nothing is written`, async () => {
      const file = await created({}, [1])
      recordEncodingCodes(file, value, key)
      const before = digestOf(file)
      for (const options of [{}, { valueEncoding: 'msgpack' }, { valueEncoding: 'binary', keyEncoding: 'binary' }] as const) {
        const error = await rejection(open(file, options), JSON.stringify(options))
        expectCode(error, ErrorCode.ENCODING, JSON.stringify(options))
        expect((error as Error).message).toContain(what === 'value' ? 'records valueEncoding code 99' : 'records keyEncoding code 7')
      }
      expect(digestOf(file)).toBe(before)
    })
  }
})

describe('every pair of encodings (created with, opened with)', () => {
  it('either refuses the open with DAXKV_ENCODING, or reads back every value written (through the raw view: bytes that decode to it)', async () => {
    const refused: string[] = []
    for (const createdWith of VALUE_ENCODINGS) {
      for (const keysCreatedWith of KEY_ENCODINGS) {
        const file = await created({ valueEncoding: createdWith, keyEncoding: keysCreatedWith }, SAMPLES[createdWith])
        for (const openedWith of [undefined, ...VALUE_ENCODINGS]) {
          for (const keysOpenedWith of [undefined, ...KEY_ENCODINGS]) {
            const pair = `created ${createdWith}/${keysCreatedWith} keys, opened ${openedWith ?? '(omitted)'}/${keysOpenedWith ?? '(omitted)'} keys`
            const options: OpenOptions = { ...(openedWith === undefined ? {} : { valueEncoding: openedWith }), ...(keysOpenedWith === undefined ? {} : { keyEncoding: keysOpenedWith }) }
            let db
            try {
              db = await open(file, options)
            } catch (error) {
              expectCode(error, ErrorCode.ENCODING, pair)
              refused.push(pair)
              continue
            }
            try {
              const raw = openedWith === 'binary' && createdWith !== 'binary'
              for (const [i, value] of SAMPLES[createdWith].entries()) {
                const read = db.get(`k${i}`) as Buffer
                expect(raw ? valueCodec(createdWith).decode(read, 0, read.length) : read, pair).toEqual(value)
              }
            } finally {
              await db.close()
            }
          }
        }
      }
    }
    // The refusals are exactly those the rules name: another value encoding than the recorded one and not 'binary', or 'utf8' keys on a 'binary' store.
    const expected = VALUE_ENCODINGS.flatMap((c) =>
      KEY_ENCODINGS.flatMap((kc) =>
        [undefined, ...VALUE_ENCODINGS].flatMap((o) =>
          [undefined, ...KEY_ENCODINGS].flatMap((ko) => {
            const valueRefused = o !== undefined && o !== c && o !== 'binary'
            const keyRefused = kc === 'binary' && ko === 'utf8'
            return valueRefused || keyRefused ? [`created ${c}/${kc} keys, opened ${o ?? '(omitted)'}/${ko ?? '(omitted)'} keys`] : []
          }),
        ),
      ),
    )
    expect(refused).toEqual(expected)
  })
})
