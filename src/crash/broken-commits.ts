import { BATCH_HEADER_BYTES, BATCH_MAGIC, MARKER_BYTES, MARKER_OFFSET } from '../format/constants.js'
import type { CommitProtocol } from '../engine/writer.js'
import { CACHE_LINE_BYTES } from '../platform/constants.js'
import type { DomainKind, PersistenceDomain } from '../platform/domain.js'

/**
 * Broken commit protocols, for the negative controls of the crash tests: a
 * crash tester that passes a broken protocol proves nothing. Each breaks
 * one rule of docs/format.md, section 4, and the simulated power-failure
 * campaign must report a violation for it. They act from outside the
 * engine: a persistence domain that wraps the real one and drops or
 * shortens what the commit asks of it, or another commit order passed to
 * the engine in place of the real one.
 */
export type CommitFault =
  /** Step 2 flushes but does not drain: the marker may reach the media before the batch's data. */
  | 'skipDataDrain'
  /** Step 2 flushes one cache line too few at the end of the batch. */
  | 'flushOneLineShort'
  /** Step 4 does not drain: the write is acknowledged before its marker is durable. */
  | 'skipMarkerDrain'
  /** The marker is written and persisted first, then the batch's data. */
  | 'markerBeforeData'

export const COMMIT_FAULTS: readonly CommitFault[] = ['skipDataDrain', 'flushOneLineShort', 'skipMarkerDrain', 'markerBeforeData']

/** The domain and commit protocol to open a store with so that its commits break the rule `fault` names. */
export function withCommitFault(fault: CommitFault, domain: PersistenceDomain): { domain: PersistenceDomain; commit?: CommitProtocol } {
  if (fault === 'markerBeforeData') return { domain, commit: commitMarkerFirst }
  return { domain: new FaultyCommitDomain(domain, fault) }
}

/** The broken order of markerBeforeData: the marker persisted, then the data. */
const commitMarkerFirst: CommitProtocol = (domain, at, batch, seq) => {
  domain.write(at, batch.subarray(0, MARKER_BYTES))
  domain.writeMarker(at + MARKER_OFFSET, seq)
  domain.persist(at, MARKER_BYTES)
  domain.write(at + MARKER_BYTES, batch.subarray(MARKER_BYTES))
  domain.persist(at, batch.length)
}

/**
 * Passes every call through to `inner`, except the ones its fault breaks.
 * It recognises a commit by its shape: a write of a batch (marker word
 * zero, batch magic) is Step 1; a flush or persist of exactly that range
 * is Step 2; a commit marker stored is Step 3, and the persist of those 8
 * bytes (or the drain) after it is Step 4.
 */
class FaultyCommitDomain implements PersistenceDomain {
  readonly #inner: PersistenceDomain
  readonly #fault: Exclude<CommitFault, 'markerBeforeData'>
  /** The batch written by the last Step 1, until its Step 2. */
  #batch: { readonly offset: number; readonly length: number } | undefined
  /** Where the last commit marker was stored (Step 3), until its Step 4. */
  #marker: number | undefined

  constructor(inner: PersistenceDomain, fault: Exclude<CommitFault, 'markerBeforeData'>) {
    this.#inner = inner
    this.#fault = fault
  }

  get kind(): DomainKind {
    return this.#inner.kind
  }

  get orderedMarker(): boolean {
    return this.#inner.orderedMarker
  }

  get size(): number {
    return this.#inner.size
  }

  view(offset: number, length: number): Buffer {
    return this.#inner.view(offset, length)
  }

  piece(offset: number): Buffer {
    return this.#inner.piece(offset)
  }

  write(offset: number, src: Uint8Array): void {
    const bytes = Buffer.from(src.buffer, src.byteOffset, src.byteLength)
    if (bytes.length >= BATCH_HEADER_BYTES && bytes.readDoubleLE(MARKER_OFFSET) === 0 && bytes.readUInt32LE(8) === BATCH_MAGIC) {
      this.#batch = { offset, length: bytes.length }
    }
    this.#inner.write(offset, src)
  }

  writeMarker(offset: number, value: number): void {
    // A commit marker is a positive sequence number; the free mark is negative.
    if (value > 0) this.#marker = offset
    this.#inner.writeMarker(offset, value)
  }

  zero(offset: number, length: number): void {
    this.#inner.zero(offset, length)
  }

  flush(offset: number, length: number): void {
    if (this.#isStep2(offset, length)) {
      this.#batch = undefined
      if (this.#fault === 'flushOneLineShort') return this.#inner.flush(offset, oneLineShort(offset, length))
    }
    this.#inner.flush(offset, length)
  }

  drain(): void {
    if (this.#marker !== undefined) {
      this.#marker = undefined
      if (this.#fault === 'skipMarkerDrain') return
    }
    this.#inner.drain()
  }

  persist(offset: number, length: number): void {
    if (this.#isStep2(offset, length)) {
      this.#batch = undefined
      if (this.#fault === 'skipDataDrain') return this.#inner.flush(offset, length)
      if (this.#fault === 'flushOneLineShort') return this.#inner.persist(offset, oneLineShort(offset, length))
    }
    if (this.#marker === offset && length === MARKER_BYTES) {
      this.#marker = undefined
      if (this.#fault === 'skipMarkerDrain') return this.#inner.flush(offset, length)
    }
    this.#inner.persist(offset, length)
  }

  persistAll(): void {
    this.#inner.persistAll()
  }

  grow(from: number, to: number): void {
    this.#inner.grow(from, to)
  }

  checkLinked(): void {
    this.#inner.checkLinked()
  }

  close(): void {
    this.#inner.close()
  }

  #isStep2(offset: number, length: number): boolean {
    return this.#batch !== undefined && this.#batch.offset === offset && this.#batch.length === length
  }
}

/** The length that leaves the last cache line of [at, at + length) unflushed. */
function oneLineShort(at: number, length: number): number {
  return Math.max(at, Math.floor((at + length - 1) / CACHE_LINE_BYTES) * CACHE_LINE_BYTES) - at
}
