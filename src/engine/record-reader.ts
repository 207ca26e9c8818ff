import {
  recordKey,
  recordKeyEquals,
  recordKeyHash,
  recordKeysEqual,
  recordLength,
  recordValueBytes,
  recordValueStart,
} from '../format/record.js'
import { MAP_PIECE_BYTES } from '../platform/constants.js'
import type { PersistenceDomain } from '../platform/domain.js'
import type { KeyReader } from './key-index.js'

/**
 * Reads committed records back from the mapping by location (file offset):
 * keys for the index, sizes for the accounting, values for gets. Every
 * read of a record header or key goes through format/record.ts. It reads
 * the mapped piece in place and allocates nothing but what it returns.
 */
export class RecordReader implements KeyReader {
  readonly #domain: PersistenceDomain

  constructor(domain: PersistenceDomain) {
    this.#domain = domain
  }

  keyMatches(location: number, key: string): boolean {
    return recordKeyEquals(this.#domain.piece(location), location % MAP_PIECE_BYTES, key)
  }

  sameKey(a: number, b: number): boolean {
    return recordKeysEqual(this.#domain.piece(a), a % MAP_PIECE_BYTES, this.#domain.piece(b), b % MAP_PIECE_BYTES)
  }

  keyHashAt(location: number): number {
    return recordKeyHash(this.#domain.piece(location), location % MAP_PIECE_BYTES)
  }

  keyAt(location: number): string {
    return recordKey(this.#domain.piece(location), location % MAP_PIECE_BYTES)
  }

  /** Bytes the record at `location` occupies in the log. */
  recordBytesAt(location: number): number {
    return recordLength(this.#domain.piece(location), location % MAP_PIECE_BYTES)
  }

  /**
   * Decodes the value of the put record at `location` with `decode`, which
   * receives the mapped piece and the value's range in it, so the hot read
   * path allocates nothing but the decoded value.
   */
  decodeValueAt<T>(location: number, decode: (piece: Buffer, start: number, end: number) => T): T {
    const piece = this.#domain.piece(location)
    const at = location % MAP_PIECE_BYTES
    const start = recordValueStart(piece, at)
    return decode(piece, start, start + recordValueBytes(piece, at))
  }
}
