/**
 * Damage to a daxfile's bytes, by class: bit flips anywhere and aimed at
 * each structure, zeroed ranges, truncation, extension, swapped or
 * duplicated segments, segments (or free marks) from an older copy, and
 * foreign bytes. Each returns the damaged image, or undefined when the
 * base has nothing of that kind (no free segment, no older copy), and the
 * campaign draws another class.
 */
import { SUPERBLOCK_AREA_BYTES } from '../../format/constants.js'
import { segmentEndOffset } from '../../format/segment.js'
import type { Random } from '../random.js'
import { batchHeader, type BatchAt, type FileLayout, type Range } from './layout.js'
import type { BaseStore } from './stores.js'

/** What a damage function gets: the base, its map, another base to take foreign bytes from, and the random source. */
export interface DamageInput {
  readonly base: BaseStore
  readonly layout: FileLayout
  readonly other: BaseStore
  readonly random: Random
}

export interface DaxfileDamage {
  readonly image: Buffer
  /** Where, in words, for the violation report. */
  readonly detail: string
}

type DamageFn = (input: DamageInput) => DaxfileDamage | undefined

export const DAXFILE_DAMAGE: Readonly<Record<string, DamageFn>> = {
  'flip: anywhere': ({ base, layout, random }) => {
    const end = usedEnd(layout)
    const image = Buffer.from(base.image)
    const flips = random.int(1, 4)
    const at: number[] = []
    for (let i = 0; i < flips; i++) at.push(flipBit(image, random.int(0, end - 1), random))
    return { image, detail: `bits flipped at ${at.join(', ')}` }
  },
  'flip: one superblock copy': ({ base, layout, random }) => flipIn(base, random.pick(layout.superblockCopies), random),
  'flip: both superblock copies': ({ base, layout, random }) => {
    const first = flipIn(base, layout.superblockCopies[0]!, random)!
    const image = first.image
    const at = flipBit(image, pickIn(layout.superblockCopies[1]!, random), random)
    return { image, detail: `${first.detail} and ${at}` }
  },
  'flip: segment header': ({ base, layout, random }) => flipIn(base, pickSegment(layout, 'used', random)?.header, random),
  'flip: free mark': ({ base, layout, random }) => {
    const free = pickSegment(layout, 'free', random)
    return free === undefined ? undefined : flipIn(base, { start: free.header.start, end: free.header.start + 8 }, random)
  },
  'flip: batch header': ({ base, layout, random }) => flipIn(base, maybe(pickBatch(layout, random), batchHeader), random),
  'flip: commit marker': ({ base, layout, random }) => flipIn(base, maybe(pickBatch(layout, random), (b) => ({ start: b.start, end: b.start + 8 })), random),
  'flip: record header': ({ base, layout, random }) => flipIn(base, pickRecordPart(layout, 'header', random), random),
  'flip: key': ({ base, layout, random }) => flipIn(base, pickRecordPart(layout, 'keyBytes', random), random),
  'flip: value': ({ base, layout, random }) => flipIn(base, pickRecordPart(layout, 'value', random), random),
  'flip: last batch of the log': ({ base, layout, random }) => flipIn(base, layout.batches.at(-1), random),
  'flip: unused end of a segment': ({ base, layout, random }) => {
    const ends = layout.segments.flatMap((s) => (s.unusedEnd !== undefined && s.unusedEnd.end > s.unusedEnd.start ? [s.unusedEnd] : []))
    return ends.length === 0 ? undefined : flipIn(base, random.pick(ends), random)
  },
  'zero: random range': ({ base, layout, random }) => {
    const length = random.int(1, 8192)
    const start = random.int(0, Math.max(0, usedEnd(layout) - length))
    return zero(base, { start, end: start + length })
  },
  'zero: segment header and first batch header': ({ base, layout, random }) => {
    const s = pickSegment(layout, 'used', random)
    return s === undefined ? undefined : zero(base, { start: s.header.start, end: s.header.end + 32 })
  },
  'zero: last batches of the log': ({ base, layout, random }) => {
    const n = random.int(1, 3)
    const last = layout.batches.slice(-n)
    if (last.length === 0) return undefined
    return zero(base, { start: Math.min(...last.map((b) => b.start)), end: Math.max(...last.map((b) => b.end)) })
  },
  'zero: one batch': ({ base, layout, random }) => zero(base, pickBatch(layout, random)),
  'zero: whole segment': ({ base, layout, random }) => {
    const s = pickSegment(layout, 'used', random)
    return s === undefined ? undefined : zero(base, { start: s.header.start, end: segmentEndOffset(s.index, layout.superblock.segmentBytes) })
  },
  truncate: ({ base, layout, random }) => {
    const segmentBytes = layout.superblock.segmentBytes
    const at = random.chance(0.5) ? random.int(0, base.image.length - 1) : random.int(0, layout.superblock.segmentCount - 1) * segmentBytes
    return { image: Buffer.from(base.image.subarray(0, at)), detail: `truncated to ${at} bytes` }
  },
  extend: ({ base, random }) => {
    const extra = random.pick([1, 8, 4096, 65536, random.int(1, 200_000)])
    const tail = Buffer.alloc(extra)
    const filled = random.chance(0.5)
    if (filled) for (let i = 0; i < extra; i++) tail[i] = random.int(0, 255)
    return { image: Buffer.concat([base.image, tail]), detail: `${extra} ${filled ? 'random' : 'zero'} bytes appended` }
  },
  'segments: two swapped': ({ base, layout, random }) => {
    const [a, b] = twoSegments(layout, random)
    if (a === undefined || b === undefined) return undefined
    const image = Buffer.from(base.image)
    const ra = segmentBody(layout, a)
    const rb = segmentBody(layout, b)
    const length = Math.min(ra.end - ra.start, rb.end - rb.start)
    base.image.copy(image, ra.start, rb.start, rb.start + length)
    base.image.copy(image, rb.start, ra.start, ra.start + length)
    return { image, detail: `segments ${a} and ${b} swapped` }
  },
  'segments: one copied over another': ({ base, layout, random }) => {
    const [a, b] = twoSegments(layout, random)
    if (a === undefined || b === undefined) return undefined
    const image = Buffer.from(base.image)
    const ra = segmentBody(layout, a)
    const rb = segmentBody(layout, b)
    base.image.copy(image, rb.start, ra.start, ra.start + Math.min(ra.end - ra.start, rb.end - rb.start))
    return { image, detail: `segment ${a} copied over segment ${b}` }
  },
  'older: one segment from an older copy': ({ base, layout, random }) => {
    const older = base.older
    if (older === undefined) return undefined
    const differing = layout.segments.filter((s) => {
      const r = segmentBody(layout, s.index)
      return r.end <= older.length && !older.subarray(r.start, r.end).equals(base.image.subarray(r.start, r.end))
    })
    if (differing.length === 0) return undefined
    const s = random.pick(differing)
    const r = segmentBody(layout, s.index)
    const image = Buffer.from(base.image)
    older.copy(image, r.start, r.start, r.end)
    return { image, detail: `segment ${s.index} (${s.state}) restored from the older copy` }
  },
  'older: free mark reverted': ({ base, layout, random }) => {
    const older = base.older
    if (older === undefined) return undefined
    const reverted = layout.segments.filter((s) => s.state === 'free' && s.header.end <= older.length && !older.subarray(s.header.start, s.header.start + 8).equals(base.image.subarray(s.header.start, s.header.start + 8)))
    if (reverted.length === 0) return undefined
    const s = random.pick(reverted)
    const image = Buffer.from(base.image)
    older.copy(image, s.header.start, s.header.start, s.header.start + 8)
    return { image, detail: `the free mark of segment ${s.index} reverted to its older bytes` }
  },
  'foreign: a segment of another store': ({ base, layout, other, random }) => {
    const s = pickSegment(layout, 'used', random)
    if (s === undefined) return undefined
    const r = segmentBody(layout, s.index)
    if (r.end > other.image.length) return undefined
    const image = Buffer.from(base.image)
    other.image.copy(image, r.start, r.start, r.end)
    return { image, detail: `segment ${s.index} replaced by the same bytes of the ${other.shape} store` }
  },
  'foreign: whole file': ({ base, random }) => {
    const kind = random.pick(['empty', 'zeros', 'random', 'text'] as const)
    const size = base.image.length
    if (kind === 'empty') return { image: Buffer.alloc(0), detail: 'an empty file' }
    if (kind === 'zeros') return { image: Buffer.alloc(size), detail: `${size} zero bytes` }
    if (kind === 'text') return { image: Buffer.from('name,value\n'.repeat(Math.ceil(size / 11))).subarray(0, size), detail: 'a text file' }
    const image = Buffer.alloc(size)
    for (let i = 0; i < size; i += 4) image.writeUInt32LE(random.int(0, 0xffff_ffff), i)
    return { image, detail: `${size} random bytes` }
  },
}

