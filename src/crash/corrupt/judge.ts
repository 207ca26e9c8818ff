/**
 * The corrupt-file campaign's verdict on one case. A damaged file must
 * either be refused with a typed error, or open to the state its undamaged
 * base opens to, except where the damage itself makes the difference
 * undetectable (docs/format.md, "What damage is detected"):
 *
 * - the damage touched the last batches of the log, after which no intact
 *   batch follows and which no recorded index checkpoint covers:
 *   indistinguishable from a torn tail, those batches may be lost;
 * - a segment in use left all zero (header and body) or given a free
 *   mark, unless a recorded checkpoint covers the whole log: it looks like
 *   a segment the writer zeroed to reuse it or the cleaner freed, and its
 *   batches may be lost;
 * - a segment or free mark restored from an older copy, with no recorded
 *   checkpoint: indistinguishable from a log that was never cleaned;
 * - a forged checkpoint (every checksum kept on purpose) may be believed.
 *
 * Even then every value read must be one its key once had. Never allowed:
 * a hang, a crash, an untyped error, a peak RSS beyond reason, get() and
 * range() disagreeing, or any other difference.
 */
import { checkpointDigest } from '../../engine/checkpoint.js'
import { isZero } from '../../format/batch.js'
import { decodeCheckpoint } from '../../format/checkpoint.js'
import { SEGMENT_FREE_MARK, segmentEndOffset } from '../../format/segment.js'
import { sameDigest } from '../../format/superblock.js'
import { native } from '../../platform/native.js'
import { PROBE_KEY, type CaseReply } from './protocol.js'
import type { IndexCase } from './damage-index.js'
import { overlaps, type FileLayout, type Range } from './layout.js'
import type { CaseRun } from './pool.js'
import type { BaseStore } from './stores.js'

export type Outcome =
  | 'refused at open'
  | 'refused after open'
  | 'opened intact'
  | 'opened, damage reported'
  | 'opened, torn tail cut'
  | 'opened, undetectable (documented)'
  | 'opened, forged checkpoint believed'
  | 'violation'

export interface Verdict {
  readonly outcome: Outcome
  /** For a violation: which rule, and what happened. */
  readonly invariant?: string
  readonly explanation?: string
}

export interface JudgedCase {
  readonly base: BaseStore
  readonly layout: FileLayout
  /** Key (latin1) to value digest: what the undamaged base opens to. */
  readonly reference: ReadonlyMap<string, string>
  readonly damageClass: string
  readonly image: Buffer
  readonly index: IndexCase
  readonly forged: boolean
}

/** A peak RSS above this means something read from disk made the child allocate without bound. */
export const RSS_LIMIT_BYTES = 1024 * 1024 * 1024

export function judge(c: JudgedCase, run: CaseRun): Verdict {
  if (run.kind === 'hang') return violation('nothing read from disk makes open() or a read hang', `no reply within ${run.ms} ms`)
  if (run.kind === 'died') return violation('nothing read from disk crashes the process', `the child ${run.how}: ${run.stderr.trim().slice(0, 500)}`)
  const reply = run.reply
  if (reply.maxRssBytes > RSS_LIMIT_BYTES) {
    return violation('nothing read from disk allocates without bound', `peak RSS ${Math.round(reply.maxRssBytes / 2 ** 20)} MiB`)
  }
  const error = reply.error
  if (error !== undefined && error.code === undefined) {
    return violation('bad input gets a typed DaxKVError', `untyped error at ${error.stage}: ${error.message}`)
  }
  if (!reply.opened) return { outcome: 'refused at open' }
  if (reply.getMismatches.length > 0 && !c.forged) {
    return violation('get() and range() agree', `they disagree on ${reply.getMismatches.map(show).join(', ')}`)
  }
  // A read that stopped with a typed error read only part of the state.
  const stateComplete = error === undefined || error.stage !== 'read'
  const differences = stateComplete ? compare(c, reply) : { kind: 'none' as const }
  if (differences.kind === 'violation') return violation(differences.invariant, differences.explanation)
  if (error !== undefined) return { outcome: 'refused after open' }
  if (differences.kind === 'tail') return { outcome: 'opened, torn tail cut' }
  if (differences.kind === 'undetectable') return { outcome: 'opened, undetectable (documented)' }
  if (differences.kind === 'forged') return { outcome: 'opened, forged checkpoint believed' }
  return { outcome: reply.problems.length > 0 ? 'opened, damage reported' : 'opened intact' }
}

type Differences =
  | { readonly kind: 'none' | 'tail' | 'undetectable' | 'forged' }
  | { readonly kind: 'violation'; readonly invariant: string; readonly explanation: string }

