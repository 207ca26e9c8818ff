import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// The DAX suite: only test/dax/*.test.ts, which the root config excludes.
// Under emulation (test/dax/run.sh boots a QEMU guest) code runs several
// times slower than on the host, hence the generous timeouts.
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/dax/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // The phases share files on the DAX mount: run the files one at a time.
    fileParallelism: false,
  },
})
