import type { Command } from 'commander'
import type { RangeOptions } from '../db.js'
import { withFile } from './files.js'
import { READ_ENCODINGS, encodingOption, modeOption, wholeNumber, type FileOptions } from './options.js'
import { keyText, readValue, showValue } from './values.js'

/** `daxkv scan <file>`: entries in key order, within bounds. */
export function addScanCommand(cli: Command): void {
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
    .action(async (file: string, options: FileOptions & RangeOptions & { json?: boolean }) => {
      const range: RangeOptions = {}
      for (const bound of ['gt', 'gte', 'lt', 'lte'] as const) if (options[bound] !== undefined) range[bound] = options[bound]
      if (options.limit !== undefined) range.limit = options.limit
      if (options.reverse === true) range.reverse = true
      await withFile(file, options, (f) => {
        for (const key of f.db.keys(range)) {
          const value = readValue(f, key)
          const shown = showValue(value, f.encoding, false)
          if (options.json !== true) console.log(`${keyText(key)}\t${shown}`)
          else {
            // JSON and MessagePack values are already JSON text; strings and hex become JSON strings.
            const json = f.encoding === 'json' || f.encoding === 'msgpack' ? shown : JSON.stringify(shown)
            console.log(`{"key":${JSON.stringify(keyText(key))},"value":${json}}`)
          }
        }
      })
    })
}
