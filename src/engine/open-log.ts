import { DaxKVError, ErrorCode } from '../errors.js'
import { SEGMENT_HEADER_BYTES } from '../format/constants.js'
import { FORMAT_VERSION, FORMAT_VERSION_V1 } from '../format/constants.js'
import { SEGMENT_FREE_MARK, decodeSegmentHeader, segmentHeaderOffset } from '../format/segment.js'
import { SUPERBLOCK_FLAG_RELAXED, noCheckpointDigest, sameDigest, type Superblock } from '../format/superblock.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { native } from '../platform/native.js'
import { Accounting } from './accounting.js'
import { checkpointDigest, checkpointStart, continuesCheckpoint } from './checkpoint.js'
import { LogState } from './log-state.js'
import type { RecordReader } from './record-reader.js'
import { readSegmentTable, recover, type RecoveryReport, type RecoveryResult } from './recovery.js'
import { readSuperblocks, updateSuperblock } from './superblock-io.js'

export interface OpenLogOptions {
  /** Whether batches will be made durable at commit (`sync`): sets or clears the superblock's RELAXED flag. */
  readonly durable: boolean
  /** Called with the superblock before recovery may write (the extent check). */
  readonly beforeRecovery?: (superblock: Superblock) => void
  /** The bytes of an index checkpoint file: the index is resumed from it if the log continues it. */
  readonly checkpoint?: Buffer
}

/** What opening the log found: where it stands, which records are live, and the report. */
export interface OpenedLog {
  readonly state: LogState
  readonly accounting: Accounting
  readonly recovery: RecoveryReport
}

/**
 * Opens the log of a daxfile (docs/format.md, section 5): makes the file
 * durable, reads and repairs the superblock, refuses segments beyond it,
 * then rebuilds the index, from the index checkpoint and the batches
 * written after it (C1-C3) when the log continues the checkpoint, else
 * from a replay of the whole log. Every batch is validated either way.
 */
export function openLog(domain: PersistenceDomain, file: string, reader: RecordReader, options: OpenLogOptions): OpenedLog {
  const started = performance.now()
  // Step 1. A process that died before its last persist left bytes that
  // this process reads (they are in the page cache or the CPU caches) but a
  // power failure could still lose: a batch between Steps 3 and 4, a free
  // mark, zeros, a superblock copy. Everything below decides on what it
  // reads and builds on it, so first make all of it durable.
  domain.persistAll()
  // Steps 2-5. The extent check and the refusal of segments beyond the
  // superblock's size come before the first write (a superblock repair).
  const { superblock, slot, repairedSlot } = readSuperblocks(domain, file, (sb) => {
    options.beforeRecovery?.(sb)
    refuseSegmentsBeyond(domain, sb, file)
  })
  let checkpointRejected: string | undefined
  let tornTail: RecoveryReport['tornTail']
  let opened: { segments: ReturnType<typeof readSegmentTable>; accounting: Accounting; result: RecoveryResult } | undefined
  // Only the checkpoint whose digest the superblock recorded is used: it
  // was written by this daxfile's writer once every batch it describes was
  // durable, so a log that does not continue it lost acknowledged data.
  const recorded = superblock.checkpointDigest
  const bound = options.checkpoint !== undefined && !sameDigest(recorded, noCheckpointDigest()) && sameDigest(checkpointDigest(options.checkpoint), recorded)
  if (options.checkpoint !== undefined && !bound) checkpointRejected = 'it is not the checkpoint this daxfile recorded last'
  if (options.checkpoint !== undefined && bound) {
    // Steps 6-9 with C1-C3.
    const segments = readSegmentTable(domain, superblock)
    const start = checkpointStart(options.checkpoint, superblock, domain, reader, segments)
    if (typeof start === 'string') checkpointRejected = start
    else {
      const accounting = new Accounting(segments, superblock.segmentBytes, reader, start.tables)
      try {
        const result = recover(domain, superblock, segments, (type, location, bytes) => accounting.apply(type, location, bytes), {
          repair: true,
          fromSeq: start.checkpoint.nextBatchSeq,
        })
        tornTail = result.report.tornTail
        const broken = continuesCheckpoint(result, start)
        if (broken !== undefined) {
          throw new DaxKVError(
            ErrorCode.CORRUPTION,
            `${file}: the log does not continue the index checkpoint this daxfile recorded (${broken}): acknowledged writes are missing ` +
              `or were rolled back. Restore the file from a backup`,
          )
        }
        opened = { segments, accounting, result }
      } catch (error) {
        // A damaged log is reported as the replay would report it; anything
        // else came from the checkpoint's tables (a location outside the
        // file), and the replay below starts over without them.
        if (error instanceof DaxKVError) throw error
        checkpointRejected = `the checkpoint does not fit the log (${String(error)})`
      }
    }
  }
  const resumed = opened !== undefined
  if (opened === undefined) {
    // Steps 6-9: every record into fresh tables.
    const segments = readSegmentTable(domain, superblock)
    const accounting = new Accounting(segments, superblock.segmentBytes, reader)
    const result = recover(domain, superblock, segments, (type, location, bytes) => accounting.apply(type, location, bytes))
    opened = { segments, accounting, result }
  }
  const { segments, accounting, result } = opened
  // The checkpoint does not record each segment's live tombstone bytes; the table does.
  if (resumed) accounting.countTombstones()
  accounting.recount()
  // Step 10.
  const state = new LogState(superblock, slot, segments, result.head, { batchSeq: result.nextBatchSeq, segmentSeq: result.nextSegmentSeq })
  updateAtOpen(domain, state, options.durable)
  const recovery: RecoveryReport = {
    ...result.report,
    tornTail: tornTail ?? result.report.tornTail,
    superblockRepaired: repairedSlot,
    checkpointRejected,
    durationMs: performance.now() - started,
    source: resumed ? 'checkpoint' : 'log',
  }
  return { state, accounting, recovery }
}

