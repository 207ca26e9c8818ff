/**
 * daxkv: an embedded, persistent, crash-safe key-value store on a daxfile.
 *
 * @packageDocumentation
 */
export { open } from './open.js'
export { DaxKV } from './db.js'
export type { BatchOperation, RangeOptions } from './db.js'
export type { OpenOptions } from './options.js'
export type { Stats } from './stats.js'
export { DaxKVError, ErrorCode } from './errors.js'
export type { Key, KeyEncoding, ValueEncoding } from './encoding.js'
export type { RecoveryReport, TornTail } from './engine/recovery.js'
export type { VerifyReport } from './engine/verify.js'
export type { BatchEnd } from './format/batch.js'
export type { DomainKind } from './platform/domain.js'
export type { ModeRequest } from './platform/daxfile.js'
