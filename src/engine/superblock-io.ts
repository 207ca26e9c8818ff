import { DaxKVError, ErrorCode } from '../errors.js'
import {
  FILE_BYTES_MAX,
  FILE_BYTES_MIN,
  FORMAT_VERSION,
  SEGMENT_BYTES_DEFAULT,
  SEGMENT_BYTES_MAX,
  SEGMENT_BYTES_MIN,
  SUPERBLOCK_BYTES,
} from '../format/constants.js'
import { decodeSuperblock, encodeSuperblock, noCheckpointDigest, superblockOffset, type Superblock } from '../format/superblock.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { native } from '../platform/native.js'

/** Size and segment size of a daxfile to create. */
export interface Geometry {
  readonly fileBytes: number
  readonly segmentBytes: number
}

/**
 * Picks the geometry for a requested size: segments of `segmentBytes` if
 * given, else the largest power of two that gives at least 8 segments,
 * between 64 KiB and 4 MiB; the size is rounded up to whole segments.
 */
export function chooseGeometry(requestedBytes: number, segmentBytes?: number): Geometry {
  if (!Number.isSafeInteger(requestedBytes) || requestedBytes < FILE_BYTES_MIN || requestedBytes > FILE_BYTES_MAX) {
    throw new RangeError(`size must be between ${FILE_BYTES_MIN} and ${FILE_BYTES_MAX} bytes, got ${requestedBytes}`)
  }
  let segment = segmentBytes
  if (segment === undefined) {
    segment = SEGMENT_BYTES_DEFAULT
    while (segment > SEGMENT_BYTES_MIN && segment * 8 > requestedBytes) segment /= 2
  } else if (!(segment >= SEGMENT_BYTES_MIN && segment <= SEGMENT_BYTES_MAX && (segment & (segment - 1)) === 0)) {
    throw new RangeError(`segmentSize must be a power of two between ${SEGMENT_BYTES_MIN} and ${SEGMENT_BYTES_MAX}, got ${segment}`)
  }
  const fileBytes = Math.ceil(requestedBytes / segment) * segment
  if (fileBytes > FILE_BYTES_MAX) throw new RangeError(`size rounded up to whole segments (${fileBytes}) exceeds ${FILE_BYTES_MAX}`)
  return { fileBytes, segmentBytes: segment }
}

/** What the public layer records in a new daxfile's superblock: the codes of its value and key encodings. */
export type EncodingCodes = Pick<Superblock, 'valueEncodingCode' | 'keyEncodingCode'>

/** Writes both superblock copies of a fresh daxfile and persists them. */
export function formatSuperblocks(domain: PersistenceDomain, geometry: Geometry, encodings: EncodingCodes): Superblock {
  const superblock: Superblock = {
    formatVersion: FORMAT_VERSION,
    flags: 0,
    segmentsUsed: 0,
    checkpointDigest: noCheckpointDigest(),
    fileBytes: geometry.fileBytes,
    segmentBytes: geometry.segmentBytes,
    segmentCount: geometry.fileBytes / geometry.segmentBytes,
    updateCounter: 1,
    createdMs: Date.now(),
    fileId: 1 + Math.floor(Math.random() * 0xffff_ffff_fffe),
    valueEncodingCode: encodings.valueEncodingCode,
    keyEncodingCode: encodings.keyEncodingCode,
  }
  for (const slot of [0, 1] as const) writeSuperblock(domain, superblock, slot)
  return superblock
}

export interface SuperblockRead {
  readonly superblock: Superblock
  /** The slot holding the copy in use; the next update writes the other one. */
  readonly slot: 0 | 1
  /** The slot that was damaged and has been rewritten from the other copy. */
  readonly repairedSlot: 0 | 1 | undefined
}

/**
 * Reads the newest valid superblock copy. A file with neither copy valid is
 * reported as foreign (wrong magic), of another version, or corrupt; a file
 * with one damaged copy is repaired from the other.
 */
