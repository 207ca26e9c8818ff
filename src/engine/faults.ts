/**
 * Test-only switches that break the commit protocol on purpose. The crash
 * tests turn each on and must then report a violation: a crash tester that
 * passes a broken protocol proves nothing. Nothing outside the crash tests
 * sets them; they are all off by default.
 */
export interface CommitFaults {
  /** Skip step 2's drain: the marker may reach the media before the batch's data. */
  skipDataDrain: boolean
  /** Write and persist the marker first, then the batch's data. */
  markerBeforeData: boolean
  /** In step 2, flush one cache line too few at the end of the batch. */
  flushOneLineShort: boolean
  /** Skip step 4's drain: the write is acknowledged before its marker is durable. */
  skipMarkerDrain: boolean
}

export const commitFaults: CommitFaults = {
  skipDataDrain: false,
  markerBeforeData: false,
  flushOneLineShort: false,
  skipMarkerDrain: false,
}

export function resetCommitFaults(): void {
  commitFaults.skipDataDrain = false
  commitFaults.markerBeforeData = false
  commitFaults.flushOneLineShort = false
  commitFaults.skipMarkerDrain = false
}
