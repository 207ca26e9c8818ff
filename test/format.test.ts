/**
 * The format layer: pure encode/decode of superblock, segment header and
 * batches, the zero scans recovery relies on, the u64 helpers and sizes.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  BATCH_HEADER_BYTES,
  FILE_BYTES_MAX,
  FORMAT_VERSION,
  RECORD_DEL,
  RECORD_HEADER_BYTES,
  RECORD_PUT,
  SEGMENT_BYTES_MAX,
  SEGMENT_BYTES_MIN,
  SEGMENT_HEADER_BYTES,
  SUPERBLOCK_AREA_BYTES,
  SUPERBLOCK_BYTES,
  FORMAT_VERSION_V1,
  SUPERBLOCK_SLOT_BYTES,
} from '../src/format/constants.js'
import { batchBytes, checkBatch, encodeBatch, forEachRecord, isZero, nonZeroEnd, type EncodedOp } from '../src/format/batch.js'
import { recordBytes } from '../src/format/record.js'
import {
  decodeSegmentHeader,
  encodeSegmentHeader,
  segmentDataOffset,
  segmentEndOffset,
  segmentHeaderOffset,
  type SegmentHeader,
} from '../src/format/segment.js'
import {
  KEY_ENCODING_CODES,
  SUPERBLOCK_FLAG_RELAXED,
  VALUE_ENCODING_CODES,
  decodeSuperblock,
  encodeSuperblock,
  superblockOffset,
  type Superblock,
} from '../src/format/superblock.js'
import { readU64, writeU64 } from '../src/format/u64.js'
import { native } from '../src/platform/native.js'
import { parseSize } from '../src/size.js'
import { checkProperty, random, seedNote, SEED } from './helpers.js'

const TWO_53 = 2 ** 53

// ---------------------------------------------------------------- superblock

/** Valid geometry: segments of 64 KiB to 256 MiB, at least two of them, in a file of at most FILE_BYTES_MAX. */
const superblockArb: fc.Arbitrary<Superblock> = fc
  .record({
    segmentShift: fc.integer({ min: Math.log2(SEGMENT_BYTES_MIN), max: Math.log2(SEGMENT_BYTES_MAX) }),
    countFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    updateCounter: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    createdMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    fileId: fc.integer({ min: 1, max: 2 ** 48 - 1 }),
    flags: fc.constantFrom(0, SUPERBLOCK_FLAG_RELAXED),
    usedFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    checkpointDigest: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    // Any byte decodes: the public layer judges the codes (recorded-encodings.ts).
    valueEncodingCode: fc.integer({ min: 0, max: 255 }),
    keyEncodingCode: fc.integer({ min: 0, max: 255 }),
  })
  .map(({ segmentShift, countFraction, usedFraction, ...rest }) => {
    const segmentBytes = 2 ** segmentShift
    const maxCount = FILE_BYTES_MAX / segmentBytes
    const segmentCount = 2 + Math.floor(countFraction * (maxCount - 2))
    const segmentsUsed = Math.floor(usedFraction * segmentCount)
    return { formatVersion: FORMAT_VERSION, segmentBytes, segmentCount, fileBytes: segmentBytes * segmentCount, segmentsUsed, ...rest }
  })

const SAMPLE_SUPERBLOCK: Superblock = {
  formatVersion: FORMAT_VERSION,
  fileBytes: 16 * 65536,
  segmentBytes: 65536,
  segmentCount: 16,
  updateCounter: 7,
  createdMs: 1_700_000_000_000,
  fileId: 0x1234_5678_9abc,
  flags: 0,
  segmentsUsed: 3,
  checkpointDigest: new Uint8Array(16).fill(0xab),
  valueEncodingCode: VALUE_ENCODING_CODES.indexOf('utf8'),
  keyEncodingCode: KEY_ENCODING_CODES.indexOf('binary'),
}

/** Re-seals a superblock copy after a deliberate field change, so only that change is judged. */
function resealSuperblock(buf: Buffer): Buffer {
  buf.writeUInt32LE(native.crc32c(buf, 0, SUPERBLOCK_BYTES - 4), SUPERBLOCK_BYTES - 4)
  return buf
}

function superblockReason(buf: Buffer): string {
  const check = decodeSuperblock(buf, native.crc32c)
  return check.ok ? 'ok' : check.reason
}

