import type { DaxKV } from '../db.js'
import type { Key, ValueEncoding } from '../encoding.js'
import { DaxKVError, ErrorCode } from '../errors.js'
import { UsageError } from './options.js'

/** Prints a value for a terminal: strings as they are, binary as hex, anything else as JSON. */
export function showValue(value: unknown, encoding: ValueEncoding, pretty: boolean): string {
  if (encoding === 'utf8') return String(value)
  if (encoding === 'binary') return Buffer.from(value as Uint8Array).toString('hex')
  // MessagePack can hold what JSON cannot; show bytes and big integers in a readable, unambiguous form.
  const replacer = (_key: string, v: unknown): unknown => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Uint8Array) return { $base64: Buffer.from(v).toString('base64') }
    if (v instanceof Map) return Object.fromEntries(v)
    if (v instanceof Set) return [...v]
    return v
  }
  // Buffer has a toJSON that runs before the replacer sees it; copy it to a plain Uint8Array first.
  const plain = Buffer.isBuffer(value) ? new Uint8Array(value) : value
  return JSON.stringify(plain, replacer, pretty ? 2 : undefined) ?? String(value)
}

/** Reads a key's value, naming the likely cause when it does not decode. */
export function readValue(db: DaxKV, key: Key, encoding: ValueEncoding): unknown {
  try {
    return db.get(key) as unknown
  } catch (error) {
    if (error instanceof DaxKVError && error.code !== ErrorCode.ENCODING) throw error
    const cause = error instanceof DaxKVError ? error.cause : error
    throw new DaxKVError(
      ErrorCode.ENCODING,
      `the value of ${JSON.stringify(key)} does not decode as ${encoding} (was it stored with another --encoding?): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause: error },
    )
  }
}

/** The value a user typed: the text itself with utf8, else JSON text. */
export function parseValue(text: string, encoding: ValueEncoding): unknown {
  if (encoding === 'utf8') return text
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new UsageError(`with --encoding ${encoding} the value is JSON text, and ${JSON.stringify(text)} is not JSON; quote a string ('"${text}"') or use --encoding utf8`)
  }
}
