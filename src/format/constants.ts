/**
 * On-disk constants of format version 2. docs/format.md is the prose spec;
 * the module-load assertions at the bottom relate these numbers so that a
 * change to one cannot silently break another.
 */

/** The format version this daxkv writes into the superblock; it also reads {@link FORMAT_VERSION_V1}. */
export const FORMAT_VERSION = 2
/** The first format: a 64-byte superblock without the writer's records (format/superblock.ts). */
export const FORMAT_VERSION_V1 = 1
/** Version of the segment header layout, which format 2 did not change. */
export const SEGMENT_HEADER_VERSION = 1

/** Bytes of one superblock copy slot; two copies sit at offsets 0 and SUPERBLOCK_SLOT_BYTES. */
export const SUPERBLOCK_SLOT_BYTES = 4096
/** Bytes of the superblock area at the start of the file (both copies). */
export const SUPERBLOCK_AREA_BYTES = 2 * SUPERBLOCK_SLOT_BYTES
/** Bytes of the encoded superblock inside its slot. */
export const SUPERBLOCK_BYTES = 128
/** Bytes of a format 1 superblock. */
export const SUPERBLOCK_BYTES_V1 = 64
/** "DAXKV\0SB" as a little-endian pair of u32: bytes 44 41 58 4B 56 00 53 42. */
export const SUPERBLOCK_MAGIC = Buffer.from('DAXKV\0SB', 'latin1')

/** Bytes of a segment header; segment 0's header follows the superblock area. */
export const SEGMENT_HEADER_BYTES = 64
/** "DXSG" */
export const SEGMENT_MAGIC = 0x47535844

/** Bytes of a batch header; the first 8 are the commit marker. */
export const BATCH_HEADER_BYTES = 32
/** "DXBT" */
export const BATCH_MAGIC = 0x54425844
/** Offset of the commit marker inside the batch header. */
export const MARKER_OFFSET = 0
/** Bytes of the commit marker: one aligned 8-byte store. */
export const MARKER_BYTES = 8

/** Bytes of a record header. */
export const RECORD_HEADER_BYTES = 8
export const RECORD_PUT = 1
export const RECORD_DEL = 2

/** Everything in the log (segments, batches, records) starts on this boundary. */
export const ALIGNMENT_BYTES = 8
/**
 * Granule the layout keeps whole: the superblock slots and the segments are
 * multiples of it, so each superblock copy and each segment body can be
 * made durable on its own by page write-back (engine/layout.ts checks it
 * against the platform's page size).
 */
export const LAYOUT_PAGE_BYTES = 4096
/**
 * Unit the layout keeps headers within: a segment header is whole units of
 * it and a batch header fits in one (engine/layout.ts checks it against the
 * platform's cache line).
 */
export const LAYOUT_LINE_BYTES = 64

/** Largest key in bytes (the record header stores it in a u16; we keep keys well below that). */
export const MAX_KEY_BYTES = 4096
export const SEGMENT_BYTES_MIN = 64 * 1024
export const SEGMENT_BYTES_MAX = 256 * 1024 * 1024
export const SEGMENT_BYTES_DEFAULT = 4 * 1024 * 1024
/** Smallest daxfile: the superblock area plus two whole segments of the minimum size. */
export const FILE_BYTES_MIN = 2 * SEGMENT_BYTES_MIN
/**
 * Largest daxfile. The mapping library casts sizes and offsets to a C int, so
 * every mapped piece must start below 2 GiB; with pieces of 1 GiB
 * (platform/constants.ts) the file may be 2 GiB in all.
 */
export const FILE_BYTES_MAX = 2 * 1024 * 1024 * 1024

/** Rounds `n` up to the log alignment. */
export function align8(n: number): number {
  return (n + 7) & ~7
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`daxkv format constants are inconsistent: ${what}`)
}

check(SUPERBLOCK_MAGIC.length === 8, 'superblock magic is 8 bytes')
check(SUPERBLOCK_BYTES <= SUPERBLOCK_SLOT_BYTES, 'a superblock fits its slot')
check(SUPERBLOCK_SLOT_BYTES % LAYOUT_PAGE_BYTES === 0, 'superblock slots are whole pages, so each copy is persisted alone')
check(SEGMENT_BYTES_MIN % LAYOUT_PAGE_BYTES === 0, 'segments are whole pages')
check(SUPERBLOCK_AREA_BYTES + SEGMENT_HEADER_BYTES < SEGMENT_BYTES_MIN / 2, 'segment 0 keeps most of its space')
check(SEGMENT_HEADER_BYTES % LAYOUT_LINE_BYTES === 0, 'a segment header is whole cache lines')
check(BATCH_HEADER_BYTES <= LAYOUT_LINE_BYTES, 'a batch header fits a cache line')
check(BATCH_HEADER_BYTES % ALIGNMENT_BYTES === 0, 'batch header keeps alignment')
check(RECORD_HEADER_BYTES % ALIGNMENT_BYTES === 0, 'record header keeps alignment')
check(MARKER_OFFSET % MARKER_BYTES === 0 && MARKER_BYTES === 8, 'the marker is one aligned 8-byte word')
check(LAYOUT_LINE_BYTES % ALIGNMENT_BYTES === 0, 'alignment divides the cache line')
check(MAX_KEY_BYTES < 0xffff, 'key length fits the u16 in the record header')
