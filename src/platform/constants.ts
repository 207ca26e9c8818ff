/**
 * Facts about the machine and the mapping that the platform code works in.
 * The on-disk format does not depend on them; the engine checks at load
 * that the format's sizes fit them (engine/layout.ts).
 */

/** Cache-line size assumed by the flush code and the simulated domain. */
export const CACHE_LINE_BYTES = 64
/** Page size used for msync ranges and the page-granularity simulation. */
export const PAGE_BYTES = 4096
/**
 * Bytes of one mapped piece. The mapping library casts sizes and offsets to
 * a C int, so a file is mapped in pieces that each start below 2 GiB.
 */
export const MAP_PIECE_BYTES = 1024 * 1024 * 1024
