import { DaxKVError, ErrorCode } from '../errors.js'
import type { PersistenceDomain } from '../platform/domain.js'
import type { Accounting } from './accounting.js'
import { blankSegment, type LogState } from './log-state.js'
import { updateSuperblock } from './superblock-io.js'

/** Why the file did not grow, with the error of a failed allocation. */
export type NoGrowth = { readonly why: 'autoGrow is off' | 'maximum size' } | { readonly why: 'no disk space'; readonly cause: string }

/**
 * G1-G3 (docs/format.md): adds whole segments (a quarter more, at least
 * one) up to `maxBytes`. The new bytes are allocated, zeroed and durable
 * before the superblock that counts them is written; a crash before that
 * leaves a file longer than its superblock says, which recovery ignores
 * and the next growth redoes. Returns why it did not grow, or undefined
 * when it did.
 */
export function growFile(
  domain: PersistenceDomain,
  state: LogState,
  accounting: Accounting,
  limits: { readonly autoGrow: boolean; readonly maxBytes: number },
): NoGrowth | undefined {
  const sb = state.superblock
  const { segmentBytes } = sb
  if (!limits.autoGrow) return { why: 'autoGrow is off' }
  const limit = Math.floor(limits.maxBytes / segmentBytes) * segmentBytes
  const fileBytes = Math.min(limit, sb.fileBytes + Math.max(1, Math.ceil(sb.segmentCount / 4)) * segmentBytes)
  if (fileBytes <= sb.fileBytes) return { why: 'maximum size' }
  try {
    // G1, G2.
    domain.grow(sb.fileBytes, fileBytes)
  } catch (error) {
    if (error instanceof DaxKVError && error.code === ErrorCode.FULL) return { why: 'no disk space', cause: error.message }
    throw error
  }
  // G3.
  updateSuperblock(domain, state, { fileBytes, segmentCount: fileBytes / segmentBytes })
  const grown = state.superblock
  for (let index = sb.segmentCount; index < grown.segmentCount; index++) state.segments.push(blankSegment(index, segmentBytes))
  accounting.segmentsAdded(grown.segmentCount - sb.segmentCount)
  state.counters.growths++
  return undefined
}

/** The DAXKV_FULL message: what has no room, why the file did not grow, and what to do. */
export function fullMessage(state: LogState, length: number, noGrowth: NoGrowth | undefined, maxBytes: number): string {
  let growth = ` at its maximum size (maxSize, ${maxBytes} bytes)`
  if (noGrowth?.why === 'autoGrow is off') growth = ' (autoGrow is off)'
  else if (noGrowth?.why === 'no disk space') growth = `, and growing it failed: the filesystem has no space left (${noGrowth.cause})`
  return (
    `the daxfile is full: no room for a ${length}-byte batch in ${state.segments.length} segments of ${state.segmentBytes} bytes${growth}. ` +
    `Nothing acknowledged is lost and reads still work; deletes can always free space, and compaction reclaims it. ` +
    (noGrowth?.why === 'no disk space' ? 'Free disk space, or delete data and compact' : 'Delete data and compact, raise maxSize, or move to a larger file')
  )
}
