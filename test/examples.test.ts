import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

const root = path.resolve(import.meta.dirname, '..')

function run(script: string, args: string[], env: Record<string, string>): string {
  return execFileSync(process.execPath, [path.join(root, 'examples', script), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  })
}

describe('examples', () => {
  it('notes: added notes survive the process and list in order; done removes one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxkv-notes-'))
    const env = { NOTES_FILE: path.join(dir, 'notes.dax') }
    const first = /added (\S+)/.exec(run('notes.mjs', ['add', 'first', 'note'], env))?.[1]
    const second = /added (\S+)/.exec(run('notes.mjs', ['add', 'second'], env))?.[1]
    expect(first).toBeDefined()
    expect(second).toBeDefined()
    const listed = run('notes.mjs', ['list'], env)
    expect(listed).toContain('2 note(s)')
    expect(listed.indexOf('first note')).toBeLessThan(listed.indexOf('second'))
    run('notes.mjs', ['done', first!], env)
    const after = run('notes.mjs', ['list'], env)
    expect(after).toContain('1 note(s)')
    expect(after).not.toContain('first note')
    fs.rmSync(dir, { recursive: true, force: true })
  })
})
