/** What the process-kill campaign's child (kill-child.ts) and parent (process-kill.ts) share. */
import type { WorkloadShape } from './workload.js'

/**
 * Store options of the child and of the parent's reopen; they must agree.
 * Background index checkpoints every 128 KiB of log, so kills also land
 * while one is being taken or written.
 */
export const KILL_DB_OPTIONS = { valueEncoding: 'binary', cacheSize: 0, segmentSize: 64 * 1024, checkpointInterval: 128 * 1024 } as const
/** The daxfile of a kill campaign: a few MiB, so a fresh one is cheap to make. */
export const KILL_FILE_BYTES = 4 * 1024 * 1024
/**
 * The child's file may grow to this size (growth is one of the things a
 * kill should interrupt), and no further: a child that reaches it stops
 * with `full` and the next round starts a fresh file.
 */
export const KILL_FILE_BYTES_MAX = 16 * 1024 * 1024
/**
 * The workload mix; the child and the parent generate the same steps from
 * it. A few full compactions join the background cleaning, so kills also
 * land inside compact().
 */
export const KILL_SHAPE: Partial<WorkloadShape> = { compactRatio: 0.02 }
/** Steps one child runs at most before it stops on its own. */
export const KILL_STEPS_MAX = 3000
