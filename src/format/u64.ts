/**
 * Little-endian u64 fields as JS numbers. Every u64 in the format (sequence
 * numbers, sizes, ids) stays below 2^53, so a number holds it exactly; the
 * readers reject larger values instead of rounding them.
 */

const TWO_32 = 0x1_0000_0000

export function writeU64(buf: Uint8Array, offset: number, value: number): void {
  const view = buf instanceof Buffer ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  view.writeUInt32LE(value % TWO_32, offset)
  view.writeUInt32LE(Math.floor(value / TWO_32), offset + 4)
}

/** Returns the u64 at `offset`, or -1 when it is not a safe integer (so never a valid field). */
export function readU64(buf: Buffer, offset: number): number {
  const lo = buf.readUInt32LE(offset)
  const hi = buf.readUInt32LE(offset + 4)
  if (hi > 0x1fffff) return -1
  return hi * TWO_32 + lo
}
