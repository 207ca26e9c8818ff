import {
  checkpointPath,
  removeCheckpointFile,
  writeCheckpointFile,
  writeCheckpointFileInBackground,
} from '../platform/checkpoint-file.js'
import { checkpointDigest } from './checkpoint.js'
import type { LogStore } from './log-store.js'

/** Bytes of a victim segment one compaction step scans: small enough to keep the event loop responsive. */
export const COMPACTION_STEP_BYTES = 256 * 1024
/** Background index checkpoints come at least this many log bytes apart by default. */
const CHECKPOINT_INTERVAL_MIN = 64 * 1024 * 1024

export interface BackgroundOptions {
  /** Clean segments in the background when the compactor wants to. */
  readonly compaction: boolean
  /** The daxfile's path when it has an index checkpoint beside it (undefined on a simulated domain). */
  readonly daxfile: string | undefined
  /** Keep the index checkpoint (the option `indexCheckpoint`); without it, close removes one left by an earlier open. */
  readonly keepCheckpoint: boolean
  /** Log bytes between background checkpoints; 0: only at close; undefined: the default rule. */
  readonly checkpointInterval: number | undefined
  /** Called after each background checkpoint is recorded (a good moment for other checks of the file). */
  readonly afterCheckpoint?: () => void
}

/**
 * The store's background work, run between the caller's own: segment
 * cleaning a step per event-loop turn while the compactor wants it, and
 * an index checkpoint every checkpointInterval of log. Both pass one gate:
 * nothing runs once the store is closing or closed, or latched failed.
 * Also writes (or removes) the index checkpoint at close.
 */
export class BackgroundJobs {
  readonly #store: LogStore
  readonly #options: BackgroundOptions
  readonly #isOpen: () => boolean
  #compactionScheduled = false
  #checkpointScheduled = false
  /** Set while a background checkpoint is being written; the close and newer ones bump the generation. */
  #checkpointWriting = false
  #checkpointGeneration = 0
  #checkpointsWritten = 0
  /** Log bytes written (appended and copied) when the last checkpoint was taken, or at open. */
  #logBytesAtCheckpoint = 0

  constructor(store: LogStore, options: BackgroundOptions, isOpen: () => boolean) {
    this.#store = store
    this.#options = options
    this.#isOpen = isOpen
  }

  /** Index checkpoints written in the background since open. */
  get checkpointsWritten(): number {
    return this.#checkpointsWritten
  }

  /** Called after each round of commits: schedules what has become due. */
  afterCommits(): void {
    this.#scheduleCompaction()
    this.#scheduleCheckpoint()
  }

  /**
   * At close, with everything committed: drops a background checkpoint
   * still being written, takes the final one, closes the store (which makes
   * the log durable), then writes the checkpoint beside it, or removes a
   * stale one when checkpoints are off or the store failed.
   */
  close(): void {
    this.#checkpointGeneration++
    const file = this.#options.daxfile === undefined ? undefined : checkpointPath(this.#options.daxfile)
    const checkpoint = file !== undefined && this.#options.keepCheckpoint && this.#store.failed === undefined ? this.#store.checkpoint() : undefined
    this.#store.close(checkpoint === undefined ? undefined : checkpointDigest(checkpoint))
    // Only once everything is durable, and while the lock is still held.
    if (file === undefined) return
    if (checkpoint !== undefined) writeCheckpointFile(file, checkpoint)
    else removeCheckpointFile(file)
  }

  #mayRun(): boolean {
    return this.#isOpen() && this.#store.failed === undefined
  }

  /** Runs one bounded compaction step per event-loop turn while the compactor wants it. */
  #scheduleCompaction(): void {
    if (!this.#options.compaction || this.#compactionScheduled || !this.#mayRun()) return
    if (!this.#store.compactor.wanted()) return
    this.#compactionScheduled = true
    setImmediate(() => {
      this.#compactionScheduled = false
      if (!this.#mayRun()) return
      try {
        this.#store.compactor.step(COMPACTION_STEP_BYTES)
      } catch {
        // A full file only pauses cleaning until the next write asks again;
        // any other error latched the store, and every later call reports it.
        return
      }
      this.#scheduleCompaction()
    })
  }

  /**
   * Takes an index checkpoint once enough log has been written since the
   * last one. The tables are encoded at once (a copy of the index, so later
   * commits cannot change what it describes) and the file is written
   * asynchronously and renamed into place, unless the store was closed or a
   * newer checkpoint was taken meanwhile. A checkpoint describes a prefix
   * of the log, which is all an open needs (docs/format.md).
   */
  #scheduleCheckpoint(): void {
    const { daxfile, keepCheckpoint, checkpointInterval } = this.#options
    if (daxfile === undefined || !keepCheckpoint || checkpointInterval === 0) return
    if (this.#checkpointScheduled || this.#checkpointWriting || !this.#mayRun()) return
    const since = this.#logBytes() - this.#logBytesAtCheckpoint
    // This runs after every commit: the size-based part of the default is only looked at past its floor.
    if (since < (checkpointInterval ?? CHECKPOINT_INTERVAL_MIN) || since < this.#checkpointThreshold()) return
    this.#checkpointScheduled = true
    setImmediate(() => {
      this.#checkpointScheduled = false
      if (!this.#mayRun()) return
      try {
        this.#store.checkLinked()
      } catch {
        // The store is latched now; every later call reports why.
        return
      }
      const bytes = this.#store.checkpoint()
      this.#logBytesAtCheckpoint = this.#logBytes()
      const generation = ++this.#checkpointGeneration
      this.#checkpointWriting = true
      const stillWanted = (): boolean => this.#mayRun() && generation === this.#checkpointGeneration
      void writeCheckpointFileInBackground(checkpointPath(daxfile), bytes, String(generation), stillWanted)
        .then((written) => {
          // The file is in place; until the superblock records it, an open would not use it.
          if (!written || !stillWanted()) return
          this.#store.recordCheckpoint(checkpointDigest(bytes))
          this.#checkpointsWritten++
          this.#options.afterCheckpoint?.()
        })
        .catch(() => {
          // Recording failed: the store is latched, and every later call reports why.
        })
        .finally(() => {
          this.#checkpointWriting = false
        })
    })
  }

  /** Log bytes between background checkpoints: the option, or 64 MiB or 8x the checkpoint's size. */
  #checkpointThreshold(): number {
    return this.#options.checkpointInterval ?? Math.max(CHECKPOINT_INTERVAL_MIN, 8 * this.#store.checkpointBytes())
  }

  #logBytes(): number {
    const counters = this.#store.counters
    return counters.bytesAppended + counters.bytesCopied
  }
}
