/**
 * Damage to the index checkpoint beside an intact daxfile: bit flips (with
 * and without the checksum recomputed), truncation, extension, zeros, the
 * checkpoint of another store, special files in its place (a symlink to
 * /dev/zero, a FIFO, a directory), and forged checkpoints: edited with the
 * checksum recomputed and the new digest recorded in the daxfile's
 * superblock, what someone who rewrites both files on purpose can do.
 */
import { checkpointDigest } from '../../engine/checkpoint.js'
import { decodeSuperblock, encodeSuperblock, superblockOffset } from '../../format/superblock.js'
import { native } from '../../platform/native.js'
import type { DamageInput } from './damage-daxfile.js'

/** What lies where the index checkpoint file would be. */
export type IndexCase =
  | { readonly kind: 'absent' }
  | { readonly kind: 'bytes'; readonly bytes: Buffer }
  | { readonly kind: 'symlink'; readonly target: string }
  | { readonly kind: 'fifo' }
  | { readonly kind: 'directory' }

export interface IndexDamage {
  readonly index: IndexCase
  /** The daxfile, changed only by a forged checkpoint's recorded digest. */
  readonly image: Buffer
  readonly detail: string
}

type IndexDamageFn = (input: DamageInput, index: Buffer) => IndexDamage | undefined

/** Offsets in the checkpoint format (format/checkpoint.ts). */
const SEGMENT_COUNT_AT = 12
const INDEX_SLOTS_AT = 68
const FIXED_BYTES = 80
const SEGMENT_ENTRY_BYTES = 104

export const INDEX_DAMAGE: Readonly<Record<string, IndexDamageFn>> = {
  'index: flip': ({ base, random }, index) => {
    const bytes = Buffer.from(index)
    const at = random.int(0, bytes.length - 1)
    bytes[at] = bytes[at]! ^ (1 << random.int(0, 7))
    return { index: { kind: 'bytes', bytes }, image: base.image, detail: `bit flipped at ${at} of the checkpoint` }
  },
  'index: flip, checksum recomputed': ({ base, random }, index) => {
    const bytes = Buffer.from(index)
    const at = random.int(0, bytes.length - 5)
    bytes[at] = bytes[at]! ^ (1 << random.int(0, 7))
    recomputeChecksum(bytes)
    return { index: { kind: 'bytes', bytes }, image: base.image, detail: `bit flipped at ${at} of the checkpoint, its checksum recomputed` }
  },
  'index: truncated': ({ base, random }, index) => {
    const at = random.int(0, index.length - 1)
    return { index: { kind: 'bytes', bytes: Buffer.from(index.subarray(0, at)) }, image: base.image, detail: `checkpoint truncated to ${at} bytes` }
  },
  'index: extended': ({ base, random }, index) => {
    const extra = random.int(1, 10_000)
    return { index: { kind: 'bytes', bytes: Buffer.concat([index, Buffer.alloc(extra, 0x5a)]) }, image: base.image, detail: `${extra} bytes appended to the checkpoint` }
  },
  'index: zeros': ({ base }, index) => ({ index: { kind: 'bytes', bytes: Buffer.alloc(index.length) }, image: base.image, detail: 'checkpoint zeroed' }),
  "index: another store's": ({ base, other }) =>
    other.index === undefined ? undefined : { index: { kind: 'bytes', bytes: other.index }, image: base.image, detail: `the ${other.shape} store's checkpoint` },
  'index: special file': ({ base, random }) => {
    const index = random.pick<IndexCase>([{ kind: 'symlink', target: '/dev/zero' }, { kind: 'fifo' }, { kind: 'directory' }])
    return { index, image: base.image, detail: index.kind === 'symlink' ? `a symlink to ${index.target}` : `a ${index.kind}` }
  },
  'index: forged, bit flip': ({ base, random }, index) => {
    const bytes = Buffer.from(index)
    const at = random.int(0, bytes.length - 5)
    bytes[at] = bytes[at]! ^ (1 << random.int(0, 7))
    return forge(base.image, bytes, `bit flipped at ${at}`)
  },
  'index: forged, entry moved': ({ base, layout, random }, index) => {
    const bytes = Buffer.from(index)
    const table = FIXED_BYTES + bytes.readUInt32LE(SEGMENT_COUNT_AT) * SEGMENT_ENTRY_BYTES
    const slots = bytes.readUInt32LE(INDEX_SLOTS_AT)
    const records = layout.batches.flatMap((b) => b.records)
    const occupied: number[] = []
    for (let i = 0; i < slots && table + 8 * i + 8 <= bytes.length - 4; i++) if (bytes.readInt32LE(table + 8 * i) !== -1) occupied.push(i)
    if (occupied.length === 0 || records.length === 0) return undefined
    const slot = random.pick(occupied)
    const to = random.pick(records).header.start
    bytes.writeInt32LE(to, table + 8 * slot)
    return forge(base.image, bytes, `index slot ${slot} pointed at the record at ${to}`)
  },
}

function recomputeChecksum(bytes: Buffer): void {
  if (bytes.length >= 4) bytes.writeUInt32LE(native.crc32c(bytes, 0, bytes.length - 4), bytes.length - 4)
}

/** Recomputes the checkpoint's checksum and records its digest in both superblock copies of a copy of `image`. */
function forge(image: Buffer, bytes: Buffer, what: string): IndexDamage {
  recomputeChecksum(bytes)
  const out = Buffer.from(image)
  for (const slot of [0, 1] as const) {
    const at = superblockOffset(slot)
    const check = decodeSuperblock(out.subarray(at), native.crc32c)
    if (check.ok) encodeSuperblock({ ...check.superblock, checkpointDigest: checkpointDigest(bytes) }, native.crc32c).copy(out, at)
  }
  return { index: { kind: 'bytes', bytes }, image: out, detail: `${what} in the checkpoint, its checksum recomputed and recorded in the superblock` }
}
