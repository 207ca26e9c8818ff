import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { expect, it } from 'vitest'
import { open } from '../src/index.js'

it('smoke', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxkv-'))
  const file = path.join(dir, 'db.dax')
  let db = await open(file, { size: '4MiB' })
  expect(db.mode).toBe('msync')
  await db.put('a', { x: 1 })
  await Promise.all([db.put('b', 2), db.put('c', 'three'), db.del('a')])
  db.putSync('d', [1, 2])
  expect(db.get('b')).toBe(2)
  expect([...db.range()]).toEqual([['b', 2], ['c', 'three'], ['d', [1, 2]]])
  await db.close()
  db = await open(file)
  expect([...db.range({ reverse: true })]).toEqual([['d', [1, 2]], ['c', 'three'], ['b', 2]])
  expect(db.verify()).toMatchObject({ ok: true, problems: [], keys: 3 })
  await db.close()
})
