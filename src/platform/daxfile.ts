import fs from 'node:fs'
import path from 'node:path'
import { DaxKVError, ErrorCode } from '../errors.js'
import { MAP_PIECE_BYTES } from './constants.js'
import type { PersistenceDomain } from './domain.js'
import { MappedDomain } from './mapped-domain.js'
import { isNotSupported, mapShared } from './mmap.js'
import { native, type FiemapReport } from './native.js'

/** How the caller wants durability to work; `auto` picks dax when the kernel grants MAP_SYNC, else msync. */
export type ModeRequest = 'auto' | 'dax' | 'msync' | 'forced-dax'

/** A daxfile opened, locked and mapped. */
export interface OpenedFile {
  readonly path: string
  readonly fd: number
  readonly size: number
  readonly domain: MappedDomain
  /** statx's DAX attribute for the file: true, false, or null when the kernel cannot say. */
  readonly statxDax: boolean | null
  /**
   * Checks the daxfile contract on the file's first `logicalBytes` bytes
   * (FIEMAP; supported: false on filesystems without it, such as tmpfs) and
   * throws DAXKV_BAD_EXTENTS when it is broken. Bytes past the superblock's
   * size (an interrupted growth) are not checked: growth rewrites them.
   */
  checkExtents(logicalBytes: number): FiemapReport
  /**
   * The same check while the store is open, reported rather than thrown:
   * what of the file's first `logicalBytes` bytes breaks the contract now
   * (another process can reflink-copy or punch the live file). Empty when
   * all is well or the filesystem has no FIEMAP; throws DAXKV_IO when the
   * check itself fails.
   */
  blockMapProblems(logicalBytes: number): string[]
  /** Drops the lock and closes the descriptor; the mapping goes when it is garbage-collected. */
  close(): void
}

const ZERO_WRITE_BYTES = 1024 * 1024

/** The sizes a daxfile can have (the format's limits, given by the caller). */
export interface SizeLimits {
  readonly minBytes: number
  readonly maxBytes: number
}

/**
 * Opens an existing daxfile: takes the exclusive lock, refuses a file whose
 * size no daxfile can have, and maps it. The superblock is the caller's to
 * validate, and so are the extents (OpenedFile.checkExtents).
 */
export function openDaxfile(file: string, mode: ModeRequest, limits: SizeLimits): OpenedFile {
  let fd: number
  try {
    fd = fs.openSync(file, 'r+')
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new DaxKVError(ErrorCode.NOT_FOUND, `no daxfile at ${file} (pass create: true to make one)`, { cause })
    throw new DaxKVError(ErrorCode.IO, `cannot open ${file}: ${String(cause)}`, { cause })
  }
  try {
    lockOrThrow(fd, file)
    const size = fs.fstatSync(fd).size
    if (size < limits.minBytes) {
      throw new DaxKVError(ErrorCode.NOT_DAXFILE, `${file} is ${size} bytes, smaller than any daxfile (${limits.minBytes}); it is not a daxfile`)
    }
    if (size > limits.maxBytes) {
      throw new DaxKVError(ErrorCode.NOT_DAXFILE, `${file} is ${size} bytes, larger than any daxfile (${limits.maxBytes}); it is not a daxfile`)
    }
    return mapFile(file, fd, size, mode)
  } catch (error) {
    fs.closeSync(fd)
    throw error
  }
}

/**
 * Creates a daxfile of `size` bytes at `file` so that no later write changes
 * its block map: the whole size is allocated and written with zeros, and
 * the file and its directory are fsynced. `format` writes the superblock
 * through the domain. The file appears at `file` only once complete (link
 * from a temporary name), so a crash during creation leaves no half-made
 * daxfile; if another process created `file` first, returns undefined.
 */
