/**
 * The value and key encodings a daxfile records (superblock bytes 80 and
 * 81, docs/format.md section 2): what a new daxfile records, and what an
 * open of an existing one uses, or why it is refused.
 */
import { DEFAULT_KEY_ENCODING, DEFAULT_VALUE_ENCODING, type KeyEncoding, type ValueEncoding } from './encoding.js'
import type { EncodingCodes } from './engine/superblock-io.js'
import { assert, DaxKVError, ErrorCode } from './errors.js'
import { KEY_ENCODING_CODES, VALUE_ENCODING_CODES, type Superblock } from './format/superblock.js'
import type { OpenOptions } from './options.js'

/** The encodings an open store uses, and those its daxfile records. */
export interface Encodings {
  /** Values are encoded and decoded with this one. */
  readonly value: ValueEncoding
  /** Keys are returned as this one. */
  readonly key: KeyEncoding
  /**
   * Keys written are checked against this one: the recorded key encoding
   * when there is one, so that a 'binary' view of a 'utf8' store cannot
   * write a key that its 'utf8' opens could not return.
   */
  readonly keyForWrites: KeyEncoding
  /** What the daxfile records; undefined when it records nothing (created before daxkv recorded encodings). */
  readonly recordedValue: ValueEncoding | undefined
  readonly recordedKey: KeyEncoding | undefined
}

/** The codes a new daxfile records: the encodings in `options`, else the defaults. */
export function encodingCodesFor(options: OpenOptions): EncodingCodes {
  const valueEncodingCode = VALUE_ENCODING_CODES.indexOf(options.valueEncoding ?? DEFAULT_VALUE_ENCODING)
  const keyEncodingCode = KEY_ENCODING_CODES.indexOf(options.keyEncoding ?? DEFAULT_KEY_ENCODING)
  assert(valueEncodingCode > 0 && keyEncodingCode > 0, 'checkOptions() admits only encodings that have a code')
  return { valueEncodingCode, keyEncodingCode }
}

/**
 * The encodings of an open of the daxfile whose superblock is `superblock`,
 * decided before anything is written; throws DAXKV_ENCODING for an open
 * that would misread the store. For values, with R the recorded encoding:
 *
 * | recorded     | asked for        | the open uses                                      |
 * |--------------|------------------|----------------------------------------------------|
 * | nothing      | nothing          | 'msgpack', as before encodings were recorded       |
 * | nothing      | E                | E: there is nothing to check it against            |
 * | R            | nothing, or R    | R                                                  |
 * | R            | 'binary'         | 'binary': a raw view, values are the stored bytes  |
 * | R            | another one      | refused                                            |
 * | unknown code | anything         | refused (a newer daxkv may have created the file)  |
 *
 * Keys follow the same table with 'utf8' as the default: 'binary' keys on
 * a 'utf8' store are the raw view; 'utf8' keys on a 'binary' store are
 * refused, since its keys need not be UTF-8 text.
 */
export function encodingsAtOpen(superblock: Superblock, options: OpenOptions, file: string): Encodings {
  const value = choose('valueEncoding', VALUE_ENCODING_CODES, superblock.valueEncodingCode, options.valueEncoding, DEFAULT_VALUE_ENCODING, file)
  const key = choose('keyEncoding', KEY_ENCODING_CODES, superblock.keyEncodingCode, options.keyEncoding, DEFAULT_KEY_ENCODING, file)
  return { value: value.inUse, key: key.inUse, keyForWrites: key.recorded ?? key.inUse, recordedValue: value.recorded, recordedKey: key.recorded }
}

function choose<E extends string>(
  option: 'valueEncoding' | 'keyEncoding',
  names: readonly (E | undefined)[],
  code: number,
  asked: E | undefined,
  fallback: E,
  file: string,
): { inUse: E; recorded: E | undefined } {
  if (code >= names.length) {
    throw new DaxKVError(
      ErrorCode.ENCODING,
      `${file} records ${option} code ${code}, which this daxkv does not know (a newer daxkv may have created the file); open it with a daxkv that knows it`,
    )
  }
  const recorded = names[code]
  if (recorded === undefined) return { inUse: asked ?? fallback, recorded }
  if (asked === undefined || asked === recorded || asked === 'binary') return { inUse: asked ?? recorded, recorded }
  const why = option === 'valueEncoding' ? `its values are stored as ${recorded} and would not decode as ${asked}` : 'its keys need not be UTF-8 text and would come back altered'
  const raw = option === 'valueEncoding' ? ` (valueEncoding: 'binary' opens it as a raw view of the stored bytes)` : ''
  throw new DaxKVError(
    ErrorCode.ENCODING,
    `${file} was created with ${option} '${recorded}', but this open asks for '${asked}': ${why}. ` +
      `Open it with ${option}: '${recorded}', or omit ${option} to use the recorded one${raw}`,
  )
}
