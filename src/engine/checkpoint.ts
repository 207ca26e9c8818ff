import os from 'node:os'
import { checkpointBytes, decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../format/checkpoint.js'
import { RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../format/constants.js'
import { decodeSegmentHeader, segmentDataOffset, segmentHeaderOffset } from '../format/segment.js'
import { CHECKPOINT_DIGEST_BYTES, type Superblock } from '../format/superblock.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { native } from '../platform/native.js'
import type { Accounting } from './accounting.js'
import { KeyIndex } from './key-index.js'
import type { LogState, SegmentState } from './log-state.js'
import type { RecordReader } from './record-reader.js'
import type { RecoveryResult } from './recovery.js'

/**
 * The engine's side of the index checkpoint (docs/format.md, "Index
 * checkpoint"): taking one from the live state, and deciding at open
 * whether one describes a prefix of the daxfile's log (C1, C3) so that
 * only the batches after it need replaying (C2, open-log.ts).
 */

/**
 * What the superblock records of a checkpoint file (format/superblock.ts):
 * the CRC32C its last 4 bytes hold, then its length (u64). An open uses a
 * checkpoint only when these are the recorded ones and its CRC32C checks,
 * so a file that is not the last one this daxfile wrote (stale, foreign,
 * damaged, or edited with its own checksum recomputed) costs a replay,
 * never trust; and it costs no pass over the file beyond the CRC check the
 * decoder makes anyway. Not a defence against someone who rewrites the
 * file keeping its CRC32C on purpose: they could rewrite the daxfile too.
 */
export function checkpointDigest(bytes: Uint8Array): Uint8Array {
  const digest = Buffer.alloc(CHECKPOINT_DIGEST_BYTES)
  if (bytes.length >= 4) digest.set(bytes.subarray(bytes.length - 4), 0)
  digest.writeUInt32LE(bytes.length % 0x1_0000_0000, 4)
  digest.writeUInt32LE(Math.floor(bytes.length / 0x1_0000_0000), 8)
  return new Uint8Array(digest)
}

/** How many bytes {@link takeCheckpoint} would return now. */
export function checkpointSize(state: LogState, accounting: Accounting): number {
  return checkpointBytes(state.segments.length, accounting.index.snapshot().entries.length / 2, accounting.tombstones.snapshot().entries.length / 2)
}

/**
 * The index checkpoint of the log as it is now (format/checkpoint.ts), for
 * the caller to keep beside the daxfile. Nothing is written to the daxfile.
 */
export function takeCheckpoint(domain: PersistenceDomain, state: LogState, accounting: Accounting): Buffer {
  const sb = state.superblock
  return encodeCheckpoint(
    {
      fileId: sb.fileId,
      createdMs: sb.createdMs,
      updateCounter: sb.updateCounter,
      segmentBytes: sb.segmentBytes,
      head: state.head,
      nextBatchSeq: state.nextBatchSeq,
      nextSegmentSeq: state.nextSegmentSeq,
      segments: state.segments.map((s) => ({
        header: domain.view(segmentHeaderOffset(s.index, sb.segmentBytes), SEGMENT_HEADER_BYTES),
        dataEnd: s.dataEnd,
        lastSeq: s.lastSeq,
        liveBytes: s.liveBytes,
        deadRecords: s.deadRecords,
        chain: s.chain,
        maxRecordBytes: s.maxRecordBytes,
      })),
      index: accounting.index.snapshot(),
      tombstones: accounting.tombstones.snapshot(),
    },
    native.crc32c,
  )
}

/** A checkpoint that passed C1, and the tables the rest of the log is replayed onto. */
export interface CheckpointStart {
  readonly checkpoint: Checkpoint
  readonly tables: { readonly index: KeyIndex; readonly tombstones: KeyIndex }
  /** Segments in use at the checkpoint with the same header now. */
  readonly unchanged: readonly boolean[]
  /** Segments that held a live put at the checkpoint: they cannot be freed without a batch being written. */
  readonly heldPuts: readonly boolean[]
}

/**
 * C1: the state to resume from if the checkpoint can describe a prefix of
 * this daxfile's log, else why not. Segments in use at the checkpoint
 * whose header is still byte for byte the same are unchanged (a segment
 * is only ever appended to while its header stays; sequence numbers are
 * never reused): their accounting is taken into `segments` (a fresh table
 * of readSegmentTable). The others were freed, and maybe reused, since:
 * entries of the checkpoint's tables that point into those go, as
 * everything live there was copied to the log after the checkpoint, where
 * the replay of the rest of the log finds it. What the log holds after
 * the checkpoint is checked once recovery has read it ({@link continuesCheckpoint}).
 */
export function checkpointStart(
  bytes: Buffer,
  superblock: Superblock,
  domain: PersistenceDomain,
  reader: RecordReader,
  segments: SegmentState[],
): CheckpointStart | string {
  if (os.endianness() !== 'LE') return 'index checkpoints are only used on little-endian machines'
  const decoded = decodeCheckpoint(bytes, native.crc32c)
  if (!decoded.ok) return decoded.reason
  const c = decoded.checkpoint
  const sb = superblock
  if (c.fileId !== sb.fileId || c.createdMs !== sb.createdMs) return 'the checkpoint belongs to another daxfile'
  if (c.segmentBytes !== sb.segmentBytes || c.segments.length > sb.segmentCount || c.updateCounter > sb.updateCounter) {
    return 'the checkpoint records a larger or different geometry than the daxfile has'
  }
  if (c.head >= c.segments.length) return 'the checkpoint names a head segment it does not record'
  // The segments in use at the checkpoint: those whose recorded header is valid.
  const inUse = c.segments.map(
    (saved, i) => decodeSegmentHeader(Buffer.from(saved.header.buffer, saved.header.byteOffset, saved.header.length), c.fileId, i, native.crc32c) !== undefined,
  )
  const inconsistent = checkTables(c, inUse)
  if (inconsistent !== undefined) return `the checkpoint is inconsistent: ${inconsistent}`
  const unchanged: boolean[] = []
  const changed = new Set<number>()
  for (let i = 0; i < c.segments.length; i++) {
    const saved = c.segments[i]!
    if (!inUse[i]) continue
    if (domain.view(segmentHeaderOffset(i, sb.segmentBytes), SEGMENT_HEADER_BYTES).equals(saved.header)) {
      unchanged[i] = true
      const s = segments[i]!
      s.liveBytes = saved.liveBytes
      s.deadRecords = saved.deadRecords
      // Not recorded by earlier versions: assume a record as large as the segment, which only makes cleaning it look less worth it.
      s.maxRecordBytes = saved.maxRecordBytes > 0 ? saved.maxRecordBytes : sb.segmentBytes
    } else {
      changed.add(i)
    }
  }
  try {
    const index = KeyIndex.fromSnapshot(reader, c.index.entries, c.index.size)
    const tombstones = KeyIndex.fromSnapshot(reader, c.tombstones.entries, c.tombstones.size)
    if (changed.size > 0) {
      const inChanged = (location: number): boolean => changed.has(Math.floor(location / sb.segmentBytes))
      index.removeWhere(inChanged)
      tombstones.removeWhere(inChanged)
    }
    return { checkpoint: c, tables: { index, tombstones }, unchanged, heldPuts: segmentsHoldingPuts(c) }
  } catch (error) {
    return (error as Error).message
  }
}

/**
 * What must hold of a checkpoint before any of it is used, checked without
 * reading the daxfile (each check is linear in the checkpoint's size, so a
 * crafted one cannot make it slow): every segment's figures fit its
 * segment; each table has exactly as many entries as it says, so probes
 * always reach an empty slot; every entry sits where a probe from its
 * home slot finds it; and every location lies, 8-byte aligned, before the
 * data end of a segment in use at the checkpoint. Why not, or undefined.
 */
function checkTables(c: Checkpoint, inUse: readonly boolean[]): string | undefined {
  for (let i = 0; i < c.segments.length; i++) {
    const s = c.segments[i]!
    const dataStart = segmentDataOffset(i, c.segmentBytes)
    const end = (i + 1) * c.segmentBytes
    const used = s.dataEnd - dataStart
    const whole = [s.dataEnd, s.lastSeq, s.liveBytes, s.deadRecords].every((n) => Number.isSafeInteger(n) && n >= 0)
    if (!whole || s.dataEnd < dataStart || s.dataEnd > end || s.liveBytes > used || s.lastSeq >= c.nextBatchSeq || s.maxRecordBytes > c.segmentBytes) {
      return `segment ${i}'s figures do not fit it`
    }
  }
  for (const [name, table] of [['index', c.index], ['tombstone', c.tombstones]] as const) {
    const { entries, size } = table
    const slots = entries.length / 2
    const mask = slots - 1
    let occupied = 0
    let firstEmpty = -1
    for (let i = 0; i < slots; i++) {
      if (entries[2 * i] === -1) {
        if (firstEmpty < 0) firstEmpty = i
        continue
      }
      occupied++
      const location = entries[2 * i]!
      const segment = Math.floor(location / c.segmentBytes)
      const saved = c.segments[segment]
      if (location < 0 || location % 8 !== 0 || saved === undefined || inUse[segment] !== true) return `an entry of the ${name} table points outside the segments in use`
      if (location < segmentDataOffset(segment, c.segmentBytes) || location + RECORD_HEADER_BYTES > saved.dataEnd) return `an entry of the ${name} table points outside its segment's batches`
    }
    if (occupied !== size || firstEmpty < 0) return `the ${name} table holds ${occupied} entries, not the ${size} it records`
    // One pass from an empty slot: inside each run of occupied slots, an
    // entry's home slot must lie between the run's start and the entry.
    let runStart = -1
    for (let k = 1; k <= slots; k++) {
      const i = (firstEmpty + k) & mask
      if (entries[2 * i] === -1) {
        runStart = -1
        continue
      }
      if (runStart < 0) runStart = i
      const home = entries[2 * i + 1]! & mask
      if (((home - runStart) & mask) > ((i - runStart) & mask)) return `an entry of the ${name} table sits where no lookup of its key reaches it`
    }
  }
  return undefined
}

/** Which segments the checkpoint's index table points into (checkTables has checked every location). */
function segmentsHoldingPuts(c: Checkpoint): boolean[] {
  const held: boolean[] = []
  const entries = c.index.entries
  for (let i = 0; i < entries.length; i += 2) if (entries[i] !== -1) held[Math.floor(entries[i]! / c.segmentBytes)] = true
  return held
}

/**
 * C3: why the validated log is not the checkpoint's log plus what was
 * appended after it, or undefined when it is: every segment sealed at the
 * checkpoint and unchanged ends where it ended; the checkpoint's head, if
 * unchanged, has kept its batches and maybe gained more; every other
 * segment in use was opened after the checkpoint and starts after its last
 * batch, so the replay from the checkpoint's next batch saw every batch it
 * did not hold.
 */
export function continuesCheckpoint(log: RecoveryResult, start: CheckpointStart): string | undefined {
  const c = start.checkpoint
  if (log.nextBatchSeq < c.nextBatchSeq || log.nextSegmentSeq < c.nextSegmentSeq) {
    return `the log ends at batch ${log.nextBatchSeq - 1}, before the checkpoint's batch ${c.nextBatchSeq - 1}`
  }
  // A segment that held a live put at the checkpoint is only freed or
  // reused once that put was overwritten, deleted or copied: each writes a
  // batch. With none written since, it must still be the one recorded.
  if (log.nextBatchSeq === c.nextBatchSeq) {
    for (const [i, held] of start.heldPuts.entries()) {
      if (held === true && start.unchanged[i] !== true) return `segment ${i} held live records at the checkpoint and no longer holds them, yet no batch was written since`
    }
  }
  for (const s of log.segments) {
    if (s.header === undefined) continue
    const saved = c.segments[s.index]
    if (start.unchanged[s.index] === true && saved !== undefined) {
      // The chain of batch checksums tells these batches from others with the same sequence numbers
      // (a log rolled back and written again, a diverged copy of the daxfile).
      const same =
        s.index === c.head
          ? s.lastSeq >= saved.lastSeq && s.dataEnd >= saved.dataEnd && (saved.lastSeq < s.header.firstBatchSeq || log.chainBeforeFrom === saved.chain)
          : s.lastSeq === saved.lastSeq && s.dataEnd === saved.dataEnd && s.chain === saved.chain
      if (!same) return `segment ${s.index} holds other batches than the checkpoint records`
    } else if (s.header.segmentSeq < c.nextSegmentSeq || s.header.firstBatchSeq < c.nextBatchSeq) {
      return `segment ${s.index} is neither the one the checkpoint records nor newer than it`
    }
  }
  return undefined
}
