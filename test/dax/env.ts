import os from 'node:os'

/**
 * Where the DAX suite runs. `DAXKV_DAX_DIR` is a directory on an fs-dax
 * mount (ext4 or xfs mounted `-o dax=always` on pmem); without it every
 * test is skipped. `test/dax/run.sh` sets it inside the emulated guest.
 */
export const daxDir: string | undefined = process.env.DAXKV_DAX_DIR || undefined

/** A directory on storage that is not DAX: `DAXKV_NODAX_DIR`, the guest's `NODAX_DIR`, or the temp dir. */
export const nodaxDir: string = process.env.DAXKV_NODAX_DIR || process.env.NODAX_DIR || os.tmpdir()

/**
 * Which run this is. `write` leaves the data set on the DAX mount, `reopen`
 * (the next boot of the guest, with the pmem contents kept) checks it;
 * `both` does one after the other in this process.
 */
export type Phase = 'write' | 'reopen' | 'both'

function phaseFromEnv(): Phase {
  const value = process.env.DAXKV_DAX_PHASE ?? 'both'
  if (value !== 'write' && value !== 'reopen' && value !== 'both') {
    throw new TypeError(`DAXKV_DAX_PHASE must be write, reopen or both, got ${JSON.stringify(value)}`)
  }
  return value
}

export const phase: Phase = phaseFromEnv()

export const SKIP_MESSAGE =
  'DAXKV_DAX_DIR is not set: the DAX tests need a directory on an fs-dax mount (npm run test:dax runs them in an emulated guest)'

if (daxDir === undefined) console.warn(`test/dax: skipped. ${SKIP_MESSAGE}`)