export function createDaxfile(
  file: string,
  size: number,
  mode: ModeRequest,
  format: (domain: PersistenceDomain) => void,
): OpenedFile | undefined {
  const dir = path.dirname(path.resolve(file))
  const prefix = `.${path.basename(file)}.daxkv-create-`
  try {
    if (!fs.statSync(dir).isDirectory()) throw new DaxKVError(ErrorCode.NOT_FOUND, `cannot create ${file}: ${dir} is not a directory`)
    removeAbandonedTemporaries(dir, prefix)
  } catch (cause) {
    if (cause instanceof DaxKVError) throw cause
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DaxKVError(ErrorCode.NOT_FOUND, `cannot create ${file}: the directory ${dir} does not exist; create it first`, { cause })
    }
    throw new DaxKVError(ErrorCode.IO, `cannot create a daxfile in ${dir}: ${String(cause)}`, { cause })
  }
  const tmp = path.join(dir, `${prefix}${process.pid}-${Date.now()}`)
  let fd: number
  try {
    fd = fs.openSync(tmp, 'wx+', 0o644)
  } catch (cause) {
    throw new DaxKVError(ErrorCode.IO, `cannot create a daxfile in ${dir}: ${String(cause)}`, { cause })
  }
  let opened: OpenedFile | undefined
  try {
    lockOrThrow(fd, tmp)
    preallocate(fd, tmp, size)
    checkExtents(fd, tmp, size)
    opened = mapFile(file, fd, size, mode)
    format(opened.domain)
    opened.domain.persistAll()
    try {
      fs.linkSync(tmp, file)
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
        opened.close()
        return undefined
      }
      throw cause
    }
    // The temporary name goes before the directory is synced, so a power
    // failure cannot bring it back as a second link to the daxfile.
    fs.rmSync(tmp, { force: true })
    fsyncDirectory(dir)
    return opened
  } catch (error) {
    if (opened === undefined) fs.closeSync(fd)
    else opened.close()
    throw error instanceof DaxKVError ? error : new DaxKVError(ErrorCode.IO, `creating ${file} failed: ${String(error)}`, { cause: error })
  } finally {
    fs.rmSync(tmp, { force: true })
  }
}

/** Removes temporaries of creations whose process died (a crash before the link step). */
function removeAbandonedTemporaries(dir: string, prefix: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(prefix)) continue
    const pid = Number(name.slice(prefix.length).split('-')[0])
    if (!Number.isInteger(pid) || pid <= 0 || isAlive(pid)) continue
    fs.rmSync(path.join(dir, name), { force: true })
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Allocates and zero-writes the file's bytes [from, to) and fsyncs, so that
 * no later store into them needs a block-map change.
 */
function preallocate(fd: number, file: string, to: number, from = 0): void {
  const size = to - from
  try {
    native.fallocate(fd, from, size)
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new DaxKVError(ErrorCode.FULL, `not enough disk space to allocate ${size} bytes for the daxfile ${file}`, { cause })
    }
    // Filesystems without fallocate still get every block written below.
    if (code !== 'EOPNOTSUPP') throw cause
  }
  // fallocate leaves unwritten extents on ext4 and xfs; writing zeros turns
  // them into written ones, so no later store needs a block-map change.
  const zeros = Buffer.alloc(Math.min(ZERO_WRITE_BYTES, size))
  for (let at = from; at < to; at += zeros.length) {
    const n = Math.min(zeros.length, to - at)
    let done = 0
    while (done < n) done += fs.writeSync(fd, zeros, done, n - done, at + done)
  }
  fs.fsyncSync(fd)
}

