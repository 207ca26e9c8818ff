import type { DaxKV } from '../db.js'
import { DaxKVError, ErrorCode } from '../errors.js'
import { open } from '../open.js'
import type { FileOptions } from './options.js'

/** Options of a command that may create the daxfile (`put --create`). */
export interface CreateOptions {
  create?: boolean
  size?: string
}

/** Opens an existing daxfile; the CLI never creates one by accident (only `put --create` does). */
async function openExisting(file: string, options: FileOptions & CreateOptions): Promise<DaxKV> {
  try {
    return await open(file, {
      create: options.create === true,
      valueEncoding: options.encoding ?? 'binary',
      cacheSize: 0,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...(options.size === undefined ? {} : { size: options.size }),
    })
  } catch (error) {
    if (error instanceof DaxKVError && error.code === ErrorCode.NOT_FOUND) {
      throw new DaxKVError(ErrorCode.NOT_FOUND, `no daxfile at ${file} (daxkv put --create makes one)`, { cause: error })
    }
    throw error
  }
}

/** Opens the daxfile, runs `use` on it, and closes it whatever happens. */
export async function withFile<T>(file: string, options: FileOptions & CreateOptions, use: (db: DaxKV) => T | Promise<T>): Promise<T> {
  const db = await openExisting(file, options)
  try {
    return await use(db)
  } finally {
    await db.close()
  }
}
