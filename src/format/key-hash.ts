/**
 * The 32-bit hash of a key. The index keeps it beside each location, and
 * the index checkpoint stores those tables as they are, so the function is
 * part of the checkpoint format: changing it needs a new checkpoint version.
 */

/** FNV-1a over the key's bytes (a byte string, one char per byte), then a final avalanche (murmur3's fmix32) so low bits spread. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return finishHash(h)
}

/** {@link hashKey} of bytes[start, end): the same value as for the byte string of those bytes. */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193)
  return finishHash(h)
}

function finishHash(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}
