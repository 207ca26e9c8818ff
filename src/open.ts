import fs from 'node:fs'
import { DaxKV } from './db.js'
import { LogStore } from './engine/log-store.js'
import { formatSuperblocks } from './engine/superblock-io.js'
import { FILE_BYTES_MAX, FILE_BYTES_MIN } from './format/constants.js'
import { assert } from './errors.js'
import { checkOptions, geometryOf, modeFrom, storeOptions, type OpenOptions } from './options.js'
import { checkpointPath, readCheckpointFile, removeCheckpointFile, removeCheckpointTemporaries } from './platform/checkpoint-file.js'
import { createDaxfile, openDaxfile, type OpenedFile } from './platform/daxfile.js'
import { encodingCodesFor, encodingsAtOpen, type Encodings } from './recorded-encodings.js'

/**
 * Opens (and by default creates) the daxfile at `path`.
 *
 * ```ts
 * const db = await open('data.dax', { size: '64MiB' })
 * await db.put('hello', { world: true })
 * db.get('hello') // { world: true }
 * await db.close()
 * ```
 */
export async function open<V = any>(path: string, options: OpenOptions = {}): Promise<DaxKV<V>> {
  if (typeof path !== 'string' || path === '') throw new TypeError('open() needs the path of a daxfile')
  checkOptions(options)
  const mode = modeFrom(options)
  let file: OpenedFile | undefined
  if (!fs.existsSync(path) && options.create !== false) {
    // A checkpoint left by a daxfile that was deleted would only be refused at the next close.
    removeCheckpointFile(checkpointPath(path))
    const geometry = geometryOf(options)
    file = createDaxfile(path, geometry.fileBytes, mode, (domain) => {
      formatSuperblocks(domain, geometry, encodingCodesFor(options))
    })
  }
  file ??= openDaxfile(path, mode, { minBytes: FILE_BYTES_MIN, maxBytes: FILE_BYTES_MAX })
  const opened = file
  try {
    // Read under the lock, so no other writer can be replacing it.
    removeCheckpointTemporaries(checkpointPath(path))
    // A checkpoint holds at most two tables of 8 bytes per slot, with at most four slots per 16-byte record: four times the file.
    const checkpoint = options.indexCheckpoint === false ? undefined : readCheckpointFile(checkpointPath(path), 4 * file.size + 1024 * 1024)
    let encodings: Encodings | undefined
    const store = LogStore.open(file.domain, path, {
      ...storeOptions(options),
      // Both checks come before recovery writes anything: an open refused for its encodings leaves the file as it was.
      beforeRecovery: (superblock) => {
        encodings = encodingsAtOpen(superblock, options, path)
        opened.checkExtents(superblock.fileBytes)
      },
      ...(checkpoint === undefined ? {} : { checkpoint }),
    })
    assert(encodings !== undefined, 'the store was opened without its encodings decided')
    // A checkpoint the log has moved past is of no further use.
    if (store.recovery.checkpointRejected !== undefined) removeCheckpointFile(checkpointPath(path))
    return new DaxKV<V>(store, file, path, options, encodings)
  } catch (error) {
    file.close()
    throw error
  }
}
