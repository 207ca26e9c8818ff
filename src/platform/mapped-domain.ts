import fs from 'node:fs'
import { DaxKVError, ErrorCode } from '../errors.js'
import { MAP_PIECE_BYTES, PAGE_BYTES } from './constants.js'
import { checkRange, type PersistenceDomain } from './domain.js'
import { msync } from './mmap.js'
import { native } from './native.js'

/**
 * A persistence domain over a real file mapping, in one of three strategies,
 * chosen once per mapping (like libpmem2):
 *
 * - `dax`: the mapping was granted MAP_SYNC; flush = cache-line write-back
 *   instructions, drain = sfence. No system call on the commit path.
 * - `forced-dax`: the same instructions on a mapping that is NOT DAX (tmpfs,
 *   page cache). Opt-in, for benchmarking the DAX code path; it survives a
 *   process crash but not a power failure.
 * - `msync`: flush records the dirty range; drain msyncs it (MS_SYNC), which
 *   writes the pages back and waits for the device. On a disk filesystem
 *   the stores go through pwrite() into the same page cache instead, and a
 *   drain is fdatasync(): a store through the mapping into a page written
 *   back since costs a write-protect fault, and with it a timestamp update
 *   that the filesystem journals, which measured about 2x slower per commit
 *   on ext4 than pwrite + fdatasync. On tmpfs, where msync costs nothing,
 *   stores stay plain copies into the mapping. Reads always use the mapping,
 *   which shares the page cache with pwrite().
 */
export class MappedDomain implements PersistenceDomain {
  readonly kind: 'dax' | 'forced-dax' | 'msync'
  readonly orderedMarker: boolean
  #size: number
  readonly #fd: number
  readonly #extend: (from: number, to: number) => Buffer[]
  #pieces: Buffer[]
  #markers: Float64Array[]
  /** msync strategy: the byte range flushed since the last drain, empty when lo >= hi. */
  #dirtyLo = Number.POSITIVE_INFINITY
  #dirtyHi = 0
  /** msync strategy on a disk: stores are pwrite() calls and a drain is fdatasync(). */
  readonly writeThrough: boolean
  readonly #markerBytes = new Float64Array(1)

  /**
   * `extend(from, to)` preallocates and zero-writes the file's bytes
   * [from, to), makes that durable, and returns a fresh mapping of the whole file.
   */
  constructor(
    kind: 'dax' | 'forced-dax' | 'msync',
    fd: number,
    pieces: Buffer[],
    size: number,
    extend: (from: number, to: number) => Buffer[],
    writeThrough = false,
  ) {
    this.kind = kind
    this.orderedMarker = kind !== 'msync'
    this.writeThrough = kind === 'msync' && writeThrough
    this.#size = size
    this.#fd = fd
    this.#extend = extend
    this.#pieces = pieces
    this.#markers = pieces.map((p) => new Float64Array(p.buffer, p.byteOffset, p.length >>> 3))
  }

  get size(): number {
    return this.#size
  }

  grow(from: number, to: number): void {
    // The old mapping stays valid until garbage-collected; nothing holds
    // views into it across this call.
    const pieces = this.#extend(from, to)
    this.#pieces = pieces
    this.#markers = pieces.map((p) => new Float64Array(p.buffer, p.byteOffset, p.length >>> 3))
    this.#size = Math.max(this.#size, to)
  }

  view(offset: number, length: number): Buffer {
    const piece = this.#piece(offset, length)
    const local = offset - piece * MAP_PIECE_BYTES
    return this.#pieces[piece]!.subarray(local, local + length)
  }

