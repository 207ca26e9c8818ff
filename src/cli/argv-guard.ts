/**
 * The command line of the `daxkv` process, taken before any other module
 * loads. mmap-io locates its addon with node-pre-gyp, which parses
 * `process.argv` as its own options when it is first required: our
 * `--dir <dir>` reads to it as `--directory`, and it then looks for its
 * package.json under that directory and fails. So the CLI keeps its
 * arguments here and leaves only the program and script in process.argv.
 * This module must be the first import of cli.ts.
 */
export const cliArgv: readonly string[] = process.argv.slice()

process.argv = process.argv.slice(0, 2)
