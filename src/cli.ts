#!/usr/bin/env node
/**
 * The `daxkv` command: inspect and edit a daxfile, and run the crash
 * campaigns against the user's own filesystem. Each command is a file in
 * cli/. Exit codes: 0 success, 1 an operating error or a failed check
 * (verify, crash-test), 2 a usage error.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError } from 'commander'
import { addCrashTestCommand } from './cli/crash-test.js'
import { addDelCommand } from './cli/del.js'
import { addGetCommand } from './cli/get.js'
import { addInfoCommand } from './cli/info.js'
import { UsageError } from './cli/options.js'
import { addPutCommand } from './cli/put.js'
import { addScanCommand } from './cli/scan.js'
import { addVerifyCommand } from './cli/verify.js'
import { DaxKVError } from './errors.js'

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
  for (const add of [addInfoCommand, addVerifyCommand, addGetCommand, addPutCommand, addDelCommand, addScanCommand, addCrashTestCommand]) add(cli)
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
