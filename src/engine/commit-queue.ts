import { BATCH_HEADER_BYTES, RECORD_DEL, RECORD_PUT } from '../format/constants.js'
import type { EncodedOp } from '../format/batch.js'
import { recordBytes } from '../format/record.js'
import type { KeyIndex } from './key-index.js'
import type { Writer } from './writer.js'

/** One caller's write: its operations stay together in one batch, so it is atomic. */
interface PendingUnit {
  readonly ops: EncodedOp[]
  readonly bytes: number
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

/**
 * Group commit: writes issued in the same tick are queued and committed
 * together on the next one, packed into as few batches as fit a segment.
 * Each unit resolves only after its batch is committed (durable, unless
 * the store was opened with `sync: false`). A synchronous write first
 * commits whatever is queued before it, so writes stay in issue order.
 * Deletes that would change nothing are left out of the batches.
 */
export class CommitQueue {
  readonly #writer: Writer
  readonly #index: KeyIndex
  readonly #committed: (ops: readonly EncodedOp[]) => void
  readonly #afterCommits: () => void
  #pending: PendingUnit[] = []
  #scheduled = false

  /**
   * `committed` hears of every batch committed (the cache drops its keys)
   * before any of its callers is told; `afterCommits` runs after each
   * round of commits (background work may be due).
   */
  constructor(writer: Writer, index: KeyIndex, committed: (ops: readonly EncodedOp[]) => void, afterCommits: () => void) {
    this.#writer = writer
    this.#index = index
    this.#committed = committed
    this.#afterCommits = afterCommits
  }

  /** Queues one caller's operations; `resolve` or `reject` is called once they are committed or have failed. */
  push(ops: EncodedOp[], resolve: () => void, reject: (error: unknown) => void): void {
    this.#pending.push({ ops, bytes: unitBytes(ops), resolve, reject })
    if (!this.#scheduled) {
      this.#scheduled = true
      process.nextTick(() => this.flush())
    }
  }

  /** Commits `ops` now, after whatever is queued; throws what the commit threw. */
  commitNow(ops: EncodedOp[]): void {
    if (this.#pending.length === 0) {
      // Nothing queued before this write: commit it directly.
      this.#append(ops)
      this.#committed(ops)
      this.#afterCommits()
      return
    }
    let failure: unknown
    this.#pending.push({ ops, bytes: unitBytes(ops), resolve: () => {}, reject: (error) => (failure = error) })
    this.flush()
    if (failure !== undefined) throw failure
  }

  /**
   * Commits every queued unit, packing consecutive units into as few
   * batches as fit a segment. When a batch fails, it and every unit after
   * it are rejected with the error.
   */
  flush(): void {
    this.#scheduled = false
    const units = this.#pending
    if (units.length === 0) return
    this.#pending = []
    const max = this.#writer.maxBatchBytes
    let i = 0
    while (i < units.length) {
      let j = i
      let bytes = BATCH_HEADER_BYTES
      const ops: EncodedOp[] = []
      while (j < units.length && (j === i || bytes + units[j]!.bytes <= max)) {
        bytes += units[j]!.bytes
        for (const op of units[j]!.ops) ops.push(op)
        j++
      }
      try {
        this.#append(ops)
      } catch (error) {
        for (let k = i; k < units.length; k++) units[k]!.reject(error)
        return
      }
      this.#committed(ops)
      for (let k = i; k < j; k++) units[k]!.resolve()
      i = j
    }
    this.#afterCommits()
  }

  #append(ops: EncodedOp[]): void {
    const needed = withoutNeedlessDeletes(ops, this.#index)
    if (needed.length > 0) this.#writer.append(needed, appendReason(needed))
  }
}

/**
 * The operations without the deletes that change nothing: those of keys
 * the index does not hold and no put earlier in the batch writes. Such a
 * key has no record a replay could bring back (its newest record is a
 * tombstone still in the log, or cleaning dropped its last tombstone only
 * when no older record of it remained), so its tombstone would only take
 * space, which a full store cannot spare (docs/space.md).
 */
function withoutNeedlessDeletes(ops: EncodedOp[], index: KeyIndex): EncodedOp[] {
  const firstDelete = ops.findIndex((op) => op.type !== RECORD_PUT)
  if (firstDelete < 0) return ops
  const putKeys = new Set<string>()
  for (let i = 0; i < firstDelete; i++) putKeys.add(ops[i]!.key)
  let kept: EncodedOp[] | undefined
  for (let i = firstDelete; i < ops.length; i++) {
    const op = ops[i]!
    if (op.type === RECORD_PUT) putKeys.add(op.key)
    else if (index.get(op.key) === undefined && !putKeys.has(op.key)) {
      kept ??= ops.slice(0, i)
      continue
    }
    kept?.push(op)
  }
  return kept ?? ops
}

/** Deletes may use the delete reserve, so a full store can still shrink. */
function appendReason(ops: readonly EncodedOp[]): 'put' | 'delete' {
  for (const op of ops) if (op.type !== RECORD_DEL) return 'put'
  return 'delete'
}

function unitBytes(ops: readonly EncodedOp[]): number {
  let n = 0
  for (const op of ops) n += recordBytes(op.key.length, op.value === undefined ? 0 : op.value.length)
  return n
}