describe('superblock', () => {
  it('decodes to exactly what was encoded, for any valid geometry and counters', () => {
    checkProperty(
      fc.property(superblockArb, (sb) => {
        const encoded = encodeSuperblock(sb, native.crc32c)
        expect(encoded.length).toBe(SUPERBLOCK_BYTES)
        const check = decodeSuperblock(encoded, native.crc32c)
        expect(check).toEqual({ ok: true, superblock: sb })
      }),
      200,
    )
  })

  it('places copy 0 at offset 0 and copy 1 one slot later, both inside the superblock area', () => {
    expect(superblockOffset(0)).toBe(0)
    expect(superblockOffset(1)).toBe(SUPERBLOCK_SLOT_BYTES)
    expect(superblockOffset(1) + SUPERBLOCK_BYTES).toBeLessThanOrEqual(SUPERBLOCK_AREA_BYTES)
  })

  it('rejects a copy with the wrong magic for reason "magic"', () => {
    for (let i = 0; i < 8; i++) {
      const buf = encodeSuperblock(SAMPLE_SUPERBLOCK, native.crc32c)
      buf[i] = buf[i]! ^ 0x20
      expect(superblockReason(buf), `magic byte ${i}`).toBe('magic')
    }
    expect(superblockReason(Buffer.alloc(SUPERBLOCK_BYTES))).toBe('magic')
  })

  it('rejects every single-bit flip outside the magic for reason "checksum"', () => {
    const clean = encodeSuperblock(SAMPLE_SUPERBLOCK, native.crc32c)
    for (let bit = 64; bit < SUPERBLOCK_BYTES * 8; bit++) {
      const buf = Buffer.from(clean)
      buf[bit >> 3] = buf[bit >> 3]! ^ (1 << (bit & 7))
      expect(superblockReason(buf), `bit ${bit}`).toBe('checksum')
    }
  })

  it('reads a format 1 copy (64 bytes, sealed at 60): no flags, segments used and checkpoint digest unknown', () => {
    const buf = Buffer.alloc(SUPERBLOCK_BYTES)
    encodeSuperblock(SAMPLE_SUPERBLOCK, native.crc32c).copy(buf, 0, 0, 56)
    buf.writeUInt32LE(FORMAT_VERSION_V1, 8)
    buf.writeUInt32LE(0, 12)
    buf.writeUInt32LE(native.crc32c(buf, 0, 60), 60)
    expect(decodeSuperblock(buf, native.crc32c)).toEqual({
      ok: true,
      superblock: {
        ...SAMPLE_SUPERBLOCK,
        formatVersion: FORMAT_VERSION_V1,
        flags: 0,
        segmentsUsed: 0,
        checkpointDigest: new Uint8Array(16),
        valueEncodingCode: 0,
        keyEncodingCode: 0,
      },
    })
    // Whatever a format 1 copy holds past byte 64 is not part of it.
    buf.fill(0x5a, 64)
    expect(decodeSuperblock(buf, native.crc32c).ok).toBe(true)
  })

  it('records the value and key encoding codes in bytes 80 and 81; zeros there (every file from before) read as "not recorded"', () => {
    const buf = encodeSuperblock(SAMPLE_SUPERBLOCK, native.crc32c)
    expect([buf[80], buf[81]]).toEqual([3, 2])
    expect(VALUE_ENCODING_CODES).toEqual([undefined, 'msgpack', 'json', 'utf8', 'binary'])
    expect(KEY_ENCODING_CODES).toEqual([undefined, 'utf8', 'binary'])
    expect(buf.subarray(82, 124).every((b) => b === 0)).toBe(true)
    buf[80] = 0
    buf[81] = 0
    const check = decodeSuperblock(resealSuperblock(buf), native.crc32c)
    expect(check.ok && [check.superblock.valueEncodingCode, check.superblock.keyEncodingCode]).toEqual([0, 0])
  })

  it('rejects a correctly sealed copy of another format version for reason "version"', () => {
    for (const version of [0, FORMAT_VERSION + 1, 0xffff_ffff]) {
      const buf = encodeSuperblock(SAMPLE_SUPERBLOCK, native.crc32c)
      buf.writeUInt32LE(version, 8)
      expect(superblockReason(resealSuperblock(buf)), `version ${version}`).toBe('version')
    }
  })

  it('rejects a correctly sealed copy with impossible geometry for reason "geometry"', () => {
    const cases: [string, (b: Buffer) => void][] = [
      ['segment size not a power of two', (b) => b.writeUInt32LE(65536 + 4096, 24)],
      ['segment size zero', (b) => b.writeUInt32LE(0, 24)],
      ['zero segments', (b) => b.writeUInt32LE(0, 28)],
      ['a single segment', (b) => (b.writeUInt32LE(1, 28), writeU64(b, 16, 65536))],
      ['segments below 64 KiB', (b) => (b.writeUInt32LE(32768, 24), b.writeUInt32LE(32, 28), writeU64(b, 16, 32 * 32768))],
      ['segments above 256 MiB', (b) => (b.writeUInt32LE(2 ** 29, 24), b.writeUInt32LE(2, 28), writeU64(b, 16, 2 ** 30))],
      ['a file above the largest daxfile', (b) => (b.writeUInt32LE(2 ** 28, 24), b.writeUInt32LE(16, 28), writeU64(b, 16, 2 ** 32))],
      ['file size not segments times count', (b) => writeU64(b, 16, 16 * 65536 + 4096)],
      ['file size beyond 2^53', (b) => b.writeUInt32LE(0x0020_0000, 20)],
      ['file id zero', (b) => writeU64(b, 48, 0)],
      ['file id beyond 2^53', (b) => b.writeUInt32LE(0xffff_ffff, 52)],
      ['more segments used than there are', (b) => b.writeUInt32LE(17, 56)],
      ['a flag this version does not know', (b) => b.writeUInt32LE(2, 12)],
    ]
    for (const [what, change] of cases) {
      const buf = encodeSuperblock(SAMPLE_SUPERBLOCK, native.crc32c)
      change(buf)
      expect(superblockReason(resealSuperblock(buf)), what).toBe('geometry')
    }
  })
})

