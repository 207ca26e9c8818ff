import { isUtf8 } from 'node:buffer'
import { Packr, Unpackr } from 'msgpackr'
import { DaxKVError, ErrorCode } from './errors.js'
import { MAX_KEY_BYTES } from './format/constants.js'

/** How values are stored. */
export type ValueEncoding = 'msgpack' | 'json' | 'utf8' | 'binary'
/** How keys are given and returned: strings (stored as UTF-8) or byte arrays. */
export type KeyEncoding = 'utf8' | 'binary'

/** The value encoding of a new store when the options name none, and of a store that records none. */
export const DEFAULT_VALUE_ENCODING: ValueEncoding = 'msgpack'
/** The key encoding of a new store when the options name none, and of a store that records none. */
export const DEFAULT_KEY_ENCODING: KeyEncoding = 'utf8'

/** A key as callers give it. */
export type Key = string | Uint8Array

/**
 * Turns a key into the engine's byte string: one char per byte (latin1), so
 * that `<` on byte strings is bytewise order. An ASCII string is already its
 * own byte string, which keeps the common case free of copies.
 */
export function keyToBytes(key: unknown): string {
  let bytes: string
  if (typeof key === 'string') {
    if (isAscii(key)) bytes = key
    else {
      // UTF-8 turns every lone surrogate into U+FFFD, so two distinct keys
      // would share one record: refuse them instead.
      if (LONE_SURROGATE.test(key)) throw new TypeError('a string key must be well-formed UTF-16 (it contains a lone surrogate)')
      bytes = Buffer.from(key, 'utf8').toString('latin1')
    }
  } else if (key instanceof Uint8Array) {
    bytes = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')
  } else {
    throw new TypeError(`a key must be a string or a Uint8Array, got ${key === null ? 'null' : typeof key}`)
  }
  if (bytes.length > MAX_KEY_BYTES) {
    throw new DaxKVError(ErrorCode.KEY_TOO_LARGE, `key of ${bytes.length} bytes exceeds the maximum of ${MAX_KEY_BYTES} bytes`)
  }
  return bytes
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * {@link keyToBytes} for a key about to be written: with keyEncoding
 * 'utf8', byte keys must be valid UTF-8, or they could not be returned as
 * the strings that range() and keys() promise.
 */
export function keyToBytesForWrite(key: unknown, encoding: KeyEncoding): string {
  if (encoding === 'utf8' && key instanceof Uint8Array && !isUtf8(key)) {
    throw new TypeError("with keyEncoding 'utf8' a Uint8Array key must be valid UTF-8; a store created with keyEncoding 'binary' takes arbitrary bytes")
  }
  return keyToBytes(key)
}

/** Turns an engine byte string back into the caller's key type. */
export function keyFromBytes(bytes: string, encoding: KeyEncoding): Key {
  if (encoding === 'binary') return Buffer.from(bytes, 'latin1')
  return isAscii(bytes) ? bytes : Buffer.from(bytes, 'latin1').toString('utf8')
}

/** Encodes and decodes values; `decode` never returns a view into the mapping. */
export interface ValueCodec {
  readonly name: ValueEncoding
  /** Whether decoded values are worth caching (decoding costs more than a lookup). */
  readonly cacheable: boolean
  /** Whether encode() may return the caller's own bytes, which a queued write must copy. */
  readonly aliasesInput: boolean
  encode(value: unknown): Uint8Array
  /** Decodes `bytes[start, end)`; `bytes` may be the mapping, so nothing returned may point into it. */
  decode(bytes: Buffer, start: number, end: number): unknown
}

export function valueCodec(name: ValueEncoding): ValueCodec {
  switch (name) {
    case 'msgpack':
      return msgpackCodec()
    case 'json':
      return {
        name,
        cacheable: true,
        aliasesInput: false,
        encode(value) {
          rejectUndefined(value)
          let text: string | undefined
          try {
            text = JSON.stringify(value)
          } catch (cause) {
            throw new DaxKVError(ErrorCode.ENCODING, `value cannot be encoded as JSON: ${String(cause)}`, { cause })
          }
          if (text === undefined) throw new DaxKVError(ErrorCode.ENCODING, `value of type ${typeof value} cannot be encoded as JSON`)
          return Buffer.from(text, 'utf8')
        },
        decode: (bytes, start, end) => JSON.parse(bytes.toString('utf8', start, end)),
      }
    case 'utf8':
      return {
        name,
        cacheable: false,
        aliasesInput: false,
        encode(value) {
          rejectUndefined(value)
          if (typeof value !== 'string') throw new DaxKVError(ErrorCode.ENCODING, `valueEncoding 'utf8' stores strings, got ${typeName(value)}`)
          return Buffer.from(value, 'utf8')
        },
        decode: (bytes, start, end) => bytes.toString('utf8', start, end),
      }
    case 'binary':
      return {
        name,
        cacheable: false,
        aliasesInput: true,
        encode(value) {
          rejectUndefined(value)
          if (!(value instanceof Uint8Array)) throw new DaxKVError(ErrorCode.ENCODING, `valueEncoding 'binary' stores Uint8Arrays, got ${typeName(value)}`)
          return value
        },
        decode(bytes, start, end) {
          const out = Buffer.allocUnsafe(end - start)
          bytes.copy(out, 0, start, end)
          return out
        },
      }
    default:
      throw new TypeError(`unknown valueEncoding ${JSON.stringify(name)}: use 'msgpack', 'json', 'utf8' or 'binary'`)
  }
}

function msgpackCodec(): ValueCodec {
  // copyBuffers: binary values inside a decoded object must not be views
  // into the mapping, which can be reused or unmapped after close.
  const packr = new Packr({ useRecords: false })
  const unpackr = new Unpackr({ useRecords: false, copyBuffers: true })
  return {
    name: 'msgpack',
    cacheable: true,
    aliasesInput: false,
    encode(value) {
      rejectUndefined(value)
      if (typeof value === 'function' || typeof value === 'symbol') {
        throw new DaxKVError(ErrorCode.ENCODING, `a ${typeof value} cannot be encoded as MessagePack`)
      }
      try {
        return packr.pack(value)
      } catch (cause) {
        throw new DaxKVError(ErrorCode.ENCODING, `value cannot be encoded as MessagePack: ${String(cause)}`, { cause })
      }
    },
    decode: (bytes, start, end) => unpackr.unpack(bytes.subarray(start, end)),
  }
}

function rejectUndefined(value: unknown): void {
  if (value === undefined) throw new TypeError('a value must not be undefined (get() returns undefined for missing keys); use del() to remove a key')
}

function typeName(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return value.constructor?.name ?? 'object'
  return typeof value
}
