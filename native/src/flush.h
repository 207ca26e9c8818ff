// Cache-line write-back (flush) and store fence (drain), in the PMDK sense:
// flush starts writing dirty lines back to the persistence domain, drain waits
// until every earlier flush has completed, and persist is both.
#pragma once

#include <cstddef>

// Picks the flush instruction once per process: clwb, else clflushopt, else
// clflush, unless the environment variable DAXKV_FLUSH forces one. Returns
// nullptr on success, or a message if the forced choice is unknown or the CPU
// lacks it. Safe to call from several threads; later calls return the same.
const char* flush_init();

// The chosen instruction's name: "clwb", "clflushopt" or "clflush".
const char* flush_instruction();

// The cache line size that flush() steps by.
size_t flush_line_size();

// Writes back every cache line that overlaps [addr, addr + length). No fence.
void flush(const void* addr, size_t length);

// Store fence: orders and completes earlier flushes before later stores.
void drain();
