#!/usr/bin/env node
/**
 * The `daxkv` command: inspect and edit a daxfile, and run the crash
 * campaigns against the user's own filesystem. Exit codes: 0 success, 1 an
 * operating error or a failed check (verify, crash-test), 2 a usage error.
 */
// First: it hides the arguments from the native loader before the library loads (see the module).
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { randomSeed } from './crash/random.js'
import { open, type DaxKV, type RangeOptions, type Stats } from './db.js'
import type { Key, ValueEncoding } from './encoding.js'
import { DaxKVError, ErrorCode } from './errors.js'
import type { ModeRequest } from './platform/daxfile.js'
import { formatReport, runCrashTest } from './cli/crash-test.js'
import { ProgressBar } from './cli/progress.js'
import { count } from './cli/words.js'

/** A mistake on the command line that commander cannot see (exit code 2). */
class UsageError extends Error {}

const MODES = ['auto', 'dax', 'msync', 'forced-dax'] as const
const READ_ENCODINGS = ['msgpack', 'json', 'utf8', 'binary'] as const
const WRITE_ENCODINGS = ['msgpack', 'json', 'utf8'] as const

interface FileOptions {
  mode?: ModeRequest
  encoding?: ValueEncoding
}

function modeOption(description = 'durability mode (default: auto, or $DAXKV_MODE)'): Option {
  return new Option('--mode <mode>', description).choices(MODES)
}

function encodingOption(choices: readonly ValueEncoding[], fallback: ValueEncoding = 'msgpack', note?: string): Option {
  return new Option('--encoding <encoding>', 'value encoding').choices(choices).default(fallback, note)
}

function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const n = Number(text)
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`)
    }
    return n
  }
}

/** Opens an existing daxfile; the CLI never creates one by accident (only `put --create` does). */
async function openExisting(file: string, options: FileOptions & { create?: boolean; size?: string }): Promise<DaxKV> {
  try {
    return await open(file, {
      create: options.create === true,
      valueEncoding: options.encoding ?? 'binary',
      cacheSize: 0,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...(options.size === undefined ? {} : { size: options.size }),
    })
  } catch (error) {
    if (error instanceof DaxKVError && error.code === ErrorCode.NOT_FOUND) {
      throw new DaxKVError(ErrorCode.NOT_FOUND, `no daxfile at ${file} (daxkv put --create makes one)`, { cause: error })
    }
    throw error
  }
}

async function withFile<T>(file: string, options: FileOptions & { create?: boolean; size?: string }, use: (db: DaxKV) => T | Promise<T>): Promise<T> {
  const db = await openExisting(file, options)
  try {
    return await use(db)
  } finally {
    await db.close()
  }
}

/** Prints a value for a terminal: strings as they are, binary as hex, anything else as JSON. */
function showValue(value: unknown, encoding: ValueEncoding, pretty: boolean): string {
  if (encoding === 'utf8') return String(value)
  if (encoding === 'binary') return Buffer.from(value as Uint8Array).toString('hex')
  // MessagePack can hold what JSON cannot; show bytes and big integers in a readable, unambiguous form.
  const replacer = (_key: string, v: unknown): unknown => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Uint8Array) return { $base64: Buffer.from(v).toString('base64') }
    if (v instanceof Map) return Object.fromEntries(v)
    if (v instanceof Set) return [...v]
    return v
  }
  // Buffer has a toJSON that runs before the replacer sees it; copy it to a plain Uint8Array first.
  const plain = Buffer.isBuffer(value) ? new Uint8Array(value) : value
  return JSON.stringify(plain, replacer, pretty ? 2 : undefined) ?? String(value)
}

/** Reads a key's value, naming the likely cause when it does not decode. */
function readValue(db: DaxKV, key: Key, encoding: ValueEncoding): unknown {
  try {
    return db.get(key) as unknown
  } catch (error) {
    if (error instanceof DaxKVError) throw error
    throw new DaxKVError(
      ErrorCode.ENCODING,
      `the value of ${JSON.stringify(key)} does not decode as ${encoding} (was it stored with another --encoding?): ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    )
  }
}

function parseValue(text: string, encoding: ValueEncoding): unknown {
  if (encoding === 'utf8') return text
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new UsageError(`with --encoding ${encoding} the value is JSON text, and ${JSON.stringify(text)} is not JSON; quote a string ('"${text}"') or use --encoding utf8`)
  }
}

function bytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${n} bytes` : `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`
}

function describeStats(s: Stats): string {
  const r = s.recovery
  const torn = r.tornTail === undefined ? 'none' : `${r.tornTail.bytes} bytes cut at offset ${r.tornTail.offset} (${r.tornTail.reason})`
  const rows: [string, string][] = [
    ['file', s.path],
    ['mode', s.mode],
    ['size', `${bytes(s.fileBytes)} (${s.fileBytes} bytes), may grow to ${bytes(s.maxFileBytes)}`],
    ['segments', `${s.segments} of ${bytes(s.segmentBytes)}: ${s.segmentsInUse} in use, ${s.segmentsFree} free`],
    ['used', `${bytes(s.usedBytes)} (${((100 * s.usedBytes) / s.fileBytes).toFixed(1)}% of the file), ${bytes(s.liveBytes)} live, ${(100 * s.garbageRatio).toFixed(0)}% garbage`],
    ['keys', String(s.keys)],
    [
      'recovery',
      `${count(r.batches, 'batch', 'batches')}, ${count(r.records, 'record')}, ${bytes(r.bytesScanned)} checked in ${r.durationMs.toFixed(1)} ms; ` +
        (r.source === 'checkpoint'
          ? `index from the index checkpoint, ${count(r.recordsReplayed, 'record')} written after it replayed`
          : `every record replayed into the index` + (r.checkpointRejected === undefined ? '' : ` (checkpoint not used: ${r.checkpointRejected})`)),
    ],
    ['torn tail', torn],
    ['flush', s.flushInstruction ?? '(msync mode: no cache flushes)'],
    ['crc32c', s.crc32c],
    ['statx DAX', s.statxDax === null ? 'unknown' : s.statxDax ? 'yes' : 'no'],
  ]
  return rows.map(([name, value]) => `${`${name}:`.padEnd(11)} ${value}`).join('\n')
}

function packageVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  try {
    return (JSON.parse(fs.readFileSync(path.join(here, '..', 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

function program(): Command {
  const cli = new Command('daxkv')
    .description('Inspect, edit and crash-test daxkv daxfiles.')
    .version(packageVersion())
    .showHelpAfterError('(run daxkv help <command> for its options)')
    // Commander exits on usage errors itself; overriding lets main() give them exit code 2.
    .exitOverride()

  cli
    .command('info')
    .description('show geometry, durability mode, keys and recovery of a daxfile')
    .argument('<file>')
    .option('--json', 'print the statistics as JSON')
    .addOption(modeOption())
    .action(async (file: string, options: FileOptions & { json?: boolean }) => {
      const stats = await withFile(file, options, (db) => db.stats())
      console.log(options.json === true ? JSON.stringify(stats, null, 2) : describeStats(stats))
    })

  cli
    .command('verify')
    .description('open the daxfile (which recovers it) and check all of it; exit 1 with the problems found')
    .argument('<file>')
    .addOption(encodingOption(READ_ENCODINGS, 'binary', 'binary: values are not decoded'))
    .addOption(modeOption())
    .action(async (file: string, options: FileOptions) => {
      const report = await withFile(file, options, (db) => db.verify())
      if (report.ok) {
        console.log(`ok: ${count(report.batches, 'batch', 'batches')}, ${count(report.records, 'record')}, ${count(report.keys, 'key')}`)
        return
      }
      console.error(`${file}: ${report.problems.length} problem(s)`)
      for (const problem of report.problems) console.error(`  ${problem}`)
      process.exitCode = 1
    })

  cli
    .command('get')
    .description('print the value of a key')
    .argument('<file>')
    .argument('<key>')
    .addOption(encodingOption(READ_ENCODINGS))
    .addOption(modeOption())
    .action(async (file: string, key: string, options: FileOptions & { encoding: ValueEncoding }) => {
      const value = await withFile(file, options, (db) => (db.has(key) ? { value: readValue(db, key, options.encoding) } : undefined))
      if (value === undefined) {
        console.error(`daxkv: no key ${JSON.stringify(key)} in ${file}`)
        process.exitCode = 1
        return
      }
      console.log(showValue(value.value, options.encoding, true))
    })

  cli
    .command('put')
    .description('store a value under a key (JSON text with --encoding json or msgpack)')
    .argument('<file>')
    .argument('<key>')
    .argument('<value>')
    .addOption(encodingOption(WRITE_ENCODINGS))
    .option('--create', 'create the daxfile if it does not exist')
    .option('--size <size>', "size of a created daxfile, e.g. '64MiB'", '64MiB')
    .addOption(modeOption())
    .action(async (file: string, key: string, text: string, options: FileOptions & { encoding: ValueEncoding; create?: boolean; size: string }) => {
      const value = parseValue(text, options.encoding)
      await withFile(file, options, (db) => db.put(key, value))
    })

  cli
    .command('del')
    .description('remove a key (removing an absent key is not an error)')
    .argument('<file>')
    .argument('<key>')
    .addOption(modeOption())
    .action(async (file: string, key: string, options: FileOptions) => {
      await withFile(file, options, (db) => db.del(key))
    })

  cli
    .command('scan')
    .description('print entries in key order, one per line: key, a tab, the value')
    .argument('<file>')
    .option('--gte <key>', 'from this key on')
    .option('--gt <key>', 'after this key')
    .option('--lt <key>', 'before this key')
    .option('--lte <key>', 'up to this key')
    .option('--limit <n>', 'at most this many entries', wholeNumber(0))
    .option('--reverse', 'descending order')
    .option('--json', 'one JSON object {"key", "value"} per line')
    .addOption(encodingOption(READ_ENCODINGS))
    .addOption(modeOption())
    .action(async (file: string, options: FileOptions & RangeOptions & { encoding: ValueEncoding; json?: boolean }) => {
      const range: RangeOptions = {}
      for (const bound of ['gt', 'gte', 'lt', 'lte'] as const) if (options[bound] !== undefined) range[bound] = options[bound]
      if (options.limit !== undefined) range.limit = options.limit
      if (options.reverse === true) range.reverse = true
      await withFile(file, options, (db) => {
        for (const key of db.keys(range)) {
          const value = readValue(db, key, options.encoding)
          const shown = showValue(value, options.encoding, false)
          if (options.json !== true) console.log(`${String(key)}\t${shown}`)
          else {
            // JSON and MessagePack values are already JSON text; strings and hex become JSON strings.
            const json = options.encoding === 'json' || options.encoding === 'msgpack' ? shown : JSON.stringify(shown)
            console.log(`{"key":${JSON.stringify(key)},"value":${json}}`)
          }
        }
      })
    })

  cli
    .command('crash-test')
    .description('run the simulated power-failure and process-kill campaigns on this machine')
    .requiredOption('--dir <dir>', 'directory for crash images and the kill campaign (use the filesystem you want to test)')
    .option('--ops <n>', 'workload steps of each power-failure campaign', wholeNumber(1), 200)
    .option('--seed <seed>', 'replay a run from its seed (default: random, printed)', wholeNumber(0, 0xffff_ffff))
    .option('--images <n>', 'random crash images per crash point when there are too many to enumerate', wholeNumber(0, 1000), 6)
    .addOption(modeOption('mode for opening real files and for the kill campaign').default('msync'))
    .option('--rounds <n>', 'rounds of the process-kill campaign (0 skips it)', wholeNumber(0), 20)
    .action(async (options: { dir: string; ops: number; seed?: number; images: number; mode: ModeRequest; rounds: number }) => {
      const seed = options.seed ?? randomSeed()
      const dir = path.resolve(options.dir)
      console.error(`daxkv crash-test: seed ${seed} (replay with --seed ${seed}), in ${dir}`)
      const bar = new ProgressBar(process.stderr)
      const report = await runCrashTest({ dir, ops: options.ops, seed, images: options.images, mode: options.mode, rounds: options.rounds }, (fraction, label) =>
        bar.update(fraction, label),
      )
      bar.done()
      console.log(formatReport(report))
      if (report.violations.length > 0) process.exitCode = 1
    })

  return cli
}

async function main(argv: readonly string[]): Promise<void> {
  try {
    await program().parseAsync(argv as string[])
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed the message (or the help); only the code is left to set.
      process.exitCode = error.exitCode === 0 ? 0 : 2
    } else if (error instanceof UsageError || error instanceof RangeError) {
      // RangeErrors come from values the user typed, such as a --size the library cannot parse.
      console.error(`daxkv: ${error.message}`)
      process.exitCode = 2
    } else if (error instanceof DaxKVError) {
      console.error(`daxkv: ${error.message}`)
      process.exitCode = 1
    } else {
      // Anything else is a bug in daxkv: keep the stack for the report.
      console.error(error)
      process.exitCode = 1
    }
  }
}

await main(process.argv)
