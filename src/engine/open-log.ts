import { DaxKVError, ErrorCode } from '../errors.js'
import { SEGMENT_HEADER_BYTES } from '../format/constants.js'
import { decodeSegmentHeader, segmentHeaderOffset } from '../format/segment.js'
import type { Superblock } from '../format/superblock.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { native } from '../platform/native.js'
import { Accounting } from './accounting.js'
import { checkpointStart, continuesCheckpoint } from './checkpoint.js'
import { LogState } from './log-state.js'
import type { RecordReader } from './record-reader.js'
import { readSegmentTable, recover, type RecoveryReport, type RecoveryResult } from './recovery.js'
import { readSuperblocks } from './superblock-io.js'

export interface OpenLogOptions {
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
  if (options.checkpoint !== undefined) {
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
        checkpointRejected = continuesCheckpoint(result, start)
        if (checkpointRejected === undefined) opened = { segments, accounting, result }
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
