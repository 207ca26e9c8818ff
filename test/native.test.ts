import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { native } from '../src/platform/native.js'
import { random, SEED, tempDir } from './helpers.js'

const ADDON = fileURLToPath(new URL('../native/build/Release/daxkv.node', import.meta.url))
// mmap-io is CommonJS and its typings declare a default export it lacks.
const mmap = createRequire(import.meta.url)('@riaskov/mmap-io') as {
  map(size: number, protection: number, flags: number, fd: number): Buffer
}
const EXT4_MAGIC = 0xef53
const XFS_MAGIC = 0x58465342
const TMPFS_MAGIC = 0x01021994

function randomBytes(next: () => number, length: number): Buffer {
  const buf = Buffer.alloc(length)
  for (let i = 0; i < length; i++) buf[i] = (next() * 256) | 0
  return buf
}

// Bit-at-a-time CRC32C, independent of the addon's tables.
function crc32cReference(bytes: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0
  for (const byte of bytes) {
    crc ^= byte
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1))
  }
  return ~crc >>> 0
}

// Loads the addon in a fresh process with `env` and prints what it reports.
function loadWith(env: Record<string, string>): string {
  const script = `
    const b = require(${JSON.stringify(ADDON)})
    const buf = Buffer.alloc(4096, 7)
    b.persist(buf, 1, 4000)
    const crc = b.crc32c(Buffer.from('123456789'), 0, 9)
    console.log(JSON.stringify([b.flushInstruction, b.crc32cImplementation, crc]))`
  return execFileSync(process.execPath, ['-e', script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

function expectErrno(fn: () => unknown, code: string, syscall: string): void {
  let caught: unknown
  try {
    fn()
  } catch (error) {
    caught = error
  }
  expect(caught).toBeInstanceOf(Error)
  const error = caught as NodeJS.ErrnoException
  expect(error.code).toBe(code)
  expect(error.errno).toBe((os.constants.errno as Record<string, number>)[code])
  expect(error.syscall).toBe(syscall)
  expect(error.message).toContain(syscall)
}

describe('load', () => {
  it('reports the detected flush instruction, CRC32C implementation and page size', () => {
    expect(['clwb', 'clflushopt', 'clflush']).toContain(native.flushInstruction)
    expect(['sse4.2', 'software']).toContain(native.crc32cImplementation)
    expect(native.pageSize).toBeGreaterThanOrEqual(4096)
    expect(native.pageSize & (native.pageSize - 1)).toBe(0)
  })

  it('honours DAXKV_FLUSH for every supported instruction and rejects unknown names', () => {
    for (const instruction of ['clwb', 'clflushopt', 'clflush']) {
      let reported: unknown
      try {
        reported = JSON.parse(loadWith({ DAXKV_FLUSH: instruction }))
      } catch (error) {
        // Only an instruction this CPU lacks may fail, and it must say so.
        expect(String((error as { stderr?: string }).stderr)).toContain(`DAXKV_FLUSH=${instruction}, but this CPU does not support`)
        continue
      }
      expect(reported).toEqual([instruction, native.crc32cImplementation, 0xe3069283])
    }
    expect(JSON.parse(loadWith({ DAXKV_FLUSH: native.flushInstruction }))[0]).toBe(native.flushInstruction)
    expect(() => loadWith({ DAXKV_FLUSH: 'wbinvd' })).toThrow(/DAXKV_FLUSH must be one of clwb, clflushopt, clflush/)
  })

  it('honours DAXKV_CRC32C=software and rejects unknown names', () => {
    expect(JSON.parse(loadWith({ DAXKV_CRC32C: 'software' }))).toEqual([native.flushInstruction, 'software', 0xe3069283])
    expect(() => loadWith({ DAXKV_CRC32C: 'pclmul' })).toThrow(/DAXKV_CRC32C must be one of sse4.2, software/)
  })
})

describe('crc32c', () => {
  const implementations = [
    ['crc32c', native.crc32c],
    ['crc32cSoftware', native.crc32cSoftware],
  ] as const

  // The check value from the CRC catalogue and the iSCSI vectors of RFC 3720 B.4.
  const vectors: [string, Buffer, number][] = [
    ['"123456789"', Buffer.from('123456789'), 0xe3069283],
    ['32 zero bytes', Buffer.alloc(32, 0), 0x8a9136aa],
    ['32 0xff bytes', Buffer.alloc(32, 0xff), 0x62a8ab43],
    ['0..31', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e],
    ['31..0', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c],
    ['empty', Buffer.alloc(0), 0],
  ]

  for (const [name, crc32c] of implementations) {
    it(`${name} matches the known vectors`, () => {
      for (const [label, bytes, expected] of vectors) {
        expect(crc32c(bytes, 0, bytes.length), label).toBe(expected)
      }
    })

    it(`${name} continues from a previous CRC`, () => {
      const bytes = randomBytes(random(SEED), 70_000)
      const whole = crc32c(bytes, 0, bytes.length)
      for (const split of [0, 1, 7, 8, 9, 100, 4096, 30_000, 69_999, 70_000]) {
        const head = crc32c(bytes, 0, split)
        expect(crc32c(bytes, split, bytes.length - split, head), `seed ${SEED} split ${split}`).toBe(whole)
      }
      expect(crc32c(bytes, 0, 0, 0x12345678)).toBe(0x12345678)
    })

    it(`${name} reads from the view's byteOffset, not the start of its ArrayBuffer`, () => {
      const bytes = randomBytes(random(SEED + 1), 1000)
      const view = new Uint8Array(bytes.buffer, bytes.byteOffset + 123, 500)
      expect(crc32c(view, 0, 500)).toBe(crc32c(bytes, 123, 500))
      expect(crc32c(view, 10, 20)).toBe(crc32cReference(bytes.subarray(133, 153)))
    })
  }

  it('hardware equals software and a bitwise reference on random lengths, offsets and alignments', () => {
    const next = random(SEED)
    // Larger than three long blocks (3 * 8 KiB), so every path of the
    // interleaved loop runs: long groups, short groups, words, tail bytes.
    const bytes = randomBytes(next, 200_000)
    const lengths = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 256, 767, 768, 769, 1000, 4096, 24_575, 24_576, 24_577, 25_344, 49_152, 100_003, 199_984]
    for (let i = 0; i < 200; i++) lengths.push((next() * (i < 150 ? 3000 : 199_984)) | 0)
    for (const length of lengths) {
      for (const offset of [0, 1, 3, 5, 8, 13, (next() * 16) | 0]) {
        const previous = (next() * 2 ** 32) >>> 0
        const context = `seed ${SEED} offset ${offset} length ${length} previous ${previous}`
        const software = native.crc32cSoftware(bytes, offset, length, previous)
        expect(native.crc32c(bytes, offset, length, previous), context).toBe(software)
        if (length <= 4096) expect(software, context).toBe(crc32cReference(bytes.subarray(offset, offset + length), previous))
      }
    }
  })

  it('rejects bad arguments with TypeError or RangeError', () => {
    const buf = Buffer.alloc(16)
    for (const crc32c of [native.crc32c, native.crc32cSoftware]) {
      expect(() => crc32c(new Uint16Array(8) as unknown as Uint8Array, 0, 8)).toThrow(TypeError)
      expect(() => crc32c([1, 2, 3] as unknown as Uint8Array, 0, 3)).toThrow(TypeError)
      expect(() => crc32c(buf, '0' as unknown as number, 1)).toThrow(TypeError)
      expect(() => crc32c(buf, 0, 1, '0' as unknown as number)).toThrow(TypeError)
      expect(() => crc32c(buf, -1, 1)).toThrow(RangeError)
      expect(() => crc32c(buf, 0.5, 1)).toThrow(RangeError)
      expect(() => crc32c(buf, Number.NaN, 1)).toThrow(RangeError)
      expect(() => crc32c(buf, 0, 17)).toThrow(RangeError)
      expect(() => crc32c(buf, 16, 1)).toThrow(RangeError)
      expect(() => crc32c(buf, 2 ** 53, 0)).toThrow(RangeError)
      expect(() => crc32c(buf, 0, 1, 2 ** 32)).toThrow(RangeError)
      expect(() => crc32c(buf, 0, 1, -1)).toThrow(RangeError)
      expect(crc32c(buf, 16, 0)).toBe(0)
    }
  })
})

describe('flush, drain, persist', () => {
  it('write back ordinary Buffers, views and edge ranges without throwing', () => {
    const buf = Buffer.alloc(10_000, 1)
    for (const [offset, length] of [[0, 0], [0, 1], [63, 2], [1, 9999], [0, 10_000], [10_000, 0], [4095, 4097]] as const) {
      native.flush(buf, offset, length)
      native.persist(buf, offset, length)
    }
    native.drain()
    native.persist(buf.subarray(100, 200), 0, 100)
    native.persist(new Uint8Array(0), 0, 0)
  })

  it('write back a shared mapping of a /dev/shm file', () => {
    const file = path.join(tempDir('/dev/shm'), 'mapped')
    const fd = fs.openSync(file, 'w+')
    try {
      fs.ftruncateSync(fd, 1 << 20)
      const mapped = mmap.map(1 << 20, 3, 1, fd)
      mapped.fill(0x5a, 0, 4096)
      native.persist(mapped, 0, 1 << 20)
      native.flush(mapped, 123, 4567)
      native.drain()
      native.persist(mapped.subarray(8192), 64, 64)
      expect(fs.readFileSync(file).subarray(0, 4096).every((b) => b === 0x5a)).toBe(true)
    } finally {
      fs.closeSync(fd)
    }
  })

  it('reject out-of-range offsets with RangeError and non-Uint8Arrays with TypeError', () => {
    const buf = Buffer.alloc(128)
    for (const fn of [native.flush, native.persist]) {
      expect(() => fn(buf, 0, 129)).toThrow(RangeError)
      expect(() => fn(buf, 129, 0)).toThrow(RangeError)
      expect(() => fn(buf, 100, 29)).toThrow(RangeError)
      expect(() => fn(buf, -64, 64)).toThrow(RangeError)
      expect(() => fn(buf, 0, Number.POSITIVE_INFINITY)).toThrow(RangeError)
      expect(() => fn(buf.subarray(64), 0, 65)).toThrow(RangeError)
      expect(() => fn(new ArrayBuffer(128) as unknown as Uint8Array, 0, 1)).toThrow(TypeError)
      expect(() => fn(new DataView(new ArrayBuffer(8)) as unknown as Uint8Array, 0, 1)).toThrow(TypeError)
      expect(() => fn(undefined as unknown as Uint8Array, 0, 1)).toThrow(TypeError)
      expect(() => fn(buf, 0, undefined as unknown as number)).toThrow(TypeError)
    }
  })
})

describe('statxDax', () => {
  it('is false on /tmp and /dev/shm, which are not DAX', () => {
    expect(native.statxDax('/tmp')).toBe(false)
    expect(native.statxDax('/dev/shm')).toBe(false)
  })

  it('throws ENOENT with the path, and TypeError for a non-string', () => {
    const missing = path.join(tempDir(os.tmpdir()), 'missing')
    expectErrno(() => native.statxDax(missing), 'ENOENT', 'statx')
    expect(() => native.statxDax(missing)).toThrow(missing)
    expect(() => native.statxDax(42 as unknown as string)).toThrow(TypeError)
    expect(() => native.statxDax('/tmp\0/x')).toThrow(TypeError)
  })
})

describe('fallocate', () => {
  it('grows a file', () => {
    const file = path.join(tempDir(os.tmpdir()), 'grow')
    const fd = fs.openSync(file, 'w+')
    try {
      native.fallocate(fd, 0, 1 << 20)
      expect(fs.fstatSync(fd).size).toBe(1 << 20)
      native.fallocate(fd, 1 << 20, 4096)
      expect(fs.fstatSync(fd).size).toBe((1 << 20) + 4096)
    } finally {
      fs.closeSync(fd)
    }
  })

  it('throws EBADF on a read-only descriptor, EINVAL on length 0, and RangeError on negative values', () => {
    const file = path.join(tempDir(os.tmpdir()), 'readonly')
    fs.writeFileSync(file, '')
    const fd = fs.openSync(file, 'r')
    try {
      expectErrno(() => native.fallocate(fd, 0, 4096), 'EBADF', 'fallocate')
      expectErrno(() => native.fallocate(fd, 0, 0), 'EINVAL', 'fallocate')
      expect(() => native.fallocate(fd, -1, 4096)).toThrow(RangeError)
      expect(() => native.fallocate(-1, 0, 4096)).toThrow(RangeError)
      expect(() => native.fallocate(fd, 0, '1' as unknown as number)).toThrow(TypeError)
    } finally {
      fs.closeSync(fd)
    }
  })
})

describe('fiemap', () => {
  const tmpType = fs.statfsSync(os.tmpdir()).type
  const extentFs = tmpType === EXT4_MAGIC || tmpType === XFS_MAGIC

  it.skipIf(!extentFs)('reports no unwritten or delayed extents for a fully written file', () => {
    const file = path.join(tempDir(os.tmpdir()), 'written')
    fs.writeFileSync(file, Buffer.alloc(1 << 20, 0xab))
    const fd = fs.openSync(file, 'r')
    try {
      const report = native.fiemap(fd)
      expect(report.supported).toBe(true)
      expect(report.extents).toBeGreaterThanOrEqual(1)
      expect(report.mappedBytes).toBeGreaterThanOrEqual(1 << 20)
      expect(report).toMatchObject({ unwritten: 0, delalloc: 0, shared: 0, unknown: 0, inline: 0 })
    } finally {
      fs.closeSync(fd)
    }
  })

  it.skipIf(!extentFs)('reports unwritten extents for a file that was only fallocated', () => {
    const file = path.join(tempDir(os.tmpdir()), 'fallocated')
    const fd = fs.openSync(file, 'w+')
    try {
      native.fallocate(fd, 0, 1 << 20)
      const report = native.fiemap(fd)
      expect(report.supported).toBe(true)
      expect(report.unwritten).toBeGreaterThanOrEqual(1)
      expect(report.mappedBytes).toBeGreaterThanOrEqual(1 << 20)
    } finally {
      fs.closeSync(fd)
    }
  })

  it.skipIf(!extentFs)('reports no extents for an empty file', () => {
    const file = path.join(tempDir(os.tmpdir()), 'empty')
    const fd = fs.openSync(file, 'w+')
    try {
      expect(native.fiemap(fd)).toEqual({ supported: true, extents: 0, mappedBytes: 0, shared: 0, unwritten: 0, delalloc: 0, unknown: 0, inline: 0 })
    } finally {
      fs.closeSync(fd)
    }
  })

  it.skipIf(fs.statfsSync('/dev/shm').type !== TMPFS_MAGIC)('reports supported: false on tmpfs', () => {
    const file = path.join(tempDir('/dev/shm'), 'tmpfs')
    fs.writeFileSync(file, Buffer.alloc(8192, 1))
    const fd = fs.openSync(file, 'r')
    try {
      expect(native.fiemap(fd)).toEqual({ supported: false, extents: 0, mappedBytes: 0, shared: 0, unwritten: 0, delalloc: 0, unknown: 0, inline: 0 })
    } finally {
      fs.closeSync(fd)
    }
  })

  it('throws EBADF for a descriptor that is not open', () => {
    expectErrno(() => native.fiemap(2 ** 31 - 1), 'EBADF', 'ioctl(FIEMAP)')
  })
})

describe('flock', () => {
  it('conflicts between two descriptors of one file in one process', () => {
    const file = path.join(tempDir(os.tmpdir()), 'lock')
    fs.writeFileSync(file, '')
    const a = fs.openSync(file, 'r+')
    const b = fs.openSync(file, 'r+')
    try {
      expect(native.flock(a, 'exclusive')).toBe(true)
      expect(native.flock(b, 'exclusive')).toBe(false)
      expect(native.flock(b, 'shared')).toBe(false)
      expect(native.flock(a, 'unlock')).toBe(true)
      expect(native.flock(a, 'shared')).toBe(true)
      expect(native.flock(b, 'shared')).toBe(true)
      expect(native.flock(b, 'exclusive')).toBe(false)
      expect(native.flock(a, 'unlock')).toBe(true)
      expect(native.flock(b, 'exclusive')).toBe(true)
    } finally {
      fs.closeSync(a)
      fs.closeSync(b)
    }
  })

  it('throws EBADF for a descriptor that is not open, and TypeError for an unknown op', () => {
    expectErrno(() => native.flock(2 ** 31 - 1, 'exclusive'), 'EBADF', 'flock')
    expect(() => native.flock(0, 'EXCLUSIVE' as 'exclusive')).toThrow(TypeError)
    expect(() => native.flock(0, 1 as unknown as 'exclusive')).toThrow(TypeError)
    expect(() => native.flock(1.5, 'exclusive')).toThrow(RangeError)
  })
})
