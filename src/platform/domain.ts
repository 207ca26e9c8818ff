/**
 * The persistence domain: the only code that writes into a daxfile's bytes.
 *
 * Vocabulary (as PMDK uses it): *flush* starts the write-back of a range,
 * *drain* waits until every flushed range is durable, *persist* is both.
 * Every implementation keeps this contract: after `drain()` returns, every
 * byte in every range passed to `flush()` since the previous drain is
 * durable, with the value it had when it was flushed (or later).
 *
 * Because every store passes through here, the simulated domain can record
 * them and build the images a crash could leave.
 */
export type DomainKind = 'dax' | 'forced-dax' | 'msync' | 'simulated'

export interface PersistenceDomain {
  readonly kind: DomainKind
  /**
   * True when stores reach durability in cache lines that the hardware may
   * write back in any order (dax, forced-dax, the cache-line simulation): a
   * drain must separate a batch's data from its commit marker. False when
   * durability comes from page write-back (msync): one sync covers data and
   * marker, and the batch checksum rejects any partially written batch.
   */
  readonly orderedMarker: boolean
  /** Bytes addressable through this domain (the daxfile's size). */
  readonly size: number
  /**
   * A read-only view of [offset, offset + length). Engine code reads through
   * it and copies what it hands to users; it never writes through it.
   * The range must not straddle a mapped piece (the layout guarantees it).
   */
  view(offset: number, length: number): Buffer
  /**
   * The mapped piece holding byte `offset`, for hot read paths that must not
   * allocate a view per call: the piece starts at file offset
   * `Math.floor(offset / MAP_PIECE_BYTES) * MAP_PIECE_BYTES`. Read-only,
   * like view().
   */
  piece(offset: number): Buffer
  /** Copies `src` to [offset, offset + src.length). */
  write(offset: number, src: Uint8Array): void
  /** Stores `value` as an IEEE-754 double in one aligned 8-byte store (the commit marker). */
  writeMarker(offset: number, value: number): void
  /** Stores zeros over [offset, offset + length). */
  zero(offset: number, length: number): void
  /** Starts write-back of [offset, offset + length). */
  flush(offset: number, length: number): void
  /** Waits until everything flushed so far is durable. Throws DaxKVError(DAXKV_IO) on failure. */
  drain(): void
  /** flush + drain. */
  persist(offset: number, length: number): void
  /** Makes the whole file durable (used after formatting and at close). */
  persistAll(): void
  /**
   * Allocates and zero-writes the file's bytes [from, to), extending the
   * file (and the mapping) when `to` is past its end. When it returns, those
   * bytes are allocated, zero, durable and addressable, and the block map of
   * the bytes before `from` is unchanged. Throws DaxKVError(DAXKV_FULL) when
   * the disk is full.
   */
  grow(from: number, to: number): void
  /**
   * Throws DaxKVError(DAXKV_IO) when the file has no name left: it was
   * deleted, or renamed over, while open, so what is written reaches a
   * file no one can open again. Cheap (one fstat); the writer calls it
   * where a commit already costs a system call, at segment rolls, at
   * checkpoints and at close.
   */
  checkLinked(): void
  /** Releases what the domain holds (not the mapping's memory: see close() in mapped-domain). */
  close(): void
}

/** Checks that [offset, offset + length) is inside `size` and 8-byte alignment where required. */
export function checkRange(size: number, offset: number, length: number): void {
  if (!(offset >= 0 && length >= 0 && offset + length <= size)) {
    throw new RangeError(`range [${offset}, ${offset + length}) is outside the daxfile (${size} bytes)`)
  }
}
