import type { Command } from 'commander'
import { withFile } from './files.js'
import { READ_ENCODINGS, encodingOption, modeOption, type FileOptions } from './options.js'
import { readValue, showValue } from './values.js'

/** `daxkv get <file> <key>`: print a value; exit 1 when the key is absent. */
export function addGetCommand(cli: Command): void {
  cli
    .command('get')
    .description('print the value of a key')
    .argument('<file>')
    .argument('<key>')
    .addOption(encodingOption(READ_ENCODINGS))
    .addOption(modeOption())
    .action(async (file: string, key: string, options: FileOptions) => {
      const found = await withFile(file, options, (f) => (f.db.has(key) ? { value: readValue(f, key), encoding: f.encoding } : undefined))
      if (found === undefined) {
        console.error(`daxkv: no key ${JSON.stringify(key)} in ${file}`)
        process.exitCode = 1
        return
      }
      console.log(showValue(found.value, found.encoding, true))
    })
}
