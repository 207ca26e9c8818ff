/** What the corrupt-file campaign's parent (pool.ts) and child (child.ts) exchange, one JSON line each way per case. */
import { createHash } from 'node:crypto'
import type { ModeRequest } from '../../platform/daxfile.js'

/** One case: the file to open and the keys to get() (byte strings, latin1; the campaign's keys are ASCII). */
export interface CaseRequest {
  readonly file: string
  readonly mode: ModeRequest
  readonly indexCheckpoint: boolean
  readonly keys: readonly string[]
}

/** Where a case stopped, if it did not run to the end. */
export type CaseStage = 'open' | 'read' | 'verify' | 'write' | 'close'

/** What the child saw. `entries` maps keys (latin1) to value digests, as read before any error. */
export interface CaseReply {
  readonly opened: boolean
  readonly entries: [string, string][]
  /** Keys get() found with another value than range() gave, or that range() missed. */
  readonly getMismatches: string[]
  readonly problems: string[]
  /** The first error, with the stage it stopped; `code` undefined for an untyped error. */
  readonly error: { readonly stage: CaseStage; readonly code: string | undefined; readonly message: string } | undefined
  readonly maxRssBytes: number
}

/** The probe key written after reading: a key no workload uses. */
export const PROBE_KEY = '\u0001corrupt-campaign-probe'

export function digestOf(value: Uint8Array): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 32)
}

