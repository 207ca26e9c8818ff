import { DaxKV } from '../db.js'
import { LogStore } from '../engine/log-store.js'
import { formatSuperblocks } from '../engine/superblock-io.js'
import type { CommitProtocol } from '../engine/writer.js'
import { isZero } from '../format/batch.js'
import { SUPERBLOCK_AREA_BYTES } from '../format/constants.js'
import { assert } from '../errors.js'
import { checkOptions, geometryOf, storeOptions, type OpenOptions } from '../options.js'
import type { PersistenceDomain } from '../platform/domain.js'
import { encodingCodesFor, encodingsAtOpen, type Encodings } from '../recorded-encodings.js'

/** What only a test may change about the engine. */
export interface EngineOverrides {
  /** A commit protocol to use instead of the real one (broken-commit.ts). */
  readonly commit?: CommitProtocol
}

/**
 * Opens a database on a persistence domain the caller provides (the
 * simulated domain of the crash tests). A domain whose superblock area is
 * all zero is formatted first, with `options.size` ignored in favour of the
 * domain's size. Not part of the package's entry point: the crash
 * campaigns and the tests import it from here.
 */
export function openOnDomain<V = any>(domain: PersistenceDomain, options: OpenOptions = {}, label = '(simulated)', overrides: EngineOverrides = {}): DaxKV<V> {
  checkOptions(options)
  if (isZero(domain.view(0, SUPERBLOCK_AREA_BYTES), 0, SUPERBLOCK_AREA_BYTES)) {
    formatSuperblocks(domain, geometryOf(options, domain.size), encodingCodesFor(options))
  }
  let encodings: Encodings | undefined
  const store = LogStore.open(domain, label, {
    ...storeOptions(options),
    beforeRecovery: (superblock) => {
      encodings = encodingsAtOpen(superblock, options, label)
    },
    ...(overrides.commit === undefined ? {} : { commit: overrides.commit }),
  })
  assert(encodings !== undefined, 'the store was opened without its encodings decided')
  return new DaxKV<V>(store, undefined, label, options, encodings)
}
