import type { Command } from 'commander'
import { withFile } from './files.js'
import { READ_ENCODINGS, encodingOption, modeOption, type FileOptions } from './options.js'
import { undecodableValues } from './values.js'
import { count } from './words.js'

/** `daxkv verify <file>`: open (which recovers) and run the full check; exit 1 with the problems found. */
export function addVerifyCommand(cli: Command): void {
  cli
    .command('verify')
    .description('open the daxfile (which recovers it) and check all of it; exit 1 with the problems found')
    .argument('<file>')
    .addOption(encodingOption(READ_ENCODINGS, 'binary: values are not decoded'))
    .addOption(modeOption())
    .action(async (file: string, options: FileOptions) => {
      const report = await withFile(file, options, (f) => {
        // The file is open as a raw view, whose verify() decodes nothing: the values are checked here, with --encoding.
        const found = f.db.verify()
        const problems = options.encoding === undefined || options.encoding === 'binary' ? [] : undecodableValues(f.db, options.encoding)
        return { ...found, ok: found.ok && problems.length === 0, problems: [...found.problems, ...problems] }
      })
      if (report.ok) {
        console.log(`ok: ${count(report.batches, 'batch', 'batches')}, ${count(report.records, 'record')}, ${count(report.keys, 'key')}`)
        return
      }
      console.error(`${file}: ${report.problems.length} problem(s)`)
      for (const problem of report.problems) console.error(`  ${problem}`)
      process.exitCode = 1
    })
}
