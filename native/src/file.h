// Thin wrappers over the Linux file calls that Node's fs module lacks. Each
// returns 0 on success or an errno value; none of them knows about N-API.
#pragma once

#include <cstdint>

// Sets *dax to 1 or 0 from STATX_ATTR_DAX, or to -1 when the kernel or the
// filesystem cannot report it.
int file_statx_dax(const char* path, int* dax);

// fallocate(fd, 0, offset, length): allocates blocks and grows the file.
int file_fallocate(int fd, int64_t offset, int64_t length);

struct FiemapReport {
  bool supported;
  uint64_t extents;
  uint64_t mapped_bytes;
  uint64_t shared;
  uint64_t unwritten;
  uint64_t delalloc;
  uint64_t unknown;
  uint64_t inline_data;
};

// Maps the file's bytes [0, limit) with FIEMAP_FLAG_SYNC and counts the
// extents that overlap them by flag; mapped_bytes counts only bytes below
// limit. A filesystem without FIEMAP (tmpfs) gives supported = false and
// returns 0.
int file_fiemap(int fd, uint64_t limit, FiemapReport* report);

enum class LockOp { kExclusive, kShared, kUnlock };

// Non-blocking flock(). Sets *acquired to false when another open file
// description holds a conflicting lock (EWOULDBLOCK), which is not an error.
int file_flock(int fd, LockOp op, bool* acquired);

// fstat()'s link count of the open file: 0 once every name of it was
// removed (the file was deleted, or renamed over, while open).
int file_link_count(int fd, uint64_t* links);
