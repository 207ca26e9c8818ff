const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
}

/** Parses a byte size: a number of bytes, or a string such as '64MiB', '512 KiB', '1GB'. */
export function parseSize(size: number | string, what = 'size'): number {
  if (typeof size === 'number') {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`${what} must be a whole number of bytes, got ${size}`)
    return size
  }
  if (typeof size !== 'string') throw new TypeError(`${what} must be a number or a string such as '64MiB'`)
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(size)
  const unit = UNITS[(match?.[2] ?? '').toLowerCase()]
  if (match === null || unit === undefined) throw new RangeError(`${what} ${JSON.stringify(size)} is not a size such as '64MiB' or '1GiB'`)
  const bytes = Math.round(Number(match[1]) * unit)
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`${what} ${JSON.stringify(size)} is too large`)
  return bytes
}
