/**
 * What the store does when its environment misbehaves: values that do not
 * decode with the store's encoding, a daxfile deleted while open, sequence
 * numbers at the end of their range, a directory that does not exist, and
 * range options it does not know. Each is a typed error that says what to
 * do, and nothing acknowledged is lost or silently changed.
 */
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { openOnDomain } from '../src/crash/open-on-domain.js'
import { native } from '../src/platform/native.js'
import { SEGMENT_HEADER_BYTES, SUPERBLOCK_BYTES } from '../src/format/constants.js'
import { encodeSegmentHeader, segmentHeaderOffset } from '../src/format/segment.js'
import { decodeSuperblock } from '../src/format/superblock.js'
import { DaxKVError, ErrorCode, open } from '../src/index.js'
import { SimulatedDomain } from '../src/platform/simulated-domain.js'
import { recordEncodingCodes } from './daxfile-surgery.js'
import { caught, expectCode, rejection, tempDir } from './helpers.js'

const KiB = 1024

describe('values that do not decode', () => {
  it('a value read with another valueEncoding than it was written with is DAXKV_ENCODING, in get, getMany and range', async () => {
    const file = path.join(tempDir('/dev/shm'), 'enc.dax')
    const db = await open<Uint8Array>(file, { size: '1MiB', valueEncoding: 'binary' })
    // Bytes that are not MessagePack (0xc1 is never used) and not JSON.
    await db.put('k', Buffer.from([0xc1, 0xff, 0x00]))
    await db.close()
    // A file that records its encoding refuses these opens (encodings.test.ts); one from before daxkv recorded them does not.
    recordEncodingCodes(file, 0, 0)
    for (const valueEncoding of ['msgpack', 'json'] as const) {
      const reopened = await open(file, { valueEncoding })
      for (const [what, read] of [
        ['get', () => reopened.get('k')],
        ['getMany', () => reopened.getMany(['k'])],
        ['range', () => [...reopened.range()]],
      ] as const) {
        const error = caught(read, `${valueEncoding} ${what}`)
        expectCode(error, ErrorCode.ENCODING, `${valueEncoding} ${what}`)
        expect((error as Error).message).toContain('another valueEncoding')
      }
      await reopened.close()
    }
  })
})

describe('a daxfile deleted while open', () => {
  for (const mode of ['msync', 'forced-dax'] as const) {
    it(`${mode}: the next commit that can tell (${mode === 'msync' ? 'every one' : 'a segment roll'}) fails with DAXKV_IO, the store stays latched, and reads still work`, async () => {
      const file = path.join(tempDir('/dev/shm'), 'gone.dax')
      const db = await open<Uint8Array>(file, { size: '1MiB', segmentSize: '64KiB', mode, valueEncoding: 'binary', backgroundCompaction: false })
      db.putSync('before', Buffer.from('kept'))
      fs.rmSync(file)
      let failure: unknown
      let acknowledged = 0
      // msync: the first commit notices; forced-dax commits make no system call, so the next roll does.
      for (let i = 0; i < 2000 && failure === undefined; i++) {
        try {
          db.putSync(`after-${i}`, Buffer.alloc(100, i))
          acknowledged++
        } catch (error) {
          failure = error
        }
      }
      expectCode(failure, ErrorCode.IO, mode)
      expect((failure as Error).message).toContain('deleted or renamed over while open')
      if (mode === 'msync') expect(acknowledged).toBe(0)
      else expect(acknowledged).toBeLessThan((64 * KiB) / 100)
      // Latched: every later write fails the same way, and reads still serve what was written.
      expectCode(await rejection(db.put('later', Buffer.from('x'))), ErrorCode.IO, mode)
      expect(db.get('before')).toEqual(Buffer.from('kept'))
      await db.close()
      expect(fs.existsSync(`${file}.index`), 'no checkpoint is written for a deleted daxfile').toBe(false)
    })
  }

  it('deleted with nothing written after: close fails with DAXKV_IO and writes no checkpoint', async () => {
    const file = path.join(tempDir('/dev/shm'), 'gone.dax')
    const db = await open(file, { size: '1MiB' })
    await db.put('k', 1)
    fs.rmSync(file)
    const error = await rejection(db.close())
    expectCode(error, ErrorCode.IO, 'close')
    expect((error as Error).message).toContain('deleted or renamed over while open')
    expect(fs.existsSync(`${file}.index`)).toBe(false)
  })
})

describe('sequence numbers at the end of their range', () => {
  it('a log whose next batch would pass 2^53 - 1 refuses the write with DAXKV_CORRUPTION before acknowledging it', async () => {
    const domain = new SimulatedDomain(256 * KiB)
    const options = { segmentSize: '64KiB', valueEncoding: 'utf8', backgroundCompaction: false, indexCheckpoint: false } as const
    await openOnDomain<string>(domain, options).close()
    // Make segment 0 the head of an empty log whose first batch is 2^53 - 3.
    const superblock = decodeSuperblock(domain.view(0, SUPERBLOCK_BYTES), native.crc32c)
    if (!superblock.ok) throw new Error('the fresh superblock does not decode')
    const at = segmentHeaderOffset(0, 64 * KiB)
    const header = { fileId: superblock.superblock.fileId, segmentSeq: 1, firstBatchSeq: 2 ** 53 - 3, segmentIndex: 0 }
    domain.write(at, encodeSegmentHeader(header, native.crc32c))
    domain.persist(at, SEGMENT_HEADER_BYTES)
    const reopened = openOnDomain<string>(domain, options)
    for (let i = 0; i < 3; i++) reopened.putSync(`k${i}`, `v${i}`)
    const error = caught(() => reopened.putSync('k3', 'v3'))
    expectCode(error, ErrorCode.CORRUPTION, 'the fourth put')
    expect(reopened.has('k3')).toBe(false)
    await reopened.close()
    const again = openOnDomain<string>(domain, options)
    expect([...again.range()]).toEqual([['k0', 'v0'], ['k1', 'v1'], ['k2', 'v2']])
    await again.close()
  })
})

describe('paths and options', () => {
  it('a daxfile in a directory that does not exist is DAXKV_NOT_FOUND, saying which directory', async () => {
    const missing = path.join(tempDir(), 'no', 'such', 'dir')
    const error = await rejection(open(path.join(missing, 'db.dax')))
    expectCode(error, ErrorCode.NOT_FOUND, 'missing directory')
    expect((error as DaxKVError).message).toContain(`the directory ${missing} does not exist`)
  })

  it('range options it does not know are a TypeError, not silently ignored', async () => {
    const db = await open(path.join(tempDir('/dev/shm'), 'r.dax'), { size: '1MiB' })
    await db.put('a', 1)
    const error = caught(() => [...db.range({ prefix: 'a' } as unknown as Record<string, never>)])
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).toContain('"prefix"')
    await db.close()
  })
})
