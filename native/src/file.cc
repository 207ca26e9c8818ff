#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>

#include <algorithm>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cstring>

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

int file_statx_dax(const char* path, int* dax) {
  struct statx stx;
  // stx_attributes and its mask are filled whatever the request mask says.
  if (statx(AT_FDCWD, path, AT_STATX_SYNC_AS_STAT, 0, &stx) != 0) {
    if (errno == ENOSYS) {
      *dax = -1;
      return 0;
    }
    return errno;
  }
  if ((stx.stx_attributes_mask & STATX_ATTR_DAX) == 0) {
    *dax = -1;
  } else {
    *dax = (stx.stx_attributes & STATX_ATTR_DAX) != 0 ? 1 : 0;
  }
  return 0;
}

int file_fallocate(int fd, int64_t offset, int64_t length) {
  // Allocation can be interrupted by a signal before it does anything; retry.
  while (fallocate(fd, 0, offset, length) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

int file_fiemap(int fd, uint64_t limit, FiemapReport* report) {
  *report = FiemapReport{};
  report->supported = true;

  // One call returns at most kExtentsMax extents; the loop asks again from the
  // end of the last one until the kernel flags an extent as the last.
  constexpr unsigned kExtentsMax = 128;
  alignas(struct fiemap) unsigned char
      storage[sizeof(struct fiemap) + kExtentsMax * sizeof(struct fiemap_extent)];
  auto* map = reinterpret_cast<struct fiemap*>(storage);

  uint64_t start = 0;
  while (start < limit) {
    std::memset(storage, 0, sizeof storage);
    map->fm_start = start;
    map->fm_length = limit - start;
    // SYNC writes back dirty pages first, so delayed allocations become real
    // extents and the report describes what is on disk.
    map->fm_flags = FIEMAP_FLAG_SYNC;
    map->fm_extent_count = kExtentsMax;
    if (ioctl(fd, FS_IOC_FIEMAP, map) != 0) {
      if (errno == EINTR) continue;
      if (errno == EOPNOTSUPP || errno == ENOTTY) {
        *report = FiemapReport{};
        return 0;
      }
      return errno;
    }
    if (map->fm_mapped_extents == 0) return 0;  // No extents at or after start.

    const struct fiemap_extent* last = nullptr;
    for (unsigned i = 0; i < map->fm_mapped_extents; i++) {
      const struct fiemap_extent& e = map->fm_extents[i];
      report->extents++;
      const uint64_t end = std::min<uint64_t>(e.fe_logical + e.fe_length, limit);
      if (end > e.fe_logical) report->mapped_bytes += end - e.fe_logical;
      if (e.fe_flags & FIEMAP_EXTENT_SHARED) report->shared++;
      if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) report->unwritten++;
      if (e.fe_flags & FIEMAP_EXTENT_DELALLOC) report->delalloc++;
      if (e.fe_flags & FIEMAP_EXTENT_UNKNOWN) report->unknown++;
      if (e.fe_flags & FIEMAP_EXTENT_DATA_INLINE) report->inline_data++;
      last = &e;
    }
    if (last->fe_flags & FIEMAP_EXTENT_LAST) return 0;
    const uint64_t next = last->fe_logical + last->fe_length;
    // A filesystem that does not move forward would loop forever; report it
    // as an I/O error instead.
    if (next <= start) return EIO;
    start = next;
  }
  return 0;
}

int file_flock(int fd, LockOp op, bool* acquired) {
  int how = LOCK_UN;
  if (op == LockOp::kExclusive) how = LOCK_EX | LOCK_NB;
  if (op == LockOp::kShared) how = LOCK_SH | LOCK_NB;
  while (flock(fd, how) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      *acquired = false;
      return 0;
    }
    return errno;
  }
  *acquired = true;
  return 0;
}

int file_link_count(int fd, uint64_t* links) {
  struct stat st;
  if (fstat(fd, &st) != 0) return errno;
  *links = static_cast<uint64_t>(st.st_nlink);
  return 0;
}
