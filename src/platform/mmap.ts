import { createRequire } from 'node:module'

/** The subset of `@riaskov/mmap-io` that daxkv uses. */
interface MmapIo {
  map(size: number, protection: number, flags: number, fd: number, offset?: number): Buffer
  sync(buffer: Buffer, offset: number, size: number, blocking: boolean, invalidate?: boolean): void
  readonly PROT_READ: number
  readonly PROT_WRITE: number
  readonly MAP_SHARED: number
}

const require = createRequire(import.meta.url)
const mmapIo = loadMmapIo()

/**
 * mmap-io finds its addon with node-pre-gyp, which parses `process.argv` as
 * its own options when first required: a host program run with `--dir X`
 * (read as `--directory`) would make it look for its files under X and
 * fail. It sees only the program and script while it loads.
 */
function loadMmapIo(): MmapIo {
  const argv = process.argv
  process.argv = argv.slice(0, 2)
  try {
    return require('@riaskov/mmap-io') as MmapIo
  } finally {
    process.argv = argv
  }
}

/** Linux mmap flags that mmap-io does not name. */
const MAP_SHARED_VALIDATE = 0x03
const MAP_SYNC = 0x80000
const EOPNOTSUPP = 95

export type MapResult = { readonly ok: true; readonly buffer: Buffer } | { readonly ok: false; readonly errno: number; readonly message: string }

/**
 * Maps [offset, offset + size) of `fd` read-write and shared. With `sync`,
 * asks for MAP_SHARED_VALIDATE | MAP_SYNC, which the kernel grants only on a
 * DAX filesystem; otherwise the result carries the errno (EOPNOTSUPP there).
 * mmap-io unmaps a mapping only when its Buffer is garbage-collected.
 */
export function mapShared(fd: number, offset: number, size: number, sync: boolean): MapResult {
  const flags = sync ? MAP_SHARED_VALIDATE | MAP_SYNC : mmapIo.MAP_SHARED
  try {
    return { ok: true, buffer: mmapIo.map(size, mmapIo.PROT_READ | mmapIo.PROT_WRITE, flags, fd, offset) }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const match = /(\d+)\s*$/.exec(message)
    return { ok: false, errno: match ? Number(match[1]) : -1, message }
  }
}

export function isNotSupported(result: MapResult): boolean {
  return !result.ok && result.errno === EOPNOTSUPP
}

/** msync(MS_SYNC) of [offset, offset + size) of a mapped Buffer; `offset` must be page-aligned. */
export function msync(buffer: Buffer, offset: number, size: number): void {
  if (size > 0) mmapIo.sync(buffer, offset, size, true, false)
}
