import type { Command } from 'commander'
import { DEFAULT_KEY_ENCODING, DEFAULT_VALUE_ENCODING } from '../encoding.js'
import type { Stats } from '../stats.js'
import { withFile } from './files.js'
import { modeOption, type FileOptions } from './options.js'
import { count } from './words.js'

/** `daxkv info <file>`: geometry, mode, space, keys and what recovery found. */
export function addInfoCommand(cli: Command): void {
  cli
    .command('info')
    .description('show geometry, durability mode, keys and recovery of a daxfile')
    .argument('<file>')
    .option('--json', 'print the statistics as JSON')
    .addOption(modeOption())
    .action(async (file: string, options: FileOptions & { json?: boolean }) => {
      const stats = await withFile(file, options, (f) => f.db.stats())
      console.log(options.json === true ? JSON.stringify(stats, null, 2) : describeStats(stats))
    })
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
    ['block map', s.blockMapProblems.length === 0 ? 'ok' : `changed while open: ${s.blockMapProblems.join(', ')}`],
    ['value encoding', recorded(s.encodings.recordedValue, DEFAULT_VALUE_ENCODING)],
    ['key encoding', recorded(s.encodings.recordedKey, DEFAULT_KEY_ENCODING)],
  ]
  return rows.map(([name, value]) => `${`${name}:`.padEnd(15)} ${value}`).join('\n')
}

/** What the file records (the CLI opens it as a raw view, so the encodings in use say nothing). */
function recorded(encoding: string | null, fallback: string): string {
  return encoding === null ? `not recorded (an older daxfile; open() uses ${fallback} unless told otherwise)` : `${encoding} (recorded)`
}
