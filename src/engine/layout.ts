/**
 * Load-time checks that the format's sizes fit the platform they run on.
 * The format (format/constants.ts) states what it assumes of pages and
 * cache lines; the platform (platform/constants.ts) says what it has. Only
 * the engine sees both, so the checks that relate them live here.
 */
import { LAYOUT_LINE_BYTES, LAYOUT_PAGE_BYTES, SEGMENT_BYTES_MAX } from '../format/constants.js'
import { CACHE_LINE_BYTES, MAP_PIECE_BYTES, PAGE_BYTES } from '../platform/constants.js'

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`daxkv constants are inconsistent: ${what}`)
}

check(LAYOUT_PAGE_BYTES % PAGE_BYTES === 0, 'the layout keeps whole platform pages')
check(LAYOUT_LINE_BYTES === CACHE_LINE_BYTES, 'the layout assumes the cache line the flush code uses')
check(MAP_PIECE_BYTES % SEGMENT_BYTES_MAX === 0, 'segments never straddle mapped pieces')
