import { DaxKVError, ErrorCode } from './errors.js'
import { keyToBytesForWrite, type Key, type KeyEncoding, type ValueCodec } from './encoding.js'
import { batchBytes, type EncodedOp } from './format/batch.js'
import { BATCH_HEADER_BYTES, RECORD_DEL, RECORD_PUT } from './format/constants.js'
import { recordBytes } from './format/record.js'

/** One operation of DaxKV.batch(). */
export type BatchOperation<V = unknown> = { type: 'put'; key: Key; value: V } | { type: 'del'; key: Key }

/**
 * Turns what callers write into the engine's operations: keys into byte
 * strings, values through the value encoding, and refuses, before anything
 * is queued, a value or a batch that cannot fit in one log batch.
 */
export class WriteEncoder<V> {
  readonly #codec: ValueCodec
  readonly #keyEncoding: KeyEncoding
  /** Largest batch a segment holds. */
  readonly #usable: number

  constructor(codec: ValueCodec, keyEncoding: KeyEncoding, maxBatchBytes: number) {
    this.#codec = codec
    this.#keyEncoding = keyEncoding
    this.#usable = maxBatchBytes
  }

  put(key: Key, value: V): EncodedOp {
    const bytes = keyToBytesForWrite(key, this.#keyEncoding)
    const encoded = this.#codec.encode(value)
    if (BATCH_HEADER_BYTES + recordBytes(bytes.length, encoded.length) > this.#usable) {
      throw new DaxKVError(
        ErrorCode.VALUE_TOO_LARGE,
        `a value of ${encoded.length} bytes does not fit in a segment (${this.#usable} bytes usable); ` +
          `store it in pieces or create the daxfile with a larger segmentSize`,
      )
    }
    return { type: RECORD_PUT, key: bytes, value: encoded }
  }

  del(key: Key): EncodedOp {
    return { type: RECORD_DEL, key: keyToBytesForWrite(key, this.#keyEncoding), value: undefined }
  }

  batch(operations: readonly BatchOperation<V>[]): EncodedOp[] {
    if (!Array.isArray(operations)) throw new TypeError('batch() takes an array of operations')
    const ops = operations.map((op, i) => {
      if (op?.type === 'put') return this.put(op.key, op.value)
      if (op?.type === 'del') return this.del(op.key)
      throw new TypeError(`batch operation ${i} must have type 'put' or 'del'`)
    })
    // A batch is atomic, so it must fit one log batch: refuse it here, alone,
    // rather than fail the writes queued with it.
    const bytes = batchBytes(ops)
    if (bytes > this.#usable) {
      throw new DaxKVError(
        ErrorCode.VALUE_TOO_LARGE,
        `a batch of ${bytes} bytes does not fit in a segment (${this.#usable} bytes usable); split it into smaller batches or create the daxfile with a larger segmentSize`,
      )
    }
    return ops
  }
}

/** `op` with its own copy of its value bytes (a queued write must not see the caller's buffer change). */
export function copyValue(op: EncodedOp): EncodedOp {
  return op.value === undefined ? op : { type: op.type, key: op.key, value: Buffer.from(op.value) }
}
