import type { Command } from 'commander'
import { withFile } from './files.js'
import { modeOption, type FileOptions } from './options.js'

/** `daxkv del <file> <key>`: remove a key. */
export function addDelCommand(cli: Command): void {
  cli
    .command('del')
    .description('remove a key (removing an absent key is not an error)')
    .argument('<file>')
    .argument('<key>')
    .addOption(modeOption())
    .action(async (file: string, key: string, options: FileOptions) => {
      await withFile(file, options, (f) => f.db.del(key))
    })
}
