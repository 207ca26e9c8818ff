import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { recordEncodingCodes } from './daxfile-surgery.js'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const cli = path.join(root, 'dist', 'cli.js')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxkv-cli-'))
const file = path.join(dir, 'db.dax')

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** Runs the built CLI the way a user would: a separate node process. */
function daxkv(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('daxkv CLI', () => {
  it('put, get, scan, del, info and verify on a daxfile', () => {
    expect(daxkv('put', file, 'greeting', '"hello"', '--create', '--size', '1MiB')).toMatchObject({ status: 0 })
    expect(daxkv('put', file, 'config', '{"retries":3,"tags":["a","b"]}').status).toBe(0)
    // The file records msgpack values: a utf8 one would not read back, and is refused.
    expect(daxkv('put', file, 'note', 'plain text', '--encoding', 'utf8').status).toBe(2)
    expect(daxkv('put', file, 'note', '"plain text"').status).toBe(0)
    expect(daxkv('put', file, 'zzz', '42').status).toBe(0)

    expect(JSON.parse(daxkv('get', file, 'config').stdout)).toEqual({ retries: 3, tags: ['a', 'b'] })
    expect(daxkv('get', file, 'note').stdout).toBe('"plain text"\n')
    const wrong = daxkv('get', file, 'config', '--encoding', 'json')
    expect(wrong.status).toBe(1)
    expect(wrong.stderr).toMatch(/^daxkv: the value of "config" does not decode as json/)
    const missing = daxkv('get', file, 'nope')
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain('no key "nope"')

    expect(daxkv('scan', file, '--gte', 'config', '--lt', 'note').stdout).toBe('config\t{"retries":3,"tags":["a","b"]}\ngreeting\t"hello"\n')
    expect(daxkv('scan', file, '--reverse', '--limit', '2', '--json', '--lte', 'zzz', '--gt', 'note').stdout).toBe('{"key":"zzz","value":42}\n')
    expect(daxkv('scan', file, '--reverse', '--limit', '2', '--json', '--lt', 'note').stdout.trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([
      { key: 'greeting', value: 'hello' },
      { key: 'config', value: { retries: 3, tags: ['a', 'b'] } },
    ])

    expect(daxkv('del', file, 'zzz').status).toBe(0)
    expect(daxkv('get', file, 'zzz').status).toBe(1)

    const info = daxkv('info', file)
    expect(info.status).toBe(0)
    expect(info.stdout).toMatch(/^size: +1 MiB \(1048576 bytes\), may grow to 2 GiB$/m)
    expect(info.stdout).toMatch(/^keys: +3$/m)
    // Each command closed the store cleanly, so this open came from the index checkpoint of the last one.
    expect(info.stdout).toMatch(/^recovery: +5 batches, 5 records, .* checked in .* ms; index from the index checkpoint, 0 records written after it replayed$/m)
    const stats = JSON.parse(daxkv('info', file, '--json').stdout) as { keys: number; fileBytes: number; recovery: { batches: number } }
    expect(stats).toMatchObject({ keys: 3, fileBytes: 1048576, recovery: { batches: 5 } })

    const verify = daxkv('verify', file)
    expect(verify.status).toBe(0)
    expect(verify.stdout).toBe('ok: 5 batches, 5 records, 3 keys\n')
  })

  it('verify exits 1 and lists the problems when a check fails', () => {
    // Text stored as UTF-8 is not valid MessagePack (0xc1 is a byte MessagePack never uses).
    const mixed = path.join(dir, 'mixed.dax')
    expect(daxkv('put', mixed, 'note', '\u00c1 plain text', '--encoding', 'utf8', '--create', '--size', '1MiB').status).toBe(0)
    expect(daxkv('verify', mixed).status).toBe(0)
    const verify = daxkv('verify', mixed, '--encoding', 'msgpack')
    expect(verify.status).toBe(1)
    expect(verify.stderr).toMatch(/the value of key "note" does not decode as msgpack/)
  })

  it('get and scan show values with the encoding the file records, and info prints the recorded encodings', () => {
    const utf8 = path.join(dir, 'utf8.dax')
    expect(daxkv('put', utf8, 'note', '\u00c1 text', '--encoding', 'utf8', '--create', '--size', '1MiB').status).toBe(0)
    expect(daxkv('put', utf8, 'more', 'plain words').status).toBe(0)
    expect(daxkv('get', utf8, 'note').stdout).toBe('\u00c1 text\n')
    expect(daxkv('scan', utf8, '--json').stdout).toBe('{"key":"more","value":"plain words"}\n{"key":"note","value":"\u00c1 text"}\n')
    const info = daxkv('info', utf8)
    expect(info.stdout).toMatch(/^value encoding: utf8 \(recorded\)$/m)
    expect(info.stdout).toMatch(/^key encoding: +utf8 \(recorded\)$/m)
    expect(JSON.parse(daxkv('info', utf8, '--json').stdout)).toMatchObject({ encodings: { recordedValue: 'utf8', recordedKey: 'utf8' } })
    // A value of another encoding than the file records is refused before anything is written.
    const other = daxkv('put', utf8, 'n', '42', '--encoding', 'json')
    expect(other.status).toBe(2)
    expect(other.stderr).toContain('records utf8 values; a value stored as json would not read back (DAXKV_ENCODING). Use --encoding utf8')
    expect(daxkv('get', utf8, 'n').status).toBe(1)

    recordEncodingCodes(utf8, 0, 0)
    expect(daxkv('info', utf8).stdout).toMatch(/^value encoding: not recorded \(an older daxfile; open\(\) uses msgpack unless told otherwise\)$/m)
    expect(daxkv('get', utf8, 'more', '--encoding', 'utf8').stdout).toBe('plain words\n')
  })

  it('reports library errors as one line and exit code 1', () => {
    const notDaxfile = path.join(dir, 'not-a-daxfile')
    fs.writeFileSync(notDaxfile, 'hello\n')
    const r = daxkv('info', notDaxfile)
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/^daxkv: .*not a daxfile/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(daxkv('get', path.join(dir, 'absent.dax'), 'k')).toMatchObject({ status: 1, stderr: expect.stringMatching(/^daxkv: no daxfile at/) as unknown })
  })

  it('exits 2 on usage errors', () => {
    expect(daxkv('scan', file, '--bogus').status).toBe(2)
    expect(daxkv('crash-test', '--ops', '20').status).toBe(2)
    expect(daxkv('crash-test', '--dir', dir, '--ops', 'many').status).toBe(2)
    expect(daxkv('info', file, '--mode', 'fast').status).toBe(2)
    const notJson = daxkv('put', file, 'k', 'not json')
    expect(notJson.status).toBe(2)
    expect(notJson.stderr).toContain('--encoding utf8')
    expect(daxkv('no-such-command').status).toBe(2)
  })

  it('crash-test runs the three campaigns and prints a summary with its seed', () => {
    const r = daxkv('crash-test', '--dir', path.join(dir, 'crash'), '--ops', '20', '--rounds', '3', '--corrupt', '40', '--seed', '11')
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain('daxkv crash-test summary')
    expect(r.stdout).toMatch(/^ {2}crash images checked: +[1-9]\d* \([1-9]\d* as real files in msync mode\)$/m)
    expect(r.stdout).toMatch(/^ {2}kill rounds: +3$/m)
    expect(r.stdout).toMatch(/^ {2}corrupt files: +40$/m)
    expect(r.stdout).toMatch(/^ {2}corrupt files: 40 damaged files \(small \d+, .*\): \d+ refused, .*, 0 violations, /m)
    expect(r.stdout).toMatch(/^ {4}(flip|zero|index|truncate|extend|older|segments|foreign)[^\n]* \d+ (refused|intact|torn tail)/m)
    expect(r.stdout).toMatch(/^ {2}violations: +0$/m)
    expect(r.stdout).toMatch(/^ {2}seed: +11$/m)
    expect(r.stderr).toContain('100%')
    // It cleans up after itself: no image, probe or index checkpoint is left behind.
    expect(fs.readdirSync(path.join(dir, 'crash'))).toEqual([])
  })

  it('crash-test on a path that is a file says so in one line and exits 2', () => {
    const notDir = path.join(dir, 'a-file')
    fs.writeFileSync(notDir, 'x')
    const r = daxkv('crash-test', '--dir', notDir, '--ops', '5', '--rounds', '0', '--corrupt', '0')
    expect(r.status).toBe(2)
    expect(r.stderr.trim()).toBe(`daxkv: --dir ${notDir} is not a directory`)
  })
})
