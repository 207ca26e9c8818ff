/**
 * The layering of src/ (README, "Reading the source"): imports point
 * downwards only, and the two lowest layers, format/ and platform/, do not
 * import each other. Read from the import statements of every source file.
 */
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

const SRC = path.resolve(import.meta.dirname, '../src')
/** Lines a source file may have before it should be split (README, house style). */
const FILE_LINES_MAX = 400

/** The layer of a file under src/, by its path relative to src/. */
function layerOf(file: string): string {
  const top = file.split('/')[0]!
  if (['format', 'platform', 'engine', 'crash', 'cli'].includes(top)) return top
  if (file === 'cli.ts') return 'cli'
  if (['errors.ts', 'size.ts'].includes(file)) return 'base'
  return 'api'
}

/** Which layers each layer may import from (its own included). */
const ALLOWED: Record<string, readonly string[]> = {
  base: ['base'],
  format: ['format', 'base'],
  platform: ['platform', 'base'],
  engine: ['engine', 'format', 'platform', 'base'],
  api: ['api', 'engine', 'format', 'platform', 'base'],
  crash: ['crash', 'api', 'engine', 'format', 'platform', 'base'],
  cli: ['cli', 'crash', 'api', 'engine', 'format', 'platform', 'base'],
}

function sourceFiles(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(full)
    return entry.name.endsWith('.ts') ? [path.relative(SRC, full)] : []
  })
}

function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(SRC, file), 'utf8')
  const out: string[] = []
  for (const match of text.matchAll(/^(?:import|export)[^'"]*?from\s+'(\.[^']+)'|^import\s+'(\.[^']+)'/gm)) {
    const target = match[1] ?? match[2]!
    out.push(path.relative(SRC, path.resolve(path.dirname(path.join(SRC, file)), target)).replace(/\.js$/, '.ts'))
  }
  return out
}

describe('source layout', () => {
  const files = sourceFiles()

  it('finds the source files and their imports', () => {
    expect(files.length).toBeGreaterThan(40)
    expect(importsOf('engine/log-store.ts')).toContain('engine/writer.ts')
  })

  it('every import points to the same layer or one below it; format/ and platform/ do not import each other', () => {
    const violations: string[] = []
    for (const file of files) {
      const layer = layerOf(file)
      for (const target of importsOf(file)) {
        if (!ALLOWED[layer]!.includes(layerOf(target))) violations.push(`${file} (${layer}) imports ${target} (${layerOf(target)})`)
      }
    }
    expect(violations).toEqual([])
  })

  it(`no source file is longer than ${FILE_LINES_MAX} lines`, () => {
    const long = files
      .map((file) => ({ file, lines: fs.readFileSync(path.join(SRC, file), 'utf8').split('\n').length - 1 }))
      .filter(({ lines }) => lines > FILE_LINES_MAX)
    expect(long).toEqual([])
  })
})