// ------------------------------------------------------------ segment header

const SAMPLE_SEGMENT: SegmentHeader = { fileId: 0xabcdef, segmentSeq: 3, firstBatchSeq: 41, segmentIndex: 5 }

describe('segment header', () => {
  it('decodes to exactly what was encoded, for the right file id and index', () => {
    checkProperty(
      fc.property(
        fc.record({
          fileId: fc.integer({ min: 1, max: 2 ** 48 - 1 }),
          segmentSeq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          firstBatchSeq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          segmentIndex: fc.integer({ min: 0, max: 0xffff_ffff }),
        }),
        (h) => {
          const encoded = encodeSegmentHeader(h, native.crc32c)
          expect(encoded.length).toBe(SEGMENT_HEADER_BYTES)
          expect(decodeSegmentHeader(encoded, h.fileId, h.segmentIndex, native.crc32c)).toEqual(h)
        },
      ),
      200,
    )
  })

  it('rejects a header that names another file id', () => {
    const buf = encodeSegmentHeader(SAMPLE_SEGMENT, native.crc32c)
    expect(decodeSegmentHeader(buf, SAMPLE_SEGMENT.fileId + 1, SAMPLE_SEGMENT.segmentIndex, native.crc32c)).toBeUndefined()
    expect(decodeSegmentHeader(buf, 1, SAMPLE_SEGMENT.segmentIndex, native.crc32c)).toBeUndefined()
  })

  it('rejects a header found at another segment index', () => {
    const buf = encodeSegmentHeader(SAMPLE_SEGMENT, native.crc32c)
    expect(decodeSegmentHeader(buf, SAMPLE_SEGMENT.fileId, SAMPLE_SEGMENT.segmentIndex + 1, native.crc32c)).toBeUndefined()
    expect(decodeSegmentHeader(buf, SAMPLE_SEGMENT.fileId, 0, native.crc32c)).toBeUndefined()
  })

  it('rejects every single-bit flip (bad crc, magic or version)', () => {
    const clean = encodeSegmentHeader(SAMPLE_SEGMENT, native.crc32c)
    expect(decodeSegmentHeader(clean, SAMPLE_SEGMENT.fileId, SAMPLE_SEGMENT.segmentIndex, native.crc32c)).toEqual(SAMPLE_SEGMENT)
    for (let bit = 0; bit < SEGMENT_HEADER_BYTES * 8; bit++) {
      const buf = Buffer.from(clean)
      buf[bit >> 3] = buf[bit >> 3]! ^ (1 << (bit & 7))
      expect(decodeSegmentHeader(buf, SAMPLE_SEGMENT.fileId, SAMPLE_SEGMENT.segmentIndex, native.crc32c), `bit ${bit}`).toBeUndefined()
    }
  })

  it('rejects a zeroed (free) segment and a sealed header with sequence numbers of zero', () => {
    expect(decodeSegmentHeader(Buffer.alloc(SEGMENT_HEADER_BYTES), 0, 0, native.crc32c)).toBeUndefined()
    expect(decodeSegmentHeader(encodeSegmentHeader({ ...SAMPLE_SEGMENT, segmentSeq: 0 }, native.crc32c), SAMPLE_SEGMENT.fileId, 5, native.crc32c)).toBeUndefined()
    expect(decodeSegmentHeader(encodeSegmentHeader({ ...SAMPLE_SEGMENT, firstBatchSeq: 0 }, native.crc32c), SAMPLE_SEGMENT.fileId, 5, native.crc32c)).toBeUndefined()
  })

  it('puts segment 0 after the superblock area and segment i at i * segmentBytes', () => {
    const segmentBytes = 65536
    expect(segmentHeaderOffset(0, segmentBytes)).toBe(SUPERBLOCK_AREA_BYTES)
    expect(segmentDataOffset(0, segmentBytes)).toBe(SUPERBLOCK_AREA_BYTES + SEGMENT_HEADER_BYTES)
    expect(segmentEndOffset(0, segmentBytes)).toBe(segmentBytes)
    for (const i of [1, 2, 17]) {
      expect(segmentHeaderOffset(i, segmentBytes)).toBe(i * segmentBytes)
      expect(segmentDataOffset(i, segmentBytes)).toBe(i * segmentBytes + SEGMENT_HEADER_BYTES)
      expect(segmentEndOffset(i, segmentBytes)).toBe((i + 1) * segmentBytes)
    }
  })
})