/** End of the part of the file the store has used: where damage can hit something. */
function usedEnd(layout: FileLayout): number {
  const used = layout.segments.filter((s) => s.state !== 'blank').map((s) => segmentEndOffset(s.index, layout.superblock.segmentBytes))
  return Math.min(layout.fileBytes, Math.max(SUPERBLOCK_AREA_BYTES + 4096, ...used))
}

function flipBit(image: Buffer, at: number, random: Random): number {
  image[at] = image[at]! ^ (1 << random.int(0, 7))
  return at
}

function pickIn(range: Range, random: Random): number {
  return random.int(range.start, range.end - 1)
}

function flipIn(base: BaseStore, range: Range | undefined, random: Random): DaxfileDamage | undefined {
  if (range === undefined || range.end <= range.start) return undefined
  const image = Buffer.from(base.image)
  return { image, detail: `bit flipped at ${flipBit(image, pickIn(range, random), random)}` }
}

function zero(base: BaseStore, range: Range | undefined): DaxfileDamage | undefined {
  if (range === undefined) return undefined
  const image = Buffer.from(base.image)
  const end = Math.min(range.end, image.length)
  image.fill(0, range.start, end)
  return { image, detail: `bytes [${range.start}, ${end}) zeroed` }
}

function maybe<T, U>(value: T | undefined, f: (v: T) => U): U | undefined {
  return value === undefined ? undefined : f(value)
}

