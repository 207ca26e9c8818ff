/**
 * Setup file of every test file: a failing test's error names the run's
 * seed, so whatever in it depended on the seed can be replayed exactly
 * with DAXKV_TEST_SEED, even where an assertion's own message forgot to.
 */
import { beforeEach } from 'vitest'
import { seedNote } from './helpers.js'

beforeEach(({ onTestFailed }) => {
  onTestFailed(({ task }) => {
    for (const error of task.result?.errors ?? []) {
      if (!error.message.includes('DAXKV_TEST_SEED=')) error.message = `${error.message}\n[${seedNote()}]`
    }
  })
})