  piece(offset: number): Buffer {
    // One piece is the common case (files up to 1 GiB): skip the lookup.
    if (this.#pieces.length === 1 && offset >= 0 && offset < this.#size) return this.#pieces[0]!
    return this.#pieces[this.#piece(offset, 0)]!
  }

  write(offset: number, src: Uint8Array): void {
    const piece = this.#piece(offset, src.length)
    if (this.writeThrough) this.#pwrite(src, offset)
    else this.#pieces[piece]!.set(src, offset - piece * MAP_PIECE_BYTES)
  }

  writeMarker(offset: number, value: number): void {
    if (offset % 8 !== 0) throw new RangeError(`marker offset ${offset} is not 8-byte aligned`)
    const piece = this.#piece(offset, 8)
    if (this.writeThrough) {
      this.#markerBytes[0] = value
      this.#pwrite(new Uint8Array(this.#markerBytes.buffer), offset)
    } else {
      this.#markers[piece]![(offset - piece * MAP_PIECE_BYTES) >>> 3] = value
    }
  }

  zero(offset: number, length: number): void {
    const piece = this.#piece(offset, length)
    const local = offset - piece * MAP_PIECE_BYTES
    if (!this.writeThrough) {
      this.#pieces[piece]!.fill(0, local, local + length)
      return
    }
    const zeros = Buffer.alloc(Math.min(length, 1024 * 1024))
    for (let at = 0; at < length; at += zeros.length) this.#pwrite(zeros.subarray(0, Math.min(zeros.length, length - at)), offset + at)
  }

  flush(offset: number, length: number): void {
    if (length === 0) return
    const piece = this.#piece(offset, length)
    if (this.kind === 'msync') {
      if (offset < this.#dirtyLo) this.#dirtyLo = offset
      if (offset + length > this.#dirtyHi) this.#dirtyHi = offset + length
      return
    }
    // Cache-line write-back cannot fail on a mapped range; a bad range is a
    // bug and throws RangeError, which the writer latches like an I/O error.
    native.flush(this.#pieces[piece]!, offset - piece * MAP_PIECE_BYTES, length)
  }

  drain(): void {
    if (this.kind !== 'msync') {
      native.drain()
      return
    }
    const lo = this.#dirtyLo
    const hi = this.#dirtyHi
    this.#dirtyLo = Number.POSITIVE_INFINITY
    this.#dirtyHi = 0
    if (lo >= hi) return
    if (this.writeThrough) this.#io('fdatasync', () => fs.fdatasyncSync(this.#fd))
    else this.#io('msync', () => this.#msyncRange(lo, hi))
    // A sync already costs a system call; one more tells whether the file still has a name.
    this.checkLinked()
  }

  checkLinked(): void {
    let links: number
    try {
      links = native.linkCount(this.#fd)
    } catch (cause) {
      throw new DaxKVError(ErrorCode.IO, `fstat of the daxfile failed: ${String(cause)}; the store must be reopened`, { cause })
    }
    if (links === 0) {
      throw new DaxKVError(
        ErrorCode.IO,
        'the daxfile was deleted or renamed over while open: it has no name left, so what is written to it now is lost when it is closed. ' +
          'Reads still work: copy the data out (to a new daxfile) before closing this store',
      )
    }
  }

  persist(offset: number, length: number): void {
    if (this.kind === 'msync') {
      // One sync covers this range and whatever was flushed before it, as
      // a flush and a drain would.
      this.flush(offset, length)
      this.drain()
      return
    }
    // One native call: flush and fence together (the commit protocol persists twice per batch).
    const piece = this.#piece(offset, length)
    native.persist(this.#pieces[piece]!, offset - piece * MAP_PIECE_BYTES, length)
  }

  persistAll(): void {
    this.#io('msync', () => this.#msyncRange(0, this.size))
    this.#io('fdatasync', () => fs.fdatasyncSync(this.#fd))
  }

  close(): void {
    // mmap-io unmaps when the Buffers are garbage-collected; dropping our
    // references is what lets that happen. Nothing in daxkv hands views out.
    this.#pieces = []
    this.#markers = []
  }

  #pwrite(src: Uint8Array, offset: number): void {
    this.#io('pwrite', () => {
      for (let done = 0; done < src.length; ) done += fs.writeSync(this.#fd, src, done, src.length - done, offset + done)
    })
  }

  #msyncRange(lo: number, hi: number): void {
    const start = lo - (lo % PAGE_BYTES)
    for (let piece = Math.floor(start / MAP_PIECE_BYTES); piece * MAP_PIECE_BYTES < hi; piece++) {
      const base = piece * MAP_PIECE_BYTES
      const buf = this.#pieces[piece]!
      const from = Math.max(start, base) - base
      const to = Math.min(hi - base, buf.length)
      msync(buf, from, to - from)
    }
  }

  #piece(offset: number, length: number): number {
    checkRange(this.size, offset, length)
    const piece = Math.floor(offset / MAP_PIECE_BYTES)
    if (length > 0 && Math.floor((offset + length - 1) / MAP_PIECE_BYTES) !== piece) {
      throw new RangeError(`range [${offset}, ${offset + length}) straddles two mapped pieces`)
    }
    if (this.#pieces.length === 0) throw new DaxKVError(ErrorCode.CLOSED, 'the daxfile mapping is closed')
    return piece
  }

  #io(call: string, fn: () => void): void {
    try {
      fn()
    } catch (cause) {
      throw new DaxKVError(ErrorCode.IO, `${call} of the daxfile failed: ${String(cause)}; the store must be reopened`, { cause })
    }
  }
}
