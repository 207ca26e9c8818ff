#!/usr/bin/env node
// A tiny durable notebook on daxkv: every note is acknowledged only once it is
// durable, and notes come back in time order because keys sort bytewise.
//
//   npm run example:notes -- add "buy milk"
//   npm run example:notes -- list
//   npm run example:notes -- done <id>
//
// The daxfile lives in $NOTES_FILE (default ./notes.dax).
import { open } from 'daxkv'

const file = process.env.NOTES_FILE ?? 'notes.dax'
const [command = 'list', ...args] = process.argv.slice(2)

const db = await open(file, { size: '4MiB' })
try {
  switch (command) {
    case 'add': {
      const text = args.join(' ').trim()
      if (text === '') throw new Error('usage: add <text>')
      // A fixed-width timestamp plus a counter keeps ids unique and ordered.
      const id = `${Date.now().toString(36).padStart(10, '0')}-${db.count.toString(36)}`
      await db.put(`note/${id}`, { text, created: new Date().toISOString() })
      console.log(`added ${id}`)
      break
    }
    case 'done': {
      const key = `note/${args[0] ?? ''}`
      if (!db.has(key)) throw new Error(`no note ${args[0] ?? ''}`)
      await db.del(key)
      console.log(`removed ${args[0]}`)
      break
    }
    case 'list': {
      let n = 0
      for (const [key, note] of db.range({ gte: 'note/', lt: 'note0' })) {
        console.log(`${key.slice('note/'.length)}  ${note.created}  ${note.text}`)
        n++
      }
      console.log(`${n} note(s), mode ${db.mode}`)
      break
    }
    default:
      throw new Error(`unknown command ${command}: use add, list or done`)
  }
} finally {
  await db.close()
}
