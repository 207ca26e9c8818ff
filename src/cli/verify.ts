import type { Command } from 'commander'
import { withFile } from './files.js'
import { READ_ENCODINGS, encodingOption, modeOption, type FileOptions } from './options.js'
import { count } from './words.js'

/** `daxkv verify <file>`: open (which recovers) and run the full check; exit 1 with the problems found. */
export function addVerifyCommand(cli: Command): void {
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
}
