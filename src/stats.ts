import type { KeyEncoding, ValueEncoding } from './encoding.js'
import type { LogStore } from './engine/log-store.js'
import type { RecoveryReport } from './engine/recovery.js'
import type { DomainKind, PersistenceDomain } from './platform/domain.js'
import { MappedDomain } from './platform/mapped-domain.js'
import { native } from './platform/native.js'
import type { Encodings } from './recorded-encodings.js'

/** What {@link DaxKV.stats} reports. */
export interface Stats {
  readonly mode: DomainKind
  readonly path: string
  readonly sync: boolean
  readonly keys: number
  /** The daxfile's capacity as its superblock records it (the file itself may be longer after an interrupted growth). */
  readonly fileBytes: number
  readonly maxFileBytes: number
  readonly segmentBytes: number
  readonly segments: number
  readonly segmentsInUse: number
  readonly segmentsFree: number
  /** Bytes of batches in the segments in use. */
  readonly usedBytes: number
  /** Bytes of live records: the latest put of each key and the latest tombstone of each deleted key still in the log. */
  readonly liveBytes: number
  /** Share of the used bytes that compaction could reclaim. */
  readonly garbageRatio: number
  readonly batchesWritten: number
  readonly recordsWritten: number
  /** Bytes appended for callers since open. */
  readonly bytesAppended: number
  /** Segments cleaned by compaction since open. */
  readonly compactions: number
  /** Bytes compaction appended again since open. */
  readonly bytesCopied: number
  /** (bytesAppended + bytesCopied) / bytesAppended: bytes written to the log per byte written by callers. */
  readonly writeAmplification: number
  readonly tombstonesDropped: number
  /** Times the file grew since open. */
  readonly growths: number
  /** Segments the head moved to since open (segment rolls). */
  readonly segmentsOpened: number
  /** Index checkpoints written in the background since open (not counting the one at close). */
  readonly checkpointsWritten: number
  readonly cache: { readonly entries: number; readonly hits: number; readonly misses: number }
  /**
   * How commits reach durable media: 'cache-flush' (dax, forced-dax), 'msync' (stores into the
   * mapping, msync; tmpfs), 'pwrite+fdatasync' (msync mode on a disk filesystem), or 'simulated'.
   */
  readonly writePath: 'cache-flush' | 'msync' | 'pwrite+fdatasync' | 'simulated'
  /** The cache-line write-back instruction in use in dax and forced-dax modes. */
  readonly flushInstruction: string | undefined
  readonly crc32c: string
  /** statx's DAX attribute of the file (null when unknown or simulated). */
  readonly statxDax: boolean | null
  /**
   * What breaks the daxfile contract in the file's block map, as last
   * checked (at open the file is refused for it; afterwards at background
   * checkpoints and by verify()): shared or unwritten extents that appeared
   * while the store was open, for example after a reflink copy of the live
   * file. Empty when all is well, or on a filesystem without FIEMAP.
   */
  readonly blockMapProblems: readonly string[]
  /**
   * The value and key encodings in use, and those the daxfile records (null when it records none:
   * created before daxkv recorded them). In use and recorded differ only in a raw view (`'binary'`
   * on a store created with another encoding) or when nothing is recorded.
   */
  readonly encodings: {
    readonly value: ValueEncoding
    readonly key: KeyEncoding
    readonly recordedValue: ValueEncoding | null
    readonly recordedKey: KeyEncoding | null
  }
  readonly recovery: RecoveryReport
}


/** What {@link statsOf} needs besides the store. */
export interface StatsSources {
  readonly store: LogStore
  readonly path: string
  readonly maxFileBytes: number
  readonly checkpointsWritten: number
  readonly cache: Stats['cache']
  readonly statxDax: boolean | null
  readonly blockMapProblems: readonly string[]
  readonly encodings: Encodings
}

/** The figures of {@link Stats}, gathered from the engine and the platform. */
export function statsOf(sources: StatsSources): Stats {
  const { store } = sources
  const usage = store.space()
  const kind = store.domain.kind
  const { counters } = store
  return {
    mode: kind,
    path: sources.path,
    sync: store.writer.durable,
    keys: store.index.size,
    fileBytes: store.superblock.fileBytes,
    maxFileBytes: sources.maxFileBytes,
    segmentBytes: store.superblock.segmentBytes,
    segments: usage.segments,
    segmentsInUse: usage.segmentsInUse,
    segmentsFree: usage.segmentsFree,
    usedBytes: usage.usedBytes,
    liveBytes: usage.liveBytes,
    garbageRatio: usage.usedBytes === 0 ? 0 : usage.garbageBytes / usage.usedBytes,
    batchesWritten: counters.batches,
    recordsWritten: counters.records,
    bytesAppended: counters.bytesAppended,
    compactions: counters.compactions,
    bytesCopied: counters.bytesCopied,
    writeAmplification: counters.bytesAppended === 0 ? 1 : (counters.bytesAppended + counters.bytesCopied) / counters.bytesAppended,
    tombstonesDropped: counters.tombstonesDropped,
    growths: counters.growths,
    segmentsOpened: counters.segmentsOpened,
    checkpointsWritten: sources.checkpointsWritten,
    cache: sources.cache,
    writePath: writePathOf(store.domain),
    flushInstruction: kind === 'dax' || kind === 'forced-dax' ? native.flushInstruction : undefined,
    crc32c: native.crc32cImplementation,
    statxDax: sources.statxDax,
    blockMapProblems: sources.blockMapProblems,
    encodings: {
      value: sources.encodings.value,
      key: sources.encodings.key,
      recordedValue: sources.encodings.recordedValue ?? null,
      recordedKey: sources.encodings.recordedKey ?? null,
    },
    recovery: store.recovery,
  }
}

function writePathOf(domain: PersistenceDomain): Stats['writePath'] {
  if (domain.kind === 'simulated') return 'simulated'
  if (domain.kind !== 'msync') return 'cache-flush'
  return domain instanceof MappedDomain && domain.writeThrough ? 'pwrite+fdatasync' : 'msync'
}