// -------------------------------------------------------------------- batches

const opArb: fc.Arbitrary<EncodedOp> = fc.oneof(
  fc.record({
    type: fc.constant(RECORD_PUT),
    key: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
    value: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({
    type: fc.constant(RECORD_DEL),
    key: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
    value: fc.constant(undefined),
  }),
)

/** Encodes `ops` as batch `seq` into a zeroed area with `slack` zero bytes after it; `commit` writes the marker. */
function encoded(ops: readonly EncodedOp[], seq: number, commit = true, slack = 64): { view: Buffer; length: number; offsets: number[] } {
  const length = batchBytes(ops)
  const view = Buffer.alloc(length + slack)
  const offsets: number[] = []
  expect(encodeBatch(view, seq, ops, offsets, native.crc32c)).toBe(length)
  if (commit) view.writeDoubleLE(seq, 0)
  return { view, length, offsets }
}

/** Recomputes a batch's crc after a deliberate change, so checks past the crc see the change. */
function resealBatch(view: Buffer): void {
  const payloadBytes = view.readUInt32LE(12)
  view.writeUInt32LE(native.crc32c(view, BATCH_HEADER_BYTES, payloadBytes, native.crc32c(view, 8, 20)), 28)
}

function endOf(view: Buffer, seq: number): string {
  const check = checkBatch(view, seq, native.crc32c)
  return check.ok ? 'ok' : check.end
}

const SAMPLE_OPS: EncodedOp[] = [
  { type: RECORD_PUT, key: 'alpha', value: Buffer.from('one') },
  { type: RECORD_DEL, key: 'beta', value: undefined },
  { type: RECORD_PUT, key: '\xff\x00k', value: Buffer.alloc(17, 9) },
]

interface Visited {
  type: number
  key: string
  value: Buffer
}

function records(view: Buffer, recordCount: number): Visited[] {
  const out: Visited[] = []
  forEachRecord(view, recordCount, (type, at, keyBytes, valueBytes) => {
    const keyAt = at + RECORD_HEADER_BYTES
    out.push({
      type,
      key: view.toString('latin1', keyAt, keyAt + keyBytes),
      value: Buffer.from(view.subarray(keyAt + keyBytes, keyAt + keyBytes + valueBytes)),
    })
  })
  return out
}

describe('batch', () => {
  it('validates a committed batch and gives back every record, in order, at the offsets encode reported', () => {
    checkProperty(
      fc.property(fc.array(opArb, { maxLength: 12 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (ops, seq) => {
        const { view, length, offsets } = encoded(ops, seq)
        expect(length % 8).toBe(0)
        expect(length).toBe(BATCH_HEADER_BYTES + ops.reduce((n, op) => n + recordBytes(op.key.length, op.value?.length ?? 0), 0))
        expect(checkBatch(view, seq, native.crc32c)).toEqual({ ok: true, length, recordCount: ops.length })
        const seen: number[] = []
        forEachRecord(view, ops.length, (_type, at) => seen.push(at))
        expect(seen).toEqual(offsets.slice(0, ops.length))
        expect(records(view, ops.length)).toEqual(
          ops.map((op) => ({ type: op.type, key: op.key, value: Buffer.from(op.value ?? new Uint8Array(0)) })),
        )
      }),
      200,
    )
  })

  it('validates an empty batch as 32 bytes with no records', () => {
    const { view } = encoded([], 1)
    expect(checkBatch(view, 1, native.crc32c)).toEqual({ ok: true, length: BATCH_HEADER_BYTES, recordCount: 0 })
  })

  it('ends the log with "zero" at an all-zero header', () => {
    expect(endOf(Buffer.alloc(4096), 1)).toBe('zero')
    expect(endOf(Buffer.alloc(BATCH_HEADER_BYTES), 99)).toBe('zero')
  })

  it('ends the log with "space" when fewer than 32 bytes remain', () => {
    for (const n of [0, 8, 31]) expect(endOf(Buffer.alloc(n, 0xaa), 1), `${n} bytes`).toBe('space')
    const { view } = encoded(SAMPLE_OPS, 5, true, 0)
    expect(endOf(view.subarray(0, BATCH_HEADER_BYTES - 1), 5)).toBe('space')
  })

  it('ends the log with "marker" when the batch was written but its marker was not', () => {
    const { view } = encoded(SAMPLE_OPS, 5, false)
    expect(view.readDoubleLE(0)).toBe(0)
    expect(endOf(view, 5)).toBe('marker')
  })

  it('never validates a batch whose marker holds another sequence number (a stale marker)', () => {
    checkProperty(
      fc.property(
        fc.array(opArb, { maxLength: 6 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.oneof(fc.integer({ min: -1000, max: 2 ** 40 }), fc.double({ noNaN: false })),
        (ops, seq, other) => {
          fc.pre(other !== seq)
          const { view } = encoded(ops, seq)
          view.writeDoubleLE(other, 0)
          expect(endOf(view, seq)).toBe('marker')
          // The batch as a whole, marker included, is also no batch for any other expected sequence number.
          const fresh = encoded(ops, seq).view
          if (Number.isSafeInteger(other) && other > 0) expect(endOf(fresh, other)).toBe('marker')
        },
      ),
      300,
    )
  })

  it('ends the log with "header" for a wrong magic, a header seq unlike the marker, a ragged or overlong payload', () => {
    const cases: [string, (view: Buffer, length: number) => Buffer][] = [
      ['magic', (v) => (v.writeUInt32LE(0x12345678, 8), v)],
      ['header seq', (v) => (writeU64(v, 16, 6), v)],
      ['payload not a multiple of 8', (v) => (v.writeUInt32LE(v.readUInt32LE(12) + 4, 12), v)],
      ['payload beyond the view', (v) => (v.writeUInt32LE(0x7fff_fff8, 12), v)],
      ['view cut inside the batch', (v, length) => v.subarray(0, length - 8)],
    ]
    for (const [what, mutate] of cases) {
      const { view, length } = encoded(SAMPLE_OPS, 5)
      expect(endOf(mutate(view, length), 5), what).toBe('header')
    }
  })

  it('ends the log with "checksum" for any single-bit flip in the sealed header fields or the payload', () => {
    const { view, length } = encoded(SAMPLE_OPS, 5)
    expect(endOf(view, 5)).toBe('ok')
    const reasons = new Set<string>()
    for (let bit = 8 * 8; bit < length * 8; bit++) {
      const copy = Buffer.from(view)
      copy[bit >> 3] = copy[bit >> 3]! ^ (1 << (bit & 7))
      const end = endOf(copy, 5)
      expect(end, `bit ${bit}`).not.toBe('ok')
      // The magic, seq and payload length are judged as header fields; everything else by the crc.
      const byte = bit >> 3
      const headerField = (byte >= 8 && byte < 12) || (byte >= 12 && byte < 16) || (byte >= 16 && byte < 24)
      if (!headerField) expect(end, `bit ${bit}`).toBe('checksum')
      reasons.add(end)
    }
    expect(reasons.has('checksum')).toBe(true)
  })

  it('ends the log with "records" when the crc matches but the records do not parse', () => {
    const cases: [string, (view: Buffer) => void][] = [
      ['unknown record type', (v) => (v[BATCH_HEADER_BYTES] = 3)],
      ['record count one too high', (v) => v.writeUInt32LE(v.readUInt32LE(24) + 1, 24)],
      ['record count one too low', (v) => v.writeUInt32LE(v.readUInt32LE(24) - 1, 24)],
      ['a delete carrying a value', (v) => v.writeUInt32LE(8, BATCH_HEADER_BYTES + recordBytes(5, 3) + 4)],
      ['a key length running past the payload', (v) => v.writeUInt16LE(4000, BATCH_HEADER_BYTES + 2)],
    ]
    for (const [what, mutate] of cases) {
      const { view } = encoded(SAMPLE_OPS, 5)
      mutate(view)
      expect(endOf(view, 5), `${what} (before resealing)`).toBe('checksum')
      resealBatch(view)
      expect(endOf(view, 5), what).toBe('records')
    }
  })

  it('zero-fills padding and leaves the marker word zero even in a dirty scratch buffer', () => {
    const ops: EncodedOp[] = [{ type: RECORD_PUT, key: 'k', value: Buffer.from('v') }]
    const length = batchBytes(ops)
    const clean = Buffer.alloc(length)
    const dirty = Buffer.alloc(length, 0xee)
    encodeBatch(clean, 9, ops, [], native.crc32c)
    encodeBatch(dirty, 9, ops, [], native.crc32c)
    expect(dirty.equals(clean), seedNote()).toBe(true)
    expect(dirty.readDoubleLE(0)).toBe(0)
  })
})

// ------------------------------------------------------------- zero scanning

function naiveIsZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false
  return true
}

function naiveNonZeroEnd(buf: Buffer, start: number, end: number): number {
  for (let i = end - 1; i >= start; i--) if (buf[i] !== 0) return i + 1
  return start
}

describe('isZero and nonZeroEnd', () => {
  const CHUNK = 64 * 1024

  it('handle empty ranges, all-zero buffers and single bytes at every edge, including the 64 KiB scan chunk', () => {
    const size = 3 * CHUNK + 100
    const zero = Buffer.alloc(size)
    expect(isZero(zero, 0, 0)).toBe(true)
    expect(isZero(zero, 0, size)).toBe(true)
    expect(nonZeroEnd(zero, 0, size)).toBe(0)
    expect(nonZeroEnd(zero, 17, size)).toBe(17)
    expect(nonZeroEnd(zero, 5, 5)).toBe(5)
    for (const at of [0, 1, 7, 8, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, size - 1]) {
      const buf = Buffer.alloc(size)
      buf[at] = 1
      expect(isZero(buf, 0, size), `byte at ${at}`).toBe(false)
      expect(isZero(buf, 0, at), `before ${at}`).toBe(true)
      expect(isZero(buf, at + 1, size), `after ${at}`).toBe(true)
      expect(isZero(buf, at, at + 1), `just ${at}`).toBe(false)
      expect(nonZeroEnd(buf, 0, size), `byte at ${at}`).toBe(at + 1)
      expect(nonZeroEnd(buf, 0, at), `before ${at}`).toBe(0)
      expect(nonZeroEnd(buf, at + 1, size), `after ${at}`).toBe(at + 1)
      expect(nonZeroEnd(buf, at, at + 1)).toBe(at + 1)
    }
  })

  it('agree with a byte-by-byte scan on random sparse buffers and ranges', () => {
    const next = random(SEED)
    const buf = Buffer.alloc(2 * CHUNK + 333)
    for (let round = 0; round < 200; round++) {
      buf.fill(0)
      const marks = Math.floor(next() * 4)
      for (let m = 0; m < marks; m++) buf[Math.floor(next() * buf.length)] = 1 + Math.floor(next() * 255)
      const a = Math.floor(next() * buf.length)
      const b = Math.floor(next() * buf.length)
      const [start, end] = a <= b ? [a, b] : [b, a]
      const context = seedNote(`round ${round} [${start}, ${end})`)
      expect(isZero(buf, start, end), context).toBe(naiveIsZero(buf, start, end))
      expect(nonZeroEnd(buf, start, end), context).toBe(naiveNonZeroEnd(buf, start, end))
    }
  })
})

// ------------------------------------------------------------------------ u64

describe('u64 helpers', () => {
  it('round-trip every safe integer, at any offset, in Buffers and plain Uint8Arrays', () => {
    const edges = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 48, Number.MAX_SAFE_INTEGER]
    for (const value of edges) {
      const buf = Buffer.alloc(16, 0xff)
      writeU64(buf, 3, value)
      expect(readU64(buf, 3), `value ${value}`).toBe(value)
      expect(buf.readBigUInt64LE(3), `value ${value}`).toBe(BigInt(value))
    }
    checkProperty(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 0, max: 8 }), (value, offset) => {
        const backing = new Uint8Array(32)
        const view = new Uint8Array(backing.buffer, 5, 20)
        writeU64(view, offset, value)
        const asBuffer = Buffer.from(backing.buffer, 5 + offset, 8)
        expect(asBuffer.readBigUInt64LE(0)).toBe(BigInt(value))
        expect(readU64(Buffer.from(view.buffer, view.byteOffset, view.byteLength), offset)).toBe(value)
      }),
      300,
    )
  })

  it('reads any value of 2^53 or more as -1, never as a rounded number', () => {
    const buf = Buffer.alloc(8)
    for (const big of [2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]) {
      buf.writeBigUInt64LE(big)
      expect(readU64(buf, 0), `value ${big}`).toBe(-1)
    }
    buf.writeBigUInt64LE(2n ** 53n - 1n)
    expect(readU64(buf, 0)).toBe(TWO_53 - 1)
  })
})

// ----------------------------------------------------------------- parseSize

describe('parseSize', () => {
  it('reads byte counts and sizes with binary and decimal units, any case, with or without spaces', () => {
    const cases: [number | string, number][] = [
      [0, 0],
      [4096, 4096],
      ['4096', 4096],
      ['12b', 12],
      ['1k', 1024],
      ['1KiB', 1024],
      ['1kb', 1000],
      ['512 KiB', 512 * 1024],
      ['64MiB', 64 * 1024 ** 2],
      ['64 mib', 64 * 1024 ** 2],
      ['2m', 2 * 1024 ** 2],
      ['1MB', 1000 ** 2],
      ['1GiB', 1024 ** 3],
      ['1g', 1024 ** 3],
      ['1GB', 1e9],
      ['1.5k', 1536],
      [' 7 KiB ', 7 * 1024],
    ]
    for (const [input, bytes] of cases) expect(parseSize(input), JSON.stringify(input)).toBe(bytes)
  })

  it('rejects fractional, negative and unsafe numbers with a RangeError naming the option', () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      expect(() => parseSize(bad, 'segmentSize'), String(bad)).toThrow(RangeError)
      expect(() => parseSize(bad, 'segmentSize'), String(bad)).toThrow(/segmentSize/)
    }
  })

  it('rejects malformed strings and unknown units with a RangeError', () => {
    for (const bad of ['', ' ', 'abc', '-5', '1e6', '10 XB', '5 kibibytes', '1.k', 'KiB', '1 2']) {
      expect(() => parseSize(bad), JSON.stringify(bad)).toThrow(RangeError)
    }
  })

  it('rejects values that are neither numbers nor strings with a TypeError', () => {
    for (const bad of [null, undefined, {}, [], true]) {
      expect(() => parseSize(bad as unknown as string), String(bad)).toThrow(TypeError)
    }
  })

  it('rejects a string size beyond Number.MAX_SAFE_INTEGER bytes, as it does the same number', () => {
    // 2^53 + 1 cannot be held exactly; the number form throws, the string form must not round it.
    expect(() => parseSize(2 ** 53 + 1)).toThrow(RangeError)
    expect(() => parseSize('9007199254740993')).toThrow(RangeError)
    expect(() => parseSize('9999999999 GiB')).toThrow(RangeError)
  })

  it('keeps random whole sizes with every unit exact', () => {
    const units: [string, number][] = [['', 1], ['b', 1], ['KiB', 1024], ['kb', 1000], ['MiB', 1024 ** 2], ['MB', 1000 ** 2], ['GiB', 1024 ** 3]]
    const next = random(SEED + 7)
    for (let i = 0; i < 200; i++) {
      const [unit, factor] = units[Math.floor(next() * units.length)]!
      const n = Math.floor(next() * 2048)
      expect(parseSize(`${n}${unit}`), seedNote(`${n}${unit}`)).toBe(n * factor)
    }
  })
})

