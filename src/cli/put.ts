import type { Command } from 'commander'
import type { ValueEncoding } from '../encoding.js'
import { withFile, type CreateOptions } from './files.js'
import { WRITE_ENCODINGS, encodingOption, modeOption, type FileOptions } from './options.js'
import { parseValue } from './values.js'

/** `daxkv put <file> <key> <value>`: store a value (`--create` makes a new daxfile). */
export function addPutCommand(cli: Command): void {
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
    .action(async (file: string, key: string, text: string, options: FileOptions & CreateOptions & { encoding: ValueEncoding }) => {
      const value = parseValue(text, options.encoding)
      await withFile(file, options, (db) => db.put(key, value))
    })
}
