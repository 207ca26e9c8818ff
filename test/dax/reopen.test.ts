import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { open, type DaxKV } from '../../src/index.js'
import { checkDataset, writeDataset, type DatasetValue } from './dataset.js'
import { daxDir, phase, SKIP_MESSAGE } from './env.js'

// The reopen-across-boots proof. The write phase creates a daxfile on the
// DAX mount, writes the known data set and checks it, including after a
// reopen in the same boot; it records what recovery reported then. The
// reopen phase runs in the next boot of the guest (pmem contents kept) and
// checks that the same file opens in dax mode, recovery reports the same
// log, and every value is there.

const file = daxDir === undefined ? '' : path.join(daxDir, 'daxkv-reopen.dax')
/** What the write phase saw, for the reopen phase; it lives on the DAX mount beside the daxfile. */
const expectationFile = `${file}.expect.json`

interface Expectation {
  readonly batches: number
  readonly records: number
  readonly segmentsInUse: number
  readonly keys: number
}

/** Opens the store; the log is replayed (the index checkpoint is not read) unless `checkpoint`. */
async function reopen(checkpoint = false): Promise<DaxKV<DatasetValue>> {
  const db = await open<DatasetValue>(file, { create: false, mode: 'dax', indexCheckpoint: checkpoint })
  expect(db.mode).toBe('dax')
  expect(db.stats().statxDax).toBe(true)
  return db
}

function expectRecovery(db: DaxKV<DatasetValue>, expected: Expectation): void {
  expect(db.recovery).toMatchObject({
    batches: expected.batches,
    records: expected.records,
    segmentsInUse: expected.segmentsInUse,
    tornTail: undefined,
  })
  expect(db.count).toBe(expected.keys)
}

describe.skipIf(daxDir === undefined)(`a daxfile reopened across boots (${daxDir ?? SKIP_MESSAGE})`, () => {
  it.runIf(phase !== 'reopen')('write phase: the data set is written in dax mode and reads back after reopen', async () => {
    fs.rmSync(file, { force: true })
    fs.rmSync(expectationFile, { force: true })
    const db = await open<DatasetValue>(file, { size: '16MiB', mode: 'dax' })
    expect(db.mode).toBe('dax')
    expect(db.recovery.batches).toBe(0)
    await writeDataset(db)
    checkDataset(db)
    const stats = db.stats()
    const expected: Expectation = {
      batches: stats.batchesWritten,
      records: stats.recordsWritten,
      segmentsInUse: stats.segmentsInUse,
      keys: stats.keys,
    }
    await db.close()

    const again = await reopen()
    try {
      expectRecovery(again, expected)
      checkDataset(again)
    } finally {
      await again.close()
    }
    fs.writeFileSync(expectationFile, JSON.stringify(expected))
    console.log(`write phase: ${expected.keys} keys in ${expected.batches} batches (${expected.records} records) left at ${file}`)
  })

  it.runIf(phase !== 'write')('reopen phase: every value is there after the reboot, and the store takes writes', async () => {
    expect(fs.existsSync(expectationFile), `${expectationFile} is missing: run the write phase first`).toBe(true)
    const expected = JSON.parse(fs.readFileSync(expectationFile, 'utf8')) as Expectation
    const db = await reopen()
    let after: Expectation
    try {
      expectRecovery(db, expected)
      checkDataset(db)
      console.log(`reopen phase: recovery ${JSON.stringify(db.recovery)}`)
      // The reopened store must accept writes. Put and delete one key, so the
      // data set is unchanged and the phase can run again.
      await db.put('after-reboot', 'yes')
      expect(db.get('after-reboot')).toBe('yes')
      await db.del('after-reboot')
      const stats = db.stats()
      after = { ...expected, batches: expected.batches + stats.batchesWritten, records: expected.records + stats.recordsWritten, segmentsInUse: stats.segmentsInUse }
    } finally {
      await db.close()
    }

    const again = await reopen()
    try {
      expectRecovery(again, after)
      checkDataset(again)
    } finally {
      await again.close()
    }
    // An open that keeps an index checkpoint writes one at its clean close; the next open loads it.
    await (await reopen(true)).close()
    const fromCheckpoint = await reopen(true)
    try {
      expect(fromCheckpoint.recovery.source).toBe('checkpoint')
      expect(fromCheckpoint.count).toBe(after.keys)
      checkDataset(fromCheckpoint)
      expect(fromCheckpoint.verify().problems).toEqual([])
    } finally {
      await fromCheckpoint.close()
    }
    fs.writeFileSync(expectationFile, JSON.stringify(after))
  })
})