/**
 * Step 11. What the superblock must say before the writer starts: a file
 * of format 1 is rewritten in format 2, counting the segments ever used
 * (every segment past the last one in use or free-marked was found zero);
 * the RELAXED flag is set when batches will not be durable at commit, and
 * cleared when they will.
 */
function updateAtOpen(domain: PersistenceDomain, state: LogState, durable: boolean): void {
  const sb = state.superblock
  const changes: { formatVersion?: number; segmentsUsed?: number; flags?: number } = {}
  if (sb.formatVersion === FORMAT_VERSION_V1) {
    changes.formatVersion = FORMAT_VERSION
    let used = 0
    for (const s of state.segments) {
      const freeMarked = domain.view(segmentHeaderOffset(s.index, sb.segmentBytes), 8).readDoubleLE(0) === SEGMENT_FREE_MARK
      if (s.header !== undefined || freeMarked) used = s.index + 1
    }
    changes.segmentsUsed = used
  }
  const relaxed = (sb.flags & SUPERBLOCK_FLAG_RELAXED) !== 0
  if (relaxed === durable) changes.flags = durable ? sb.flags & ~SUPERBLOCK_FLAG_RELAXED : sb.flags | SUPERBLOCK_FLAG_RELAXED
  if (Object.keys(changes).length > 0) updateSuperblock(domain, state, changes)
}

/**
 * Step 4. A file longer than its superblock says is an interrupted growth,
 * whose extra segments were never used. If one of them holds a valid
 * header, the superblock copy that counted it is lost: refuse rather than
 * ignore what was written there.
 */
function refuseSegmentsBeyond(domain: PersistenceDomain, superblock: Superblock, file: string): void {
  const { segmentBytes, fileId } = superblock
  for (let index = superblock.segmentCount; (index + 1) * segmentBytes <= domain.size; index++) {
    const at = segmentHeaderOffset(index, segmentBytes)
    if (decodeSegmentHeader(domain.view(at, SEGMENT_HEADER_BYTES), fileId, index, native.crc32c) !== undefined) {
      throw new DaxKVError(
        ErrorCode.CORRUPTION,
        `${file}: segment ${index} lies beyond the size the superblock records (${superblock.fileBytes} bytes) but holds data: ` +
          `the superblock copy written when the file grew is damaged. Restore the file from a backup`,
      )
    }
  }
}