export function readSuperblocks(
  domain: PersistenceDomain,
  file: string,
  beforeWrite?: (superblock: Superblock) => void,
): SuperblockRead {
  const checks = ([0, 1] as const).map((slot) => decodeSuperblock(domain.view(superblockOffset(slot), SUPERBLOCK_BYTES), native.crc32c))
  const valid = checks.flatMap((c, slot) => (c.ok ? [{ slot: slot as 0 | 1, superblock: c.superblock }] : []))
  if (valid.length === 0) {
    const [a, b] = checks
    if (a?.ok === false && b?.ok === false && a.reason === 'magic' && b.reason === 'magic') {
      throw new DaxKVError(ErrorCode.NOT_DAXFILE, `${file} is not a daxfile (${a.detail}); refusing to touch it`)
    }
    const version = [a, b].find((c) => c?.ok === false && c.reason === 'version')
    if (version?.ok === false) {
      throw new DaxKVError(ErrorCode.NOT_DAXFILE, `${file} was written by another daxkv format (${version.detail}); open it with a matching daxkv version`)
    }
    const details = checks.map((c, slot) => `copy ${slot}: ${c.ok ? 'ok' : c.detail}`).join('; ')
    throw new DaxKVError(ErrorCode.CORRUPTION, `both superblock copies of ${file} are damaged (${details})`)
  }
  valid.sort((x, y) => y.superblock.updateCounter - x.superblock.updateCounter || x.slot - y.slot)
  const best = valid[0]!
  const sb = best.superblock
  // A file longer than its superblock says is an interrupted growth: the
  // extra bytes are ignored until the next growth rewrites them. A shorter
  // one lost data.
  if (sb.fileBytes > domain.size) {
    throw new DaxKVError(
      ErrorCode.CORRUPTION,
      `${file} is ${domain.size} bytes but its superblock says ${sb.fileBytes}: the file was truncated outside daxkv`,
    )
  }
  beforeWrite?.(sb)
  let repairedSlot: 0 | 1 | undefined
  const other = best.slot === 0 ? 1 : 0
  const otherCheck = checks[other]!
  if (!otherCheck.ok && otherCheck.reason === 'version') {
    // Never overwrite what a newer daxkv wrote.
    throw new DaxKVError(ErrorCode.NOT_DAXFILE, `${file} has a superblock of another daxkv format (${otherCheck.detail}); open it with a matching daxkv version`)
  }
  if (!otherCheck.ok) {
    writeSuperblock(domain, sb, other)
    repairedSlot = other
  }
  return { superblock: sb, slot: best.slot, repairedSlot }
}

/**
 * Updates the superblock in effect: writes it with `changes` and a higher
 * updateCounter into the slot not in effect, persists it, and makes it the
 * one in effect. A crash before the persist returns leaves the old copy in
 * effect (the new one torn, or not there).
 */
export function updateSuperblock(domain: PersistenceDomain, state: { superblock: Superblock; superblockSlot: 0 | 1 }, changes: Partial<Superblock>): void {
  const next: Superblock = { ...state.superblock, ...changes, updateCounter: state.superblock.updateCounter + 1 }
  const slot = state.superblockSlot === 0 ? 1 : 0
  writeSuperblock(domain, next, slot)
  state.superblockSlot = slot
  state.superblock = next
}

/**
 * Writes `sb` into `slot` and persists it. An update writes the slot that
 * does not hold the copy in use, with a higher updateCounter: a crash leaves
 * that copy torn (rejected by its checksum) or complete, and the other copy
 * valid either way.
 */
export function writeSuperblock(domain: PersistenceDomain, sb: Superblock, slot: 0 | 1): void {
  const encoded = encodeSuperblock(sb, native.crc32c)
  domain.write(superblockOffset(slot), encoded)
  domain.persist(superblockOffset(slot), encoded.length)
}
