import type { DaxKV } from '../db.js'
import { valueCodec, type Key, type ValueEncoding } from '../encoding.js'
import { DaxKVError, ErrorCode } from '../errors.js'
import type { CliFile } from './files.js'
import { UsageError } from './options.js'

/** Problems verify lists at most (as DaxKV.verify() does). */
const PROBLEMS_MAX = 50

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

/** A key as text: the raw view returns bytes, shown as UTF-8. */
export function keyText(key: Key): string {
  return typeof key === 'string' ? key : Buffer.from(key).toString('utf8')
}

/** Reads a key's value (undefined when absent), decoded with the file's encoding; names the likely cause when it does not decode. */
export function readValue(file: CliFile, key: Key): unknown {
  const stored = file.db.get(key)
  if (stored === undefined) return undefined
  try {
    return valueCodec(file.encoding).decode(stored, 0, stored.length)
  } catch (cause) {
    const why = file.recorded !== undefined && file.recorded !== file.encoding ? `the file records ${file.recorded} values` : 'was it stored with another --encoding?'
    throw new DaxKVError(
      ErrorCode.ENCODING,
      `the value of ${JSON.stringify(keyText(key))} does not decode as ${file.encoding} (${why}): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    )
  }
}

/** The values that do not decode with `encoding`, worded as DaxKV.verify() words them. */
export function undecodableValues(db: DaxKV<Buffer>, encoding: ValueEncoding): string[] {
  const codec = valueCodec(encoding)
  const problems: string[] = []
  for (const [key, stored] of db.range()) {
    try {
      codec.decode(stored, 0, stored.length)
    } catch (error) {
      problems.push(`the value of key ${JSON.stringify(keyText(key))} does not decode as ${encoding}: ${String(error)}`)
      if (problems.length >= PROBLEMS_MAX) break
    }
  }
  return problems
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
