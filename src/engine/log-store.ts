import { SUPERBLOCK_FLAG_RELAXED, noCheckpointDigest, sameDigest, type Superblock } from '../format/superblock.js'
import type { PersistenceDomain } from '../platform/domain.js'
import type { Accounting } from './accounting.js'
import { checkpointSize, takeCheckpoint } from './checkpoint.js'
import { Compactor } from './compactor.js'
import type { KeyIndex } from './key-index.js'
import { Latch } from './latch.js'
import './layout.js'
import type { LogCounters, LogState } from './log-state.js'
import { openLog } from './open-log.js'
import { RecordReader } from './record-reader.js'
import type { RecoveryReport } from './recovery.js'
import type { SpaceUsage } from './space.js'
import { updateSuperblock } from './superblock-io.js'
import { verifyLog, type VerifyReport } from './verify.js'
import { commitBatch, Writer, type CommitProtocol } from './writer.js'

export interface LogStoreOptions {
  /** Make each batch durable before append() returns (the public option `sync`). */
  readonly durable: boolean
  /** Grow the file by whole segments when free segments run low. */
  readonly autoGrow: boolean
  /** Never grow beyond this many bytes. */
  readonly maxBytes: number
  /** Called with the superblock before recovery may write (the extent check). */
  readonly beforeRecovery?: (superblock: Superblock) => void
  /** The bytes of an index checkpoint file: the index is resumed from it if the log continues it. */
  readonly checkpoint?: Buffer
  /** The commit protocol; the crash tests pass broken ones. Default {@link commitBatch}. */
  readonly commit?: CommitProtocol
}

/**
 * The engine of one daxfile: the log and the index it implies. It trusts
 * its inputs (the public layer validates and encodes them) and only wires
 * the parts together, each of which does one job:
 *
 * - open-log.ts: open and recovery (with checkpoint.ts, recovery.ts);
 * - writer.ts: appends with the commit protocol, rolls, frees, grows;
 * - compactor.ts: segment cleaning;
 * - accounting.ts: which records are live (the index) and the space they use;
 * - record-reader.ts: reads records back from the mapping;
 * - verify.ts: the full check;
 * - latch.ts: the failed state after an I/O error.
 *
 * Reads go to `index` and `reader`, writes to `writer`, directly.
 */
export class LogStore {
  readonly domain: PersistenceDomain
  readonly reader: RecordReader
  readonly writer: Writer
  readonly compactor: Compactor
  readonly recovery: RecoveryReport
  readonly #state: LogState
  readonly #accounting: Accounting
  readonly #latch: Latch

  private constructor(domain: PersistenceDomain, file: string, options: LogStoreOptions) {
    this.domain = domain
    this.reader = new RecordReader(domain)
    const { state, accounting, recovery } = openLog(domain, file, this.reader, options)
    this.#state = state
    this.#accounting = accounting
    this.recovery = recovery
    this.#latch = new Latch()
    const writerOptions = { durable: options.durable, autoGrow: options.autoGrow, maxBytes: options.maxBytes, commit: options.commit ?? commitBatch }
    // The writer cleans a segment when it runs out of room; the compactor appends its copies through the writer.
    this.writer = new Writer(domain, state, accounting, this.#latch, writerOptions, () => this.compactor)
    this.compactor = new Compactor(domain, state, accounting, this.writer, this.#latch)
  }

  /** Validates the superblock of `domain`, recovers the log, and returns the store. */
  static open(domain: PersistenceDomain, file: string, options: LogStoreOptions): LogStore {
    return new LogStore(domain, file, options)
  }

  /** Key -> location of the key's newest put. */
  get index(): KeyIndex {
    return this.#accounting.index
  }

  get superblock(): Superblock {
    return this.#state.superblock
  }

  get counters(): Readonly<LogCounters> {
    return this.#state.counters
  }

  /** The error that latched the store, if any. */
  get failed(): Error | undefined {
    return this.#latch.failed
  }

  /** Sequence number the next batch will carry. */
  get nextBatchSeq(): number {
    return this.#state.nextBatchSeq
  }

  space(): SpaceUsage {
    return this.#accounting.usage()
  }

  /** How many bytes {@link checkpoint} would return now. */
  checkpointBytes(): number {
    return checkpointSize(this.#state, this.#accounting)
  }

  /** The index checkpoint of the log as it is now (engine/checkpoint.ts). */
  checkpoint(): Buffer {
    return takeCheckpoint(this.domain, this.#state, this.#accounting)
  }

  /** The full check of verify.ts. */
  verify(): VerifyReport {
    return verifyLog(this.domain, this.#state, this.#accounting, this.reader)
  }

  /**
   * Throws (and latches the store) when the daxfile was deleted or renamed
   * over while open (PersistenceDomain.checkLinked).
   */
  checkLinked(): void {
    this.#latch.check()
    try {
      this.domain.checkLinked()
    } catch (error) {
      throw this.#latch.fail(error, 'checking the daxfile')
    }
  }

  /**
   * Records in the superblock the digest of an index checkpoint that was
   * just written beside the daxfile, once every batch it describes is
   * durable (docs/format.md, "Index checkpoint").
   */
  recordCheckpoint(digest: Uint8Array): void {
    this.#latch.check()
    try {
      this.writer.persistPending()
      updateSuperblock(this.domain, this.#state, { checkpointDigest: digest })
    } catch (error) {
      throw this.#latch.fail(error, 'recording the index checkpoint')
    }
  }

  /**
   * Persists what is pending, records in the superblock that everything is
   * durable (RELAXED cleared) and the digest of the checkpoint about to be
   * written beside the daxfile (none: `digest` undefined), and releases
   * the domain; throws if the daxfile lost its name while open.
   */
  close(digest?: Uint8Array): void {
    try {
      if (this.#latch.failed === undefined) {
        this.writer.persistPending()
        this.domain.persistAll()
        const sb = this.#state.superblock
        const recorded = digest ?? noCheckpointDigest()
        if ((sb.flags & SUPERBLOCK_FLAG_RELAXED) !== 0 || !sameDigest(recorded, sb.checkpointDigest)) {
          updateSuperblock(this.domain, this.#state, { flags: sb.flags & ~SUPERBLOCK_FLAG_RELAXED, checkpointDigest: recorded })
        }
        this.domain.checkLinked()
      }
    } finally {
      this.domain.close()
    }
  }
}
