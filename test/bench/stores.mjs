// Adapters that give daxkv and its peers one interface for the benchmark
// worker. Every adapter stores binary values under 16-byte string keys and
// makes each write durable the way its store documents it.
//
//   open(dir)            opens (creating if needed) the store in `dir`
//   putSync(k, v)        durable put, acknowledged when it returns (daxkv only)
//   put(k, v)            durable put: resolves once durable
//   batch(entries)       one durable, atomic batch of [key, value] pairs
//   get(k)               synchronous read: a Buffer or undefined
//   scan(start, n)       reads up to n consecutive entries from `start`; returns the count
//   close()
//   info()               store-specific facts for the report (recovery report, versions)

import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const require = createRequire(import.meta.url)

/** The stores the benchmark knows, in report order. */
export const STORES = ['daxkv-msync', 'daxkv-forced-dax', 'lmdb', 'classic-level', 'better-sqlite3']

/** How each store is configured, for the report. */
export const SETTINGS = {
  'daxkv-msync': "mode 'msync' (plain shared mapping, msync/fdatasync at each commit point), valueEncoding 'binary', default cacheSize (10 000; binary values are not cached)",
  'daxkv-forced-dax':
    "mode 'forced-dax': cache-line flush + fence instructions on memory that is not DAX; not durable against power failure on this hardware, it measures the cost of the dax commit protocol",
  lmdb: "lmdb-js defaults (overlappingSync on Linux), encoding 'binary'; a write is durable once `db.flushed` resolves",
  'classic-level': "defaults (LevelDB, snappy compression, 8 MiB block cache), valueEncoding 'buffer', `{ sync: true }` on durable writes, `getSync` for reads",
  'better-sqlite3': 'table `kv(key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID`, journal_mode=WAL, synchronous=FULL, prepared statements, default page cache',
}

export function packageVersion(name) {
  try {
    let dir = path.dirname(require.resolve(name))
    for (;;) {
      const file = path.join(dir, 'package.json')
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8'))
        if (pkg.name === name) return pkg.version
      }
      const up = path.dirname(dir)
      if (up === dir) return undefined
      dir = up
    }
  } catch {
    return undefined
  }
}

/** Returns the adapter of `store`; `options.size`, `options.autoGrow`, `options.indexCheckpoint` and `options.dist` (the built daxkv to load) apply to daxkv. */
export async function adapter(store, options = {}) {
  switch (store) {
    case 'daxkv-msync':
      return daxkv('msync', options)
    case 'daxkv-forced-dax':
      return daxkv('forced-dax', options)
    case 'lmdb':
      return lmdbAdapter()
    case 'classic-level':
      return levelAdapter()
    case 'better-sqlite3':
      return sqliteAdapter()
    default:
      throw new Error(`unknown store ${store}`)
  }
}

async function daxkv(mode, options) {
  const { open } = await import(pathToFileURL(path.join(options.dist ?? new URL('../../dist', import.meta.url).pathname, 'index.js')).href)
  let db
  return {
    async open(dir) {
      db = await open(path.join(dir, 'bench.dax'), {
        size: options.size ?? '512MiB',
        mode,
        valueEncoding: 'binary',
        autoGrow: options.autoGrow ?? true,
        ...(options.cacheSize === undefined ? {} : { cacheSize: options.cacheSize }),
        ...(options.indexCheckpoint === undefined ? {} : { indexCheckpoint: options.indexCheckpoint }),
      })
      if (db.mode !== mode) throw new Error(`asked for mode ${mode}, got ${db.mode}`)
    },
    putSync(k, v) {
      db.putSync(k, v)
    },
    put(k, v) {
      return db.put(k, v)
    },
    batch(entries) {
      db.batchSync(entries.map(([key, value]) => ({ type: 'put', key, value })))
    },
    get(k) {
      return db.get(k)
    },
    scan(start, n) {
      let count = 0
      for (const entry of db.range({ gte: start, limit: n })) if (entry[1] !== undefined) count++
      return count
    },
    close() {
      return db.close()
    },
    info() {
      const s = db.stats()
      return {
        recovery: s.recovery,
        fileBytes: s.fileBytes,
        usedBytes: s.usedBytes,
        liveBytes: s.liveBytes,
        growths: s.growths,
        keys: s.keys,
        flushInstruction: s.flushInstruction,
        crc32c: s.crc32c,
        compactions: s.compactions,
      }
    },
  }
}

async function lmdbAdapter() {
  const { open } = await import('lmdb')
  let db
  return {
    async open(dir) {
      db = open({ path: path.join(dir, 'data.mdb'), encoding: 'binary' })
    },
    async put(k, v) {
      await db.put(k, v)
      await db.flushed
    },
    async batch(entries) {
      // Puts issued in one tick are committed in one transaction.
      let last
      for (const [k, v] of entries) last = db.put(k, v)
      await last
      await db.flushed
    },
    get(k) {
      return db.get(k)
    },
    scan(start, n) {
      let count = 0
      for (const { value } of db.getRange({ start, limit: n })) if (value !== undefined) count++
      return count
    },
    close() {
      return db.close()
    },
    info() {
      return { version: packageVersion('lmdb') }
    },
  }
}

async function levelAdapter() {
  const { ClassicLevel } = await import('classic-level')
  let db
  return {
    async open(dir) {
      db = new ClassicLevel(path.join(dir, 'level'), { valueEncoding: 'buffer' })
      await db.open()
    },
    put(k, v) {
      return db.put(k, v, { sync: true })
    },
    batch(entries) {
      return db.batch(
        entries.map(([key, value]) => ({ type: 'put', key, value })),
        { sync: true },
      )
    },
    get(k) {
      return db.getSync(k)
    },
    async scan(start, n) {
      let count = 0
      for await (const [, value] of db.iterator({ gte: start, limit: n })) if (value !== undefined) count++
      return count
    },
    close() {
      return db.close()
    },
    info() {
      return { version: packageVersion('classic-level') }
    },
  }
}

async function sqliteAdapter() {
  const Database = (await import('better-sqlite3')).default
  let db, insert, select, range, insertMany, sqliteVersion
  const bytes = (k) => Buffer.from(k, 'latin1')
  return {
    async open(dir) {
      db = new Database(path.join(dir, 'kv.sqlite'))
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = FULL')
      sqliteVersion = db.prepare('SELECT sqlite_version()').pluck().get()
      db.exec('CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID')
      insert = db.prepare('INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)')
      select = db.prepare('SELECT value FROM kv WHERE key = ?').pluck()
      range = db.prepare('SELECT key, value FROM kv WHERE key >= ? ORDER BY key LIMIT ?').raw()
      insertMany = db.transaction((entries) => {
        for (const [k, v] of entries) insert.run(bytes(k), v)
      })
    },
    async put(k, v) {
      // An autocommit statement: durable (synchronous=FULL) when run() returns.
      insert.run(bytes(k), v)
    },
    async batch(entries) {
      insertMany(entries)
    },
    get(k) {
      return select.get(bytes(k))
    },
    scan(start, n) {
      let count = 0
      for (const row of range.iterate(bytes(start), n)) if (row[1] !== undefined) count++
      return count
    },
    async close() {
      db.close()
    },
    info() {
      return { version: packageVersion('better-sqlite3'), sqlite: sqliteVersion }
    },
  }
}
