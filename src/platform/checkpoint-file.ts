/**
 * The index checkpoint's file beside the daxfile (`<daxfile>.index`): where
 * it lives, and how it is read, replaced and removed. What it holds is
 * format/checkpoint.ts; when it is taken, engine/background.ts.
 *
 * It is written under a hidden temporary name and renamed into place, and
 * not fsynced: a checkpoint lost or torn by a crash fails its checksum or
 * its match with the log, and the log is replayed, which is always correct.
 * Only the holder of the daxfile's lock writes it.
 */
import fs from 'node:fs'
import { basename, dirname, join } from 'node:path'

/** Where the index checkpoint of the daxfile at `path` is kept. */
export function checkpointPath(path: string): string {
  return `${path}.index`
}

/**
 * The checkpoint's bytes; undefined when there is none, and empty when it
 * cannot be used as one: not a regular file (a FIFO would block the read,
 * a device never end), larger than `maxBytes`, or unreadable. The engine
 * refuses an empty one like any damaged checkpoint, which costs a replay.
 */
export function readCheckpointFile(file: string, maxBytes: number): Buffer | undefined {
  let fd: number
  try {
    // Look before opening: opening a FIFO for reading blocks until a writer comes.
    const stat = fs.statSync(file)
    if (!stat.isFile() || stat.size > maxBytes) return Buffer.alloc(0)
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    return Buffer.alloc(0)
  }
  try {
    // The name may have been replaced in between: decide on what was opened.
    const stat = fs.fstatSync(fd)
    if (!stat.isFile() || stat.size > maxBytes) return Buffer.alloc(0)
    const bytes = Buffer.alloc(stat.size)
    let done = 0
    while (done < bytes.length) {
      const n = fs.readSync(fd, bytes, done, bytes.length - done, done)
      if (n === 0) return Buffer.alloc(0)
      done += n
    }
    return bytes
  } catch {
    return Buffer.alloc(0)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Replaces the checkpoint at once (at a clean close). A failure to write it
 * (a full disk) leaves the old one, which no longer matches the log.
 */
export function writeCheckpointFile(file: string, bytes: Buffer): void {
  const temporary = join(dirname(file), `${temporaryPrefix(file)}${process.pid}`)
  try {
    fs.writeFileSync(temporary, bytes)
    fs.renameSync(temporary, file)
  } catch {
    removeQuietly(temporary)
  }
}

/**
 * Writes the checkpoint asynchronously and renames it into place only if
 * `stillWanted()` says so once the bytes are written (the store is open and
 * no newer checkpoint was taken). Resolves with whether it was renamed;
 * never rejects.
 */
export async function writeCheckpointFileInBackground(file: string, bytes: Buffer, tag: string, stillWanted: () => boolean): Promise<boolean> {
  const temporary = join(dirname(file), `${temporaryPrefix(file)}${process.pid}-${tag}`)
  try {
    await fs.promises.writeFile(temporary, bytes)
    // Synchronous from the check to the rename: nothing can close the store in between.
    if (!stillWanted()) {
      removeQuietly(temporary)
      return false
    }
    fs.renameSync(temporary, file)
    return true
  } catch {
    removeQuietly(temporary)
    return false
  }
}

/**
 * Removes checkpoint temporaries a process left when it died while writing
 * one. Call it with the daxfile's lock held: only the lock holder writes
 * one, so every one found is abandoned.
 */
export function removeCheckpointTemporaries(file: string): void {
  const prefix = temporaryPrefix(file)
  try {
    for (const name of fs.readdirSync(dirname(file))) if (name.startsWith(prefix)) removeQuietly(join(dirname(file), name))
  } catch {
    // An unreadable directory leaves them; nothing reads them.
  }
}

/** Removes the checkpoint (no longer of use, or one left by a deleted daxfile). */
export function removeCheckpointFile(file: string): void {
  removeQuietly(file)
}

/** Hidden names the checkpoint is written under before the rename. */
function temporaryPrefix(file: string): string {
  return `.${basename(file)}.tmp-`
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true })
  } catch {
    // Nothing depends on it being gone.
  }
}
