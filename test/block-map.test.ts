/**
 * The daxfile contract can be broken from outside while the store is open
 * (docs/format.md, section 1): another process zero-ranges or
 * reflink-copies the live file, and its extents become unwritten or
 * shared. The store reports it in verify() and stats() (the open refuses
 * such a file outright).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { open } from '../src/index.js'
import { native } from '../src/platform/native.js'
import { tempDir } from './helpers.js'

/** Why the xfs test cannot run here, or undefined when it can (it needs root, mkfs.xfs and a loop device). */
function xfsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root'
  if (spawnSync('mkfs.xfs', ['-V']).status !== 0) return 'mkfs.xfs is not installed (Debian: xfsprogs)'
  return undefined
}

/** Whether the temp directory's filesystem answers FIEMAP (ext4 does; tmpfs does not, and has no extents to change). */
function fiemapInTemp(): boolean {
  const probe = path.join(tempDir(os.tmpdir()), 'probe')
  const fd = fs.openSync(probe, 'w')
  try {
    return native.fiemap(fd).supported
  } finally {
    fs.closeSync(fd)
  }
}

describe('the block map changed while open', () => {
  it.skipIf(!fiemapInTemp())(`${os.tmpdir()}: a range of the live file zeroed into unwritten extents is reported by verify() and stats()`, async () => {
    const file = path.join(tempDir(os.tmpdir()), 'db.dax')
    const db = await open<string>(file, { size: '1MiB', segmentSize: '64KiB', mode: 'msync', valueEncoding: 'utf8' })
    for (let i = 0; i < 20; i++) await db.put(`k${i}`, `value ${i}`)
    expect(db.verify().ok).toBe(true)
    expect(db.stats().blockMapProblems).toEqual([])
    // The last segment is never used by 20 small puts: zeroing it changes no data, only the block map.
    execFileSync('fallocate', ['--zero-range', '--offset', String(1024 * 1024 - 64 * 1024), '--length', String(64 * 1024), file])
    const report = db.verify()
    expect(report.ok).toBe(false)
    expect(report.problems.join('\n')).toMatch(/block map no longer keeps the daxfile contract \(\d+ unwritten extent\(s\)\)/)
    expect(db.stats().blockMapProblems.join(', ')).toMatch(/unwritten extent/)
    for (let i = 0; i < 20; i++) expect(db.get(`k${i}`)).toBe(`value ${i}`)
    await db.close()
  })

  it.skipIf(!fiemapInTemp())(`${os.tmpdir()}: close() checks the block map once more and says what changed in a process warning`, async () => {
    const file = path.join(tempDir(os.tmpdir()), 'db.dax')
    const db = await open<string>(file, { size: '1MiB', segmentSize: '64KiB', mode: 'msync', valueEncoding: 'utf8', indexCheckpoint: false })
    await db.put('k', 'v')
    execFileSync('fallocate', ['--zero-range', '--offset', String(1024 * 1024 - 64 * 1024), '--length', String(64 * 1024), file])
    const warned = new Promise<Error & { code?: string }>((resolve) => process.once('warning', resolve))
    await db.close()
    const warning = await warned
    expect(warning.code).toBe('DAXKV_BLOCK_MAP')
    expect(warning.message).toMatch(/block map changed while it was open \(\d+ unwritten extent/)
  })

  const unavailable = xfsUnavailable()
  it.skipIf(unavailable !== undefined)(`xfs: a reflink copy of the live file makes its extents shared, which verify() reports${unavailable === undefined ? '' : ` (skipped: ${unavailable})`}`, async (context) => {
    const dir = tempDir(os.tmpdir())
    const image = path.join(dir, 'xfs.img')
    const mountPoint = path.join(dir, 'mnt')
    fs.mkdirSync(mountPoint)
    fs.writeFileSync(image, '')
    fs.truncateSync(image, 320 * 1024 * 1024)
    execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', image])
    const mounted = spawnSync('mount', ['-o', 'loop', image, mountPoint], { encoding: 'utf8' })
    if (mounted.status !== 0) {
      // A container may give root no loop devices: nothing to test here.
      console.log(`xfs block-map test skipped: mount -o loop failed: ${mounted.stderr.trim()}`)
      context.skip()
      return
    }
    try {
      const file = path.join(mountPoint, 'db.dax')
      const db = await open<string>(file, { size: '4MiB', mode: 'msync', valueEncoding: 'utf8' })
      await db.put('k', 'v')
      expect(db.verify().ok).toBe(true)
      execFileSync('cp', ['--reflink=always', file, path.join(mountPoint, 'copy.dax')])
      const report = db.verify()
      expect(report.problems.join('\n')).toMatch(/shared \(reflinked\) extent/)
      expect(db.stats().blockMapProblems.join(', ')).toMatch(/shared/)
      expect(db.get('k')).toBe('v')
      await db.close()
    } finally {
      // Lazily: the closed store's mapping goes only when it is garbage-collected (README, Limits).
      execFileSync('umount', ['-l', mountPoint])
    }
  })
})
