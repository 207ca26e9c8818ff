/**
 * The checksum every checked structure of the format carries: CRC32C
 * (Castagnoli; init and xorout 0xFFFFFFFF) of `buf[offset, offset +
 * length)`, continuing from `previous`, the finished CRC of the preceding
 * bytes (0 to start). The format code stays pure by taking the function as
 * an argument: the engine passes the native one (platform/native.ts), and a
 * test may pass the portable one.
 */
export type Crc32c = (buf: Uint8Array, offset: number, length: number, previous?: number) => number
