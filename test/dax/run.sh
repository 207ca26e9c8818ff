#!/usr/bin/env bash
# Runs the DAX suite (test/dax/*.test.ts) on a real fs-dax mount.
#
# With DAXKV_DAX_DIR set (a directory on ext4/xfs mounted -o dax=always on
# persistent memory), the suite runs here, in two processes: the write phase,
# then the reopen phase.
#
# Without it, the suite runs in a QEMU guest with an emulated NVDIMM, booted
# by daxvm.sh from the tools folder beside the repository
# (../shared/tools/daxvm/daxvm.sh). For each filesystem (DAXKV_DAX_FS,
# default "ext4 xfs") the guest boots twice: first on a fresh filesystem for
# the write phase, then with the pmem contents kept (--keep) for the reopen
# phase, which proves the data survives a reboot.
#
# Extra arguments go to vitest (e.g. -t 'reopen').
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
config=test/dax/vitest.config.ts
vitest=node_modules/.bin/vitest

if [ ! -x "$vitest" ] || [ ! -e native/build/Release/daxkv.node ]; then
  echo "test:dax: run 'npm ci' first (vitest and the native addon are missing)" >&2
  exit 2
fi

if [ -n "${DAXKV_DAX_DIR:-}" ]; then
  echo "== test:dax on $DAXKV_DAX_DIR: write phase"
  DAXKV_DAX_PHASE=write "$vitest" run --config "$config" "$@"
  echo "== test:dax on $DAXKV_DAX_DIR: reopen phase (new process)"
  DAXKV_DAX_PHASE=reopen "$vitest" run --config "$config" "$@"
  exit 0
fi

daxvm=$(cd "$root/.." && pwd)/shared/tools/daxvm/daxvm.sh
if [ ! -f "$daxvm" ]; then
  cat >&2 <<MSG
test:dax: no persistent memory to test on.
  Either set DAXKV_DAX_DIR to a directory on an fs-dax mount (ext4 or xfs
  mounted -o dax=always on pmem), or provide the emulator script at
  $daxvm
MSG
  exit 2
fi

# Inside the guest: DAX_DIR is the fs-dax mount, NODAX_DIR an ext4 on a ram disk.
guest_vitest='DAXKV_DAX_DIR=$DAX_DIR exec '"$vitest"' run --config '"$config"' "$@"'

for fs in ${DAXKV_DAX_FS:-ext4 xfs}; do
  echo "== test:dax in a QEMU guest, $fs -o dax=always: write phase (fresh filesystem)"
  bash "$daxvm" --fs "$fs" --timeout 1800 -e DAXKV_DAX_PHASE=write "$root" -- sh -c "$guest_vitest" sh "$@"
  echo "== test:dax in a QEMU guest, $fs -o dax=always: reopen phase (next boot, pmem kept)"
  bash "$daxvm" --fs "$fs" --timeout 1800 --keep -e DAXKV_DAX_PHASE=reopen "$root" -- sh -c "$guest_vitest" sh "$@"
done
echo "== test:dax: both phases passed on ${DAXKV_DAX_FS:-ext4 xfs}"
