#include "flush.h"

#include <cpuid.h>
#include <immintrin.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if !defined(__x86_64__)
#error "daxkv's native addon supports x86-64 only (clwb/clflushopt/clflush, sfence)."
#endif

namespace {

using FlushLines = void (*)(uintptr_t start, uintptr_t end, uintptr_t step);

// clwb and clflushopt get per-function target attributes, so this file compiles
// without -march flags and a CPU only ever runs an instruction it reported.
// clflush is part of the x86-64 baseline and needs none.
__attribute__((target("clwb"))) void flush_clwb(uintptr_t start, uintptr_t end,
                                                uintptr_t step) {
  for (uintptr_t line = start; line < end; line += step) {
    _mm_clwb(reinterpret_cast<void*>(line));
  }
}

__attribute__((target("clflushopt"))) void flush_clflushopt(uintptr_t start,
                                                            uintptr_t end,
                                                            uintptr_t step) {
  for (uintptr_t line = start; line < end; line += step) {
    _mm_clflushopt(reinterpret_cast<void*>(line));
  }
}

void flush_clflush(uintptr_t start, uintptr_t end, uintptr_t step) {
  for (uintptr_t line = start; line < end; line += step) {
    _mm_clflush(reinterpret_cast<void*>(line));
  }
}

struct Flusher {
  const char* name;
  FlushLines lines;
  uintptr_t line_size;
  const char* error;
};

// The error messages are static strings because they outlive this call.
Flusher select_flusher() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool leaf1 = __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  const bool has_clflush = leaf1 && (edx & (1u << 19));
  // CPUID leaf 1 EBX[15:8] is the clflush line size in 8-byte units. It is the
  // size these instructions act on, so prefer it over the L1 data line size.
  uintptr_t line_size = has_clflush ? ((ebx >> 8) & 0xff) * 8 : 0;
  if (line_size == 0) {
    const long l1 = sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
    line_size = l1 > 0 ? static_cast<uintptr_t>(l1) : 64;
  }
  // A line size that is not a power of two would break the align-down below.
  if ((line_size & (line_size - 1)) != 0) line_size = 64;

  eax = ebx = ecx = edx = 0;
  const bool leaf7 = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
  const bool has_clwb = leaf7 && (ebx & (1u << 24));
  const bool has_clflushopt = leaf7 && (ebx & (1u << 23));

  const char* forced = std::getenv("DAXKV_FLUSH");
  if (forced != nullptr && forced[0] != '\0') {
    if (std::strcmp(forced, "clwb") == 0) {
      if (has_clwb) return {"clwb", flush_clwb, line_size, nullptr};
      return {nullptr, nullptr, 0, "DAXKV_FLUSH=clwb, but this CPU does not support clwb"};
    }
    if (std::strcmp(forced, "clflushopt") == 0) {
      if (has_clflushopt) return {"clflushopt", flush_clflushopt, line_size, nullptr};
      return {nullptr, nullptr, 0,
              "DAXKV_FLUSH=clflushopt, but this CPU does not support clflushopt"};
    }
    if (std::strcmp(forced, "clflush") == 0) {
      if (has_clflush) return {"clflush", flush_clflush, line_size, nullptr};
      return {nullptr, nullptr, 0, "DAXKV_FLUSH=clflush, but this CPU does not support clflush"};
    }
    return {nullptr, nullptr, 0,
            "DAXKV_FLUSH must be one of clwb, clflushopt, clflush (or unset)"};
  }
  // clwb keeps the line in cache after writing it back; clflushopt evicts it
  // but is weakly ordered, so many can be in flight; clflush is serialized.
  if (has_clwb) return {"clwb", flush_clwb, line_size, nullptr};
  if (has_clflushopt) return {"clflushopt", flush_clflushopt, line_size, nullptr};
  if (has_clflush) return {"clflush", flush_clflush, line_size, nullptr};
  return {nullptr, nullptr, 0, "this CPU reports none of clwb, clflushopt, clflush"};
}

// The choice is made in a thread-safe static initializer, so Node worker
// threads that load the addon concurrently all see one consistent result.
const Flusher& flusher() {
  static const Flusher once = select_flusher();
  return once;
}

}  // namespace

const char* flush_init() { return flusher().error; }

const char* flush_instruction() { return flusher().name; }

size_t flush_line_size() { return flusher().line_size; }

void flush(const void* addr, size_t length) {
  if (length == 0) return;
  const Flusher& f = flusher();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(addr);
  const uintptr_t start = begin & ~(f.line_size - 1);
  f.lines(start, begin + length, f.line_size);
}

void drain() { _mm_sfence(); }
