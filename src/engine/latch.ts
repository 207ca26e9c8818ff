import { DaxKVError, ErrorCode } from '../errors.js'

/**
 * The store's I/O latch. After a write or a cleaning step fails with
 * anything but DAXKV_FULL, what is durable is no longer known to the
 * writer, so every later write, cleaning step and persist fails with
 * DAXKV_IO until the store is reopened (and recovery finds out).
 */
export class Latch {
  #failed: DaxKVError | undefined

  /** The error that latched the store, if any. */
  get failed(): DaxKVError | undefined {
    return this.#failed
  }

  /** Throws if the store is latched. */
  check(): void {
    if (this.#failed !== undefined) {
      throw new DaxKVError(ErrorCode.IO, `a previous I/O error left the store failed; close and reopen it (${this.#failed.message})`, {
        cause: this.#failed,
      })
    }
  }

  /**
   * What to throw for `error`, raised inside `what`: DAXKV_FULL (nothing
   * written, the store stays usable) and the latched error itself pass
   * through; anything else latches the store, as a DAXKV_IO error.
   */
  fail(error: unknown, what: string): unknown {
    if (error instanceof DaxKVError && (error.code === ErrorCode.FULL || error === this.#failed)) return error
    this.#failed ??=
      error instanceof DaxKVError && error.code === ErrorCode.IO ? error : new DaxKVError(ErrorCode.IO, `${what} failed: ${String(error)}`, { cause: error })
    return this.#failed
  }
}
