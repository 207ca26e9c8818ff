import fs from 'node:fs'
import type { Command } from 'commander'
import { DEFAULT_VALUE_ENCODING, valueCodec } from '../encoding.js'
import { withFile, type CreateOptions } from './files.js'
import { UsageError, WRITE_ENCODINGS, encodingOption, modeOption, type FileOptions } from './options.js'
import { parseValue } from './values.js'

/** `daxkv put <file> <key> <value>`: store a value (`--create` makes a new daxfile, recording its encoding). */
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
    .action(async (file: string, key: string, text: string, options: FileOptions & CreateOptions) => {
      // A value that is not JSON is refused before anything is opened or created, when the encoding is known without the file.
      const known = options.encoding ?? (options.create === true && !fs.existsSync(file) ? DEFAULT_VALUE_ENCODING : undefined)
      if (known !== undefined) parseValue(text, known)
      await withFile(file, options, (f) => {
        if (f.encoding === 'binary') throw new UsageError(`${file} records binary values, which daxkv put cannot type; --encoding utf8 stores the text's bytes`)
        // The command writes through a raw view, which would store any encoding: hold it to the file's, as open() does.
        if (f.recorded !== undefined && f.recorded !== 'binary' && f.recorded !== f.encoding) {
          throw new UsageError(
            `${file} records ${f.recorded} values; a value stored as ${f.encoding} would not read back (DAXKV_ENCODING). Use --encoding ${f.recorded}, or omit --encoding`,
          )
        }
        return f.db.put(key, Buffer.from(valueCodec(f.encoding).encode(parseValue(text, f.encoding))))
      })
    })
}
