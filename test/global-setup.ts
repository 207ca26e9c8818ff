import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Builds dist/ once before the suite: the example apps and the child
 * processes of the lock and kill tests import the built package, and a stale
 * dist/ would test old code.
 */
export default function setup(): void {
  const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  })
}