function pickSegment(layout: FileLayout, state: 'used' | 'free', random: Random) {
  const candidates = layout.segments.filter((s) => s.state === state)
  return candidates.length === 0 ? undefined : random.pick(candidates)
}

function pickBatch(layout: FileLayout, random: Random): BatchAt | undefined {
  return layout.batches.length === 0 ? undefined : random.pick(layout.batches)
}

function pickRecordPart(layout: FileLayout, part: 'header' | 'keyBytes' | 'value', random: Random): Range | undefined {
  const parts = layout.batches.flatMap((b) => b.records.map((r) => r[part])).filter((r) => r.end > r.start)
  return parts.length === 0 ? undefined : random.pick(parts)
}

/** Two distinct segments that are not blank, or undefined. */
function twoSegments(layout: FileLayout, random: Random): [number | undefined, number | undefined] {
  const candidates = layout.segments.filter((s) => s.state !== 'blank').map((s) => s.index)
  if (candidates.length < 2) return [undefined, undefined]
  const a = random.pick(candidates)
  const b = random.pick(candidates.filter((i) => i !== a))
  return [a, b]
}

/** Segment `index` from its header to its end (segment 0 without the superblock area). */
function segmentBody(layout: FileLayout, index: number): Range {
  const s = layout.segments[index]!
  return { start: s.header.start, end: segmentEndOffset(index, layout.superblock.segmentBytes) }
}
