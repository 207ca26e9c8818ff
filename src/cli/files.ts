import fs from 'node:fs'
import type { DaxKV } from '../db.js'
import { DEFAULT_VALUE_ENCODING, type ValueEncoding } from '../encoding.js'
import { DaxKVError, ErrorCode } from '../errors.js'
import { open } from '../open.js'
import type { FileOptions } from './options.js'

/** Options of a command that may create the daxfile (`put --create`). */
export interface CreateOptions {
  create?: boolean
  size?: string
}

/**
 * A daxfile as the commands see it: a raw view (keys and values are the
 * stored bytes), which opens whatever encodings the file records, and the
 * value encoding to show and parse values with.
 */
export interface CliFile {
  readonly db: DaxKV<Buffer>
  /** `--encoding`, else the encoding the file records, else msgpack. */
  readonly encoding: ValueEncoding
  /** The value encoding the file records; undefined when it records none (created before daxkv recorded encodings). */
  readonly recorded: ValueEncoding | undefined
}

/**
 * Opens an existing daxfile as a raw view; the CLI never creates one by
 * accident (only `put --create` does, recording its `--encoding`).
 */
async function openRaw(file: string, options: FileOptions & CreateOptions): Promise<DaxKV<Buffer>> {
  const mode = options.mode === undefined ? {} : { mode: options.mode }
  if (options.create === true && !fs.existsSync(file)) {
    // The daxfile records the encoding it is created with; the command then works through the raw view below.
    const created = await open(file, {
      valueEncoding: options.encoding ?? DEFAULT_VALUE_ENCODING,
      cacheSize: 0,
      ...mode,
      ...(options.size === undefined ? {} : { size: options.size }),
    })
    await created.close()
  }
  try {
    return await open<Buffer>(file, { create: false, valueEncoding: 'binary', keyEncoding: 'binary', cacheSize: 0, ...mode })
  } catch (error) {
    if (error instanceof DaxKVError && error.code === ErrorCode.NOT_FOUND) {
      throw new DaxKVError(ErrorCode.NOT_FOUND, `no daxfile at ${file} (daxkv put --create makes one)`, { cause: error })
    }
    throw error
  }
}

/** Opens the daxfile, runs `use` on it, and closes it whatever happens. */
export async function withFile<T>(file: string, options: FileOptions & CreateOptions, use: (file: CliFile) => T | Promise<T>): Promise<T> {
  const db = await openRaw(file, options)
  try {
    const recorded = db.stats().encodings.recordedValue ?? undefined
    return await use({ db, encoding: options.encoding ?? recorded ?? DEFAULT_VALUE_ENCODING, recorded })
  } finally {
    await db.close()
  }
}