function compare(c: JudgedCase, reply: CaseReply): Differences {
  const got = new Map(reply.entries)
  const keys = new Set([...c.reference.keys(), ...got.keys()])
  keys.delete(PROBE_KEY)
  const changed = changedRanges(c.base.image, c.image)
  const covered = coveredSeq(c, changed)
  const tailKeys = tailLossKeys(c.layout, changed, covered)
  const undetectable = c.damageClass.startsWith('older:') && covered === 0
  const wholeLog = covered > 0 && covered === c.layout.batches.at(-1)?.seq
  const freedKeys = wholeLog ? new Set<string>() : freedSegmentKeys(c.layout, c.image)
  let kind: Differences['kind'] = 'none'
  for (const key of keys) {
    const want = c.reference.get(key)
    const have = got.get(key)
    if (want === have) continue
    const history = c.base.histories.get(key)
    if (have !== undefined && history?.has(have) !== true && !c.forged) {
      return { kind: 'violation', invariant: 'no wrong value', explanation: `${show(key)} reads a value it never had` }
    }
    if (c.forged) kind = 'forged'
    else if (tailKeys.has(key)) kind = kind === 'none' ? 'tail' : kind
    else if (undetectable || freedKeys.has(key)) kind = 'undetectable'
    else {
      const what = want !== undefined && have === undefined ? 'silently lost' : want === undefined ? 'resurrected' : 'rolled back to an earlier value'
      return {
        kind: 'violation',
        invariant: 'no silent loss, resurrection or rollback the damage did not touch',
        explanation: `${show(key)} ${what}; the damage changed ${describeRanges(changed)}`,
      }
    }
  }
  return { kind }
}

/** Byte ranges where `damaged` differs from `base` (a truncated end counts as changed). */
export function changedRanges(base: Buffer, damaged: Buffer): Range[] {
  const out: Range[] = []
  const common = Math.min(base.length, damaged.length)
  const CHUNK = 4096
  let open: number | undefined
  for (let chunk = 0; chunk < common; chunk += CHUNK) {
    const end = Math.min(chunk + CHUNK, common)
    if (open === undefined && base.subarray(chunk, end).equals(damaged.subarray(chunk, end))) continue
    for (let i = chunk; i < end; i++) {
      const differs = base[i] !== damaged[i]
      if (differs && open === undefined) open = i
      else if (!differs && open !== undefined) {
        out.push({ start: open, end: i })
        open = undefined
      }
    }
  }
  if (open !== undefined) out.push({ start: open, end: common })
  if (damaged.length < base.length) out.push({ start: damaged.length, end: base.length })
  return out
}

/**
 * The last batch the case's index checkpoint covers, when the checkpoint
 * is the base's own, recorded in its superblock, and the damage left the
 * superblock copies alone; 0 otherwise.
 */
function coveredSeq(c: JudgedCase, changed: readonly Range[]): number {
  const base = c.base.index
  if (base === undefined || c.index.kind !== 'bytes' || !c.index.bytes.equals(base)) return 0
  if (!sameDigest(c.layout.superblock.checkpointDigest, checkpointDigest(base))) return 0
  if (changed.some((r) => c.layout.superblockCopies.some((copy) => overlaps(r, copy)))) return 0
  const decoded = decodeCheckpoint(base, native.crc32c)
  return decoded.ok ? decoded.checkpoint.nextBatchSeq - 1 : 0
}

/** Keys of the touched batches at the end of the log that no intact batch follows and no recorded checkpoint covers. */
function tailLossKeys(layout: FileLayout, changed: readonly Range[], covered: number): Set<string> {
  const keys = new Set<string>()
  const batches = layout.batches
  for (let i = batches.length - 1; i >= 0; i--) {
    const b = batches[i]!
    if (b.seq <= covered || !changed.some((r) => overlaps(r, b))) break
    for (const r of b.records) keys.add(r.key)
  }
  return keys
}

/** Keys of the batches of segments in use that the damage left all zero, or with a free mark. */
function freedSegmentKeys(layout: FileLayout, image: Buffer): Set<string> {
  const keys = new Set<string>()
  for (const s of layout.segments) {
    const end = segmentEndOffset(s.index, layout.superblock.segmentBytes)
    if (s.state !== 'used' || end > image.length) continue
    if (image.readDoubleLE(s.header.start) !== SEGMENT_FREE_MARK && !isZero(image, s.header.start, end)) continue
    for (const b of layout.batches) if (b.segment === s.index) for (const r of b.records) keys.add(r.key)
  }
  return keys
}

function describeRanges(ranges: readonly Range[]): string {
  const shown = ranges.slice(0, 4).map((r) => `[${r.start}, ${r.end})`)
  return ranges.length > 4 ? `${shown.join(', ')} and ${ranges.length - 4} more ranges` : shown.join(', ') || 'no daxfile byte'
}

function show(key: string): string {
  return JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key)
}

function violation(invariant: string, explanation: string): Verdict {
  return { outcome: 'violation', invariant, explanation }
}
