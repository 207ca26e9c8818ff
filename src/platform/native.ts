/**
 * The only module that loads the native addon (`native/build/Release/daxkv.node`).
 * Everything else imports {@link native} from here.
 *
 * The addon is mechanism only: cache-line flush and fence, CPU detection,
 * CRC32C, and the Linux file calls Node's `fs` lacks (statx DAX attribute,
 * fallocate, FIEMAP, flock). It knows nothing about the daxkv format.
 */
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** Extent counts from FIEMAP over a whole file. Counts are extents, not bytes. */
export interface FiemapReport {
  /** False when the filesystem has no FIEMAP (tmpfs); every count is then 0. */
  supported: boolean
  extents: number
  /** Sum of the extent lengths. */
  mappedBytes: number
  /** Extents shared with another file (reflink): a write would copy them. */
  shared: number
  /** Allocated but unwritten extents: the first write changes the block map. */
  unwritten: number
  /** Delayed allocations (should be none, FIEMAP_FLAG_SYNC writes them back). */
  delalloc: number
  unknown: number
  inline: number
}

/** The native addon's API. Every call is synchronous. */
export interface NativeBinding {
  /**
   * The cache-line write-back instruction {@link flush} uses, chosen once at
   * load by CPUID (clwb, else clflushopt, else clflush). `DAXKV_FLUSH=clwb|
   * clflushopt|clflush` forces a choice; an unsupported or unknown one makes
   * the load throw.
   */
  readonly flushInstruction: 'clwb' | 'clflushopt' | 'clflush'
  /** `'sse4.2'`, or `'software'` without SSE4.2 or with `DAXKV_CRC32C=software`. */
  readonly crc32cImplementation: 'sse4.2' | 'software'
  /**
   * Writes back every cache line covering `buf[offset, offset + length)`. No
   * fence. RangeError if the range is outside `buf`; length 0 is a no-op.
   */
  flush(buf: Uint8Array, offset: number, length: number): void
  /** Store fence (sfence): earlier flushes complete before later stores. */
  drain(): void
  /** {@link flush} then {@link drain}. */
  persist(buf: Uint8Array, offset: number, length: number): void
  /**
   * CRC32C (Castagnoli; init and xorout 0xFFFFFFFF) of `buf[offset, offset +
   * length)`, continuing from `previous`, the finished CRC of the preceding
   * bytes (default 0): `crc32c(b, 0, n) === crc32c(b, k, n - k, crc32c(b, 0, k))`.
   * Returns a uint32.
   */
  crc32c(buf: Uint8Array, offset: number, length: number, previous?: number): number
  /** {@link crc32c} by the portable slicing-by-8 path, whatever the CPU has. */
  crc32cSoftware(buf: Uint8Array, offset: number, length: number, previous?: number): number
  /**
   * Whether statx reports STATX_ATTR_DAX for `path`; null when the kernel or
   * filesystem cannot say. Throws an errno error (ENOENT, ...).
   */
  statxDax(path: string): boolean | null
  /** `fallocate(fd, 0, offset, length)`: allocates blocks, grows the file. */
  fallocate(fd: number, offset: number, length: number): void
  /** FIEMAP over the file's first `limit` bytes (default: all), with FIEMAP_FLAG_SYNC. */
  fiemap(fd: number, limit?: number): FiemapReport
  /**
   * Non-blocking `flock`. Returns false when another open file description
   * holds a conflicting lock, true on success; throws other errno errors.
   */
  flock(fd: number, op: 'exclusive' | 'shared' | 'unlock'): boolean
  /** fstat()'s link count of `fd`: 0 once the file has no name left (deleted, or renamed over, while open). */
  linkCount(fd: number): number
  /** `sysconf(_SC_PAGESIZE)`. */
  readonly pageSize: number
}

const ADDON_PATH = path.join('native', 'build', 'Release', 'daxkv.node')
const PACKAGE_NAME = 'daxkv'
const PARENTS_MAX = 8

// This file runs as src/platform/native.ts under vitest and as
// dist/platform/native.js after tsc, so the addon is found from the package
// root, not from this file's own directory.
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < PARENTS_MAX; i++) {
    const manifest = path.join(dir, 'package.json')
    if (fs.existsSync(manifest)) {
      const { name } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: unknown }
      if (name === PACKAGE_NAME) return dir
    }
    const parent = path.dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  throw new Error(`daxkv: cannot find the package root (package.json named "${PACKAGE_NAME}") above ${fileURLToPath(import.meta.url)}`)
}

function load(): NativeBinding {
  const file = path.join(packageRoot(), ADDON_PATH)
  if (!fs.existsSync(file)) {
    throw new Error(`daxkv: the native addon is missing (${file}); run \`npm ci\` (it builds the addon) or \`npm run build\``)
  }
  return createRequire(import.meta.url)(file) as NativeBinding
}

/** The loaded addon. Importing this module throws if the addon cannot load. */
export const native: NativeBinding = load()
