/**
 * Operating errors of daxkv. Argument mistakes are plain `TypeError`/`RangeError`
 * without a code; broken invariants are assertion failures. Everything a caller
 * may need to handle is a {@link DaxKVError} with one of these stable codes.
 */
export const ErrorCode = {
  /** The daxfile has no free segment for this write (or the file is too small to create). Nothing acknowledged is lost; reads keep working. */
  FULL: 'DAXKV_FULL',
  /** Another handle, in this process or another, holds the daxfile's write lock. */
  LOCKED: 'DAXKV_LOCKED',
  /** The daxfile's contents are damaged in a way recovery must not guess about. */
  CORRUPTION: 'DAXKV_CORRUPTION',
  /** The file is not a daxfile (wrong magic) or was written by an unknown format version. */
  NOT_DAXFILE: 'DAXKV_NOT_DAXFILE',
  /** The file's block map breaks the daxfile contract (shared, unwritten or delayed-allocation extents, holes). */
  BAD_EXTENTS: 'DAXKV_BAD_EXTENTS',
  /** An I/O call (msync, fdatasync, flush) failed; the store is latched failed until reopened. */
  IO: 'DAXKV_IO',
  /** The database is closed (or closing). */
  CLOSED: 'DAXKV_CLOSED',
  /** The file does not exist and `create: false` was given. */
  NOT_FOUND: 'DAXKV_NOT_FOUND',
  /** A key exceeds the maximum key size. */
  KEY_TOO_LARGE: 'DAXKV_KEY_TOO_LARGE',
  /** A value (or a whole batch) does not fit in one segment. */
  VALUE_TOO_LARGE: 'DAXKV_VALUE_TOO_LARGE',
  /**
   * A value cannot be encoded with the value encoding, or a stored value does not decode with it;
   * or an open asks for another encoding than the daxfile records (or the file records one this
   * daxkv does not know), refused before anything is written.
   */
  ENCODING: 'DAXKV_ENCODING',
  /** The requested durability mode is not available on this file (e.g. `mode: 'dax'` on a non-DAX filesystem). */
  MODE_UNAVAILABLE: 'DAXKV_MODE_UNAVAILABLE',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** An operating error with a stable {@link ErrorCode} in `code`. */
export class DaxKVError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DaxKVError'
    this.code = code
  }
}

/** Asserts an invariant; a failure is a bug in daxkv, never a user error. */
export function assert(condition: unknown, message = 'daxkv invariant violated'): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`)
}
