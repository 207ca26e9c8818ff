/**
 * daxkv: an embedded, persistent, crash-safe key-value store on a daxfile.
 *
 * @packageDocumentation
 */
export { open, openOnDomain, DaxKV } from './db.js'
export type { OpenOptions, BatchOperation, RangeOptions, Stats } from './db.js'
export { DaxKVError, ErrorCode } from './errors.js'
export type { Key, KeyEncoding, ValueEncoding } from './encoding.js'
export type { RecoveryReport, TornTail } from './engine/recovery.js'
export type { VerifyReport } from './engine/log-store.js'
export type { BatchEnd } from './format/batch.js'
export type { DomainKind, PersistenceDomain } from './platform/domain.js'
export { SimulatedDomain } from './platform/simulated-domain.js'
export type { SimulatedGranularity, PendingUnit } from './platform/simulated-domain.js'
export type { ModeRequest } from './platform/daxfile.js'