function mapFile(file: string, fd: number, size: number, mode: ModeRequest): OpenedFile {
  let mapSync = mode === 'auto' || mode === 'dax'
  let pieces: Buffer[]
  try {
    pieces = mapPieces(fd, size, mapSync)
  } catch (error) {
    if (!(error instanceof MapSyncUnsupported)) throw error
    if (mode === 'dax') {
      throw new DaxKVError(
        ErrorCode.MODE_UNAVAILABLE,
        `${file} is not on a DAX filesystem (mmap with MAP_SYNC: EOPNOTSUPP); use mode 'auto' or 'msync', or put the file on an fs-dax mount`,
      )
    }
    mapSync = false
    pieces = mapPieces(fd, size, false)
  }
  const kind = mapSync ? 'dax' : mode === 'forced-dax' ? 'forced-dax' : 'msync'
  let statxDax: boolean | null = null
  try {
    statxDax = native.statxDax(fs.readlinkSync(`/proc/self/fd/${fd}`))
  } catch {
    statxDax = null
  }
  const domain: MappedDomain = new MappedDomain(
    kind,
    fd,
    pieces,
    size,
    (from, to): Buffer[] => {
      preallocate(fd, file, to, from)
      return mapPieces(fd, Math.max(to, domain.size), mapSync)
    },
    !isTmpfs(file),
  )
  let closed = false
  return {
    path: file,
    fd,
    size,
    domain,
    statxDax,
    checkExtents: (logicalBytes) => checkExtents(fd, file, logicalBytes),
    blockMapProblems(logicalBytes) {
      try {
        return extentProblems(native.fiemap(fd, logicalBytes), logicalBytes)
      } catch (cause) {
        throw new DaxKVError(ErrorCode.IO, `FIEMAP of ${file} failed: ${String(cause)}`, { cause })
      }
    },
    close() {
      if (closed) return
      closed = true
      domain.close()
      // The mapping holds the open file description (and so its flock) until
      // it is garbage-collected; unlock explicitly so a reopen is not refused.
      try {
        native.flock(fd, 'unlock')
      } finally {
        fs.closeSync(fd)
      }
    },
  }
}

/** tmpfs's statfs magic: msync there costs nothing, so stores stay copies into the mapping. */
const TMPFS_MAGIC = 0x01021994

function isTmpfs(file: string): boolean {
  try {
    return fs.statfsSync(path.dirname(path.resolve(file))).type === TMPFS_MAGIC
  } catch {
    return false
  }
}

class MapSyncUnsupported extends Error {}

/** Maps the file's first `size` bytes in pieces of at most MAP_PIECE_BYTES. */
function mapPieces(fd: number, size: number, mapSync: boolean): Buffer[] {
  const pieces: Buffer[] = []
  for (let offset = 0; offset < size; offset += MAP_PIECE_BYTES) {
    const result = mapShared(fd, offset, Math.min(MAP_PIECE_BYTES, size - offset), mapSync)
    if (mapSync && isNotSupported(result)) throw new MapSyncUnsupported()
    if (!result.ok) throw new DaxKVError(ErrorCode.IO, `cannot map the daxfile: ${result.message}`)
    pieces.push(result.buffer)
  }
  return pieces
}

function lockOrThrow(fd: number, file: string): void {
  if (!native.flock(fd, 'exclusive')) {
    throw new DaxKVError(
      ErrorCode.LOCKED,
      `${file} is already open for writing (by this or another process); close the other handle first`,
    )
  }
}

/**
 * The daxfile contract: every block allocated and written, none shared.
 * Shared extents (reflink) would be copied on write, unwritten or delayed
 * ones allocated on write: both change the block map under the mapping.
 */
function checkExtents(fd: number, file: string, size: number): FiemapReport {
  const report = native.fiemap(fd, size)
  const problems = extentProblems(report, size)
  if (problems.length > 0) {
    throw new DaxKVError(
      ErrorCode.BAD_EXTENTS,
      `${file} breaks the daxfile contract (${problems.join(', ')}): its block map could change under the mapping. ` +
        `Rewrite it as a private, fully written copy (cp --reflink=never --sparse=never ${file} ${file}.new && mv ${file}.new ${file}) and reopen`,
    )
  }
  return report
}

/** What in a FIEMAP report of a file's first `size` bytes breaks the daxfile contract (nothing when FIEMAP is not supported). */
function extentProblems(report: FiemapReport, size: number): string[] {
  if (!report.supported) return []
  const problems: string[] = []
  if (report.shared > 0) problems.push(`${report.shared} shared (reflinked) extent(s)`)
  if (report.unwritten > 0) problems.push(`${report.unwritten} unwritten extent(s)`)
  if (report.delalloc > 0) problems.push(`${report.delalloc} delayed-allocation extent(s)`)
  if (report.unknown > 0 || report.inline > 0) problems.push(`${report.unknown + report.inline} extent(s) of unknown location`)
  if (report.mappedBytes < size) problems.push(`${size - report.mappedBytes} bytes in holes`)
  return problems
}

function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}
