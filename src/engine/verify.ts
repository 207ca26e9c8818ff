import { SUPERBLOCK_BYTES } from '../format/constants.js'
import { decodeSuperblock, superblockOffset } from '../format/superblock.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { native } from '../platform/native.js'
import { Accounting } from './accounting.js'
import { KeyIndex } from './key-index.js'
import type { LogState } from './log-state.js'
import type { RecordReader } from './record-reader.js'
import { readSegmentTable, recover, type RecoveryResult } from './recovery.js'

/** What {@link verifyLog} found; `problems` is empty when `ok`. */
export interface VerifyReport {
  readonly ok: boolean
  readonly problems: string[]
  readonly batches: number
  readonly records: number
  readonly keys: number
}

const MAX_PROBLEMS = 50

/**
 * Re-reads the whole log without writing and checks it against the live
 * state: both superblock copies, every segment header and batch, invariant
 * Z, that replaying the log gives exactly the index and tombstones in
 * memory, each segment's batch fingerprint, and that the live-space
 * accounting and its running totals match.
 */
export function verifyLog(domain: PersistenceDomain, state: LogState, live: Accounting, reader: RecordReader): VerifyReport {
  const problems: string[] = []
  const note = (problem: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(problem)
  }
  for (const slot of [0, 1] as const) {
    const check = decodeSuperblock(domain.view(superblockOffset(slot), SUPERBLOCK_BYTES), native.crc32c)
    if (!check.ok) note(`superblock copy ${slot} is invalid: ${check.detail}`)
  }
  const segments = readSegmentTable(domain, state.superblock)
  const replay = new Accounting(segments, state.segmentBytes, reader, { index: new KeyIndex(reader, live.index.size), tombstones: new KeyIndex(reader) })
  let result: RecoveryResult
  try {
    result = recover(domain, state.superblock, segments, (type, location, bytes) => replay.apply(type, location, bytes), { repair: false })
  } catch (error) {
    note(error instanceof Error ? error.message : String(error))
    return { ok: false, problems, batches: 0, records: 0, keys: live.index.size }
  }
  for (const damage of result.report.unusedEndDamage) {
    note(`segment ${damage.segment} holds ${damage.bytes} non-zero bytes in its unused end at offset ${damage.offset}: damage to bytes that hold no data`)
  }
  const torn = result.report.tornTail
  if (torn !== undefined) note(`segment ${torn.segment} holds ${torn.bytes} bytes of garbage after its last batch at offset ${torn.offset} (${torn.reason})`)
  if (result.nextBatchSeq !== state.nextBatchSeq) note(`the log ends before batch ${result.nextBatchSeq}, but the writer is at ${state.nextBatchSeq}`)
  if (result.head !== state.head) note(`the log's head segment is ${result.head}, but the writer's is ${state.head}`)
  const tables = [
    ['keys', 'the index', replay.index, live.index, 'key'],
    ['tombstones', 'memory', replay.tombstones, live.tombstones, 'tombstone of'],
  ] as const
  for (const [what, where, replayed, held, name] of tables) {
    if (replayed.size !== held.size) note(`replaying the log gives ${replayed.size} ${what}, ${where} has ${held.size}`)
    for (const key of replayed.keys(undefined, undefined, false)) {
      const location = held.get(key)
      if (location !== replayed.get(key)) note(`${name} ${JSON.stringify(key)}: the log puts it at ${replayed.get(key)}, ${where} at ${location}`)
    }
  }
  for (const s of state.segments) {
    const replayed = segments[s.index]
    if (s.header === undefined || replayed === undefined) continue
    if (replayed.chain !== s.chain) note(`segment ${s.index}: the fingerprint of its batches is ${replayed.chain} in the log, ${s.chain} in memory`)
    if (s.liveBytes !== replayed.liveBytes || s.deadRecords !== replayed.deadRecords || s.tombstoneBytes !== replayed.tombstoneBytes) {
      note(
        `segment ${s.index} accounts ${s.liveBytes} live bytes, ${s.deadRecords} dead records and ${s.tombstoneBytes} tombstone bytes; ` +
          `the log gives ${replayed.liveBytes}, ${replayed.deadRecords} and ${replayed.tombstoneBytes}`,
      )
    }
    if (s.maxRecordBytes < replayed.maxRecordBytes) note(`segment ${s.index} holds a record of ${replayed.maxRecordBytes} bytes, more than the ${s.maxRecordBytes} it accounts`)
  }
  const totals = live.checkTotals()
  if (totals !== undefined) note(totals)
  return { ok: problems.length === 0, problems, batches: result.report.batches, records: result.report.records, keys: replay.index.size }
}
