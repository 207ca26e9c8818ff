import { InvalidArgumentError, Option } from 'commander'
import type { ValueEncoding } from '../encoding.js'
import type { ModeRequest } from '../platform/daxfile.js'

/** A mistake on the command line that commander cannot see (exit code 2). */
export class UsageError extends Error {}

/** Options every command that opens a daxfile takes. */
export interface FileOptions {
  mode?: ModeRequest
  encoding?: ValueEncoding
}

const MODES = ['auto', 'dax', 'msync', 'forced-dax'] as const
export const READ_ENCODINGS = ['msgpack', 'json', 'utf8', 'binary'] as const
export const WRITE_ENCODINGS = ['msgpack', 'json', 'utf8'] as const

export function modeOption(description = 'durability mode (default: auto, or $DAXKV_MODE)'): Option {
  return new Option('--mode <mode>', description).choices(MODES)
}

/** `--encoding`; without it, a command uses `fallback` (said in the help). */
export function encodingOption(choices: readonly ValueEncoding[], fallback = 'the one the file records, else msgpack'): Option {
  return new Option('--encoding <encoding>', `value encoding (default: ${fallback})`).choices(choices)
}

/** A parser of whole numbers in [min, max] for commander. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const n = Number(text)
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`)
    }
    return n
  }
}
