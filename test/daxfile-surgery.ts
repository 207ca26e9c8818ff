/**
 * Reading and patching a closed daxfile's bytes, for the tests that damage
 * files on purpose (errors, damage, checkpoint). Each read goes through the
 * format layer's own decoders.
 */
import fs from 'node:fs'
import { checkBatch } from '../src/format/batch.js'
import { SUPERBLOCK_BYTES } from '../src/format/constants.js'
import { decodeSegmentHeader, segmentDataOffset, segmentEndOffset, segmentHeaderOffset } from '../src/format/segment.js'
import { decodeSuperblock, encodeSuperblock, superblockOffset, type Superblock } from '../src/format/superblock.js'
import { native } from '../src/platform/native.js'

/** Writes `bytes` over the file at `offset`. */
export function patch(file: string, offset: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'r+')
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset)
  } finally {
    fs.closeSync(fd)
  }
}

/** Superblock copy `slot` of `file`; throws when it is invalid. */
export function superblockOf(file: string, slot: 0 | 1 = 0): Superblock {
  const at = superblockOffset(slot)
  const check = decodeSuperblock(fs.readFileSync(file).subarray(at, at + SUPERBLOCK_BYTES), native.crc32c)
  if (!check.ok) throw new Error(`test setup: superblock copy ${slot} of ${file} is invalid (${check.detail})`)
  return check.superblock
}

export interface BatchAt {
  readonly offset: number
  readonly length: number
  readonly seq: number
}

/** The valid batches of segment `index`, found with the format layer's own check. */
export function batchesOf(file: string, index: number): BatchAt[] {
  const image = fs.readFileSync(file)
  const sb = superblockOf(file)
  const header = decodeSegmentHeader(image.subarray(segmentHeaderOffset(index, sb.segmentBytes)), sb.fileId, index, native.crc32c)
  if (header === undefined) return []
  const out: BatchAt[] = []
  let at = segmentDataOffset(index, sb.segmentBytes)
  for (let seq = header.firstBatchSeq; ; seq++) {
    const check = checkBatch(image.subarray(at, segmentEndOffset(index, sb.segmentBytes)), seq, native.crc32c)
    if (!check.ok) return out
    out.push({ offset: at, length: check.length, seq })
    at += check.length
  }
}

/**
 * Writes `digest` as the recorded index checkpoint into both superblock
 * copies, as the writer does after writing a checkpoint: what a writer
 * that wrote a bad checkpoint, or someone editing both files, would leave.
 */
export function recordCheckpointDigest(file: string, digest: Uint8Array): void {
  for (const slot of [0, 1] as const) patch(file, superblockOffset(slot), encodeSuperblock({ ...superblockOf(file, slot), checkpointDigest: digest }, native.crc32c))
}

/**
 * Writes the value and key encoding codes into both superblock copies,
 * sealed with a valid checksum: codes 0 make the file one created before
 * daxkv recorded encodings, others what a newer daxkv might record.
 */
export function recordEncodingCodes(file: string, valueEncodingCode: number, keyEncodingCode: number): void {
  for (const slot of [0, 1] as const) {
    patch(file, superblockOffset(slot), encodeSuperblock({ ...superblockOf(file, slot), valueEncodingCode, keyEncodingCode }, native.crc32c))
  }
}
