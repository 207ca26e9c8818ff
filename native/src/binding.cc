// N-API glue: validates arguments, converts values, and turns errno values
// into JS errors. The mechanism lives in flush.cc, crc32c.cc and file.cc.
#include <errno.h>
#include <node_api.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "crc32c.h"
#include "file.h"
#include "flush.h"

namespace {

// Largest integer a JS number holds exactly (Number.MAX_SAFE_INTEGER).
constexpr double kMaxSafeInteger = 9007199254740991.0;

// When a napi_* call fails, make sure an exception is pending and return
// nullptr, which hands control back to JS to throw it.
#define NAPI_OK(call)                                   \
  do {                                                  \
    if ((call) != napi_ok) return fail_napi(env);       \
  } while (0)

napi_value fail_napi(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info* info = nullptr;
    napi_get_last_error_info(env, &info);
    const char* message = info != nullptr && info->error_message != nullptr
                              ? info->error_message
                              : "N-API call failed";
    napi_throw_error(env, nullptr, message);
  }
  return nullptr;
}

// Argument mistakes are plain TypeError/RangeError without a code; only
// operating errors (errno) carry one. Both return nullptr for the caller to
// return to JS.
napi_value throw_type(napi_env env, const char* fn, const char* what) {
  char message[160];
  std::snprintf(message, sizeof message, "%s: %s", fn, what);
  napi_throw_type_error(env, nullptr, message);
  return nullptr;
}

napi_value throw_range(napi_env env, const char* fn, const char* what) {
  char message[160];
  std::snprintf(message, sizeof message, "%s: %s", fn, what);
  napi_throw_range_error(env, nullptr, message);
  return nullptr;
}

const char* errno_name(int err) {
  switch (err) {
#define NAME(e) \
  case e:       \
    return #e;
    NAME(EPERM) NAME(ENOENT) NAME(ESRCH) NAME(EINTR) NAME(EIO) NAME(ENXIO)
    NAME(E2BIG) NAME(EBADF) NAME(EAGAIN) NAME(ENOMEM) NAME(EACCES) NAME(EFAULT)
    NAME(EBUSY) NAME(EEXIST) NAME(EXDEV) NAME(ENODEV) NAME(ENOTDIR) NAME(EISDIR)
    NAME(EINVAL) NAME(ENFILE) NAME(EMFILE) NAME(ENOTTY) NAME(ETXTBSY) NAME(EFBIG)
    NAME(ENOSPC) NAME(ESPIPE) NAME(EROFS) NAME(EMLINK) NAME(EPIPE) NAME(ERANGE)
    NAME(ENAMETOOLONG) NAME(ENOLCK) NAME(ENOSYS) NAME(ENOTEMPTY) NAME(ELOOP)
    NAME(EOVERFLOW) NAME(EOPNOTSUPP) NAME(ETIMEDOUT) NAME(ESTALE) NAME(EDQUOT)
    NAME(ECANCELED) NAME(EUCLEAN)
#undef NAME
    default:
      return nullptr;
  }
}

// Throws an Error shaped like Node's system errors: code, errno, syscall, and
// path when there is one.
napi_value throw_errno(napi_env env, int err, const char* syscall, const char* path = nullptr) {
  char code[16];
  const char* name = errno_name(err);
  if (name == nullptr) {
    std::snprintf(code, sizeof code, "E%d", err);
    name = code;
  }
  // glibc's strerror() returns a static string for every known errno, so it is
  // safe here even with worker threads.
  char message[512];
  if (path != nullptr) {
    std::snprintf(message, sizeof message, "%s: %s (%s), '%s'", syscall, std::strerror(err), name,
                  path);
  } else {
    std::snprintf(message, sizeof message, "%s: %s (%s)", syscall, std::strerror(err), name);
  }
  napi_value code_value, message_value, error, errno_value, syscall_value;
  NAPI_OK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_value));
  NAPI_OK(napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value));
  NAPI_OK(napi_create_error(env, code_value, message_value, &error));
  NAPI_OK(napi_create_int32(env, err, &errno_value));
  NAPI_OK(napi_set_named_property(env, error, "errno", errno_value));
  NAPI_OK(napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value));
  NAPI_OK(napi_set_named_property(env, error, "syscall", syscall_value));
  if (path != nullptr) {
    napi_value path_value;
    NAPI_OK(napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &path_value));
    NAPI_OK(napi_set_named_property(env, error, "path", path_value));
  }
  napi_throw(env, error);
  return nullptr;
}

// Reads up to `count` arguments; missing ones are undefined.
bool get_args(napi_env env, napi_callback_info info, size_t count, napi_value* argv) {
  size_t argc = count;
  return napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) == napi_ok;
}

// Accepts an integer number in [0, max]; anything else is a TypeError (not a
// number) or a RangeError (fractional, negative, too large, NaN).
bool get_integer(napi_env env, napi_value value, const char* fn, const char* name, double max,
                 double* out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  char what[96];
  if (type != napi_number) {
    std::snprintf(what, sizeof what, "%s must be a number", name);
    throw_type(env, fn, what);
    return false;
  }
  double v;
  if (napi_get_value_double(env, value, &v) != napi_ok) return false;
  if (!(v >= 0 && v <= max && std::floor(v) == v)) {
    std::snprintf(what, sizeof what, "%s must be an integer in [0, %.0f], got %g", name, max, v);
    throw_range(env, fn, what);
    return false;
  }
  *out = v;
  return true;
}

bool get_fd(napi_env env, napi_value value, const char* fn, int* fd) {
  double v;
  if (!get_integer(env, value, fn, "fd", 2147483647.0, &v)) return false;
  *fd = static_cast<int>(v);
  return true;
}

// Resolves (buf, offset, length) to a byte range. napi_get_typedarray_info
// already returns the data pointer advanced by the view's byteOffset, so a
// Buffer that is a slice of a larger pool (or of an mmap) points at its own
// first byte; adding byteOffset again would be wrong.
bool get_range(napi_env env, const napi_value* argv, const char* fn, uint8_t** data,
               size_t* length) {
  bool is_typedarray = false;
  if (napi_is_typedarray(env, argv[0], &is_typedarray) != napi_ok) return false;
  napi_typedarray_type type = napi_int8_array;
  size_t byte_length = 0;
  void* base = nullptr;
  if (is_typedarray &&
      napi_get_typedarray_info(env, argv[0], &type, &byte_length, &base, nullptr, nullptr) !=
          napi_ok) {
    return false;
  }
  if (!is_typedarray || type != napi_uint8_array) {
    throw_type(env, fn, "buf must be a Uint8Array or Buffer");
    return false;
  }
  double offset, count;
  if (!get_integer(env, argv[1], fn, "offset", kMaxSafeInteger, &offset)) return false;
  if (!get_integer(env, argv[2], fn, "length", kMaxSafeInteger, &count)) return false;
  // Both are at most 2^53, so the sum is exact in a double.
  if (offset + count > static_cast<double>(byte_length)) {
    char what[128];
    std::snprintf(what, sizeof what, "offset + length (%.0f) exceeds buf.byteLength (%zu)",
                  offset + count, byte_length);
    throw_range(env, fn, what);
    return false;
  }
  *data = static_cast<uint8_t*>(base) + static_cast<size_t>(offset);
  *length = static_cast<size_t>(count);
  return true;
}

napi_value Flush(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint8_t* data;
  size_t length;
  if (!get_args(env, info, 3, argv) || !get_range(env, argv, "flush", &data, &length)) {
    return nullptr;
  }
  flush(data, length);
  return nullptr;
}

napi_value Drain(napi_env env, napi_callback_info info) {
  drain();
  return nullptr;
}

napi_value Persist(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint8_t* data;
  size_t length;
  if (!get_args(env, info, 3, argv) || !get_range(env, argv, "persist", &data, &length)) {
    return nullptr;
  }
  flush(data, length);
  drain();
  return nullptr;
}

napi_value Crc32c(napi_env env, napi_callback_info info, const char* fn,
                  uint32_t (*crc)(uint32_t, const uint8_t*, size_t)) {
  napi_value argv[4];
  uint8_t* data;
  size_t length;
  if (!get_args(env, info, 4, argv) || !get_range(env, argv, fn, &data, &length)) return nullptr;
  napi_valuetype type;
  NAPI_OK(napi_typeof(env, argv[3], &type));
  double previous = 0;
  if (type != napi_undefined &&
      !get_integer(env, argv[3], fn, "previous", 4294967295.0, &previous)) {
    return nullptr;
  }
  napi_value result;
  NAPI_OK(napi_create_uint32(env, crc(static_cast<uint32_t>(previous), data, length), &result));
  return result;
}

napi_value Crc32cChosen(napi_env env, napi_callback_info info) {
  return Crc32c(env, info, "crc32c", crc32c);
}

napi_value Crc32cSoftware(napi_env env, napi_callback_info info) {
  return Crc32c(env, info, "crc32cSoftware", crc32c_software);
}

napi_value StatxDax(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return nullptr;
  napi_valuetype type;
  NAPI_OK(napi_typeof(env, argv[0], &type));
  if (type != napi_string) return throw_type(env, "statxDax", "path must be a string");
  size_t length = 0;
  NAPI_OK(napi_get_value_string_utf8(env, argv[0], nullptr, 0, &length));
  if (length >= 4096) return throw_errno(env, ENAMETOOLONG, "statx");
  char path[4096];
  NAPI_OK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length));
  if (std::strlen(path) != length) {
    return throw_type(env, "statxDax", "path must not contain null bytes");
  }
  int dax = -1;
  if (int err = file_statx_dax(path, &dax); err != 0) return throw_errno(env, err, "statx", path);
  napi_value result;
  if (dax < 0) {
    NAPI_OK(napi_get_null(env, &result));
  } else {
    NAPI_OK(napi_get_boolean(env, dax == 1, &result));
  }
  return result;
}

napi_value Fallocate(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd;
  double offset, length;
  if (!get_args(env, info, 3, argv) || !get_fd(env, argv[0], "fallocate", &fd) ||
      !get_integer(env, argv[1], "fallocate", "offset", kMaxSafeInteger, &offset) ||
      !get_integer(env, argv[2], "fallocate", "length", kMaxSafeInteger, &length)) {
    return nullptr;
  }
  if (int err = file_fallocate(fd, static_cast<int64_t>(offset), static_cast<int64_t>(length));
      err != 0) {
    return throw_errno(env, err, "fallocate");
  }
  return nullptr;
}

napi_value Fiemap(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  if (!get_args(env, info, 2, argv) || !get_fd(env, argv[0], "fiemap", &fd)) return nullptr;
  // The optional second argument limits the check to the file's first bytes.
  double limit = 9007199254740991.0;
  napi_valuetype limit_type;
  NAPI_OK(napi_typeof(env, argv[1], &limit_type));
  if (limit_type != napi_undefined && !get_integer(env, argv[1], "fiemap", "limit", 9007199254740991.0, &limit)) {
    return nullptr;
  }
  FiemapReport report;
  if (int err = file_fiemap(fd, static_cast<uint64_t>(limit), &report); err != 0) {
    return throw_errno(env, err, "ioctl(FIEMAP)");
  }

  napi_value result, supported;
  NAPI_OK(napi_create_object(env, &result));
  NAPI_OK(napi_get_boolean(env, report.supported, &supported));
  NAPI_OK(napi_set_named_property(env, result, "supported", supported));
  const struct {
    const char* name;
    uint64_t value;
  } counts[] = {
      {"extents", report.extents},     {"mappedBytes", report.mapped_bytes},
      {"shared", report.shared},       {"unwritten", report.unwritten},
      {"delalloc", report.delalloc},   {"unknown", report.unknown},
      {"inline", report.inline_data},
  };
  for (const auto& count : counts) {
    napi_value value;
    NAPI_OK(napi_create_double(env, static_cast<double>(count.value), &value));
    NAPI_OK(napi_set_named_property(env, result, count.name, value));
  }
  return result;
}

napi_value LinkCount(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !get_fd(env, argv[0], "linkCount", &fd)) return nullptr;
  uint64_t links = 0;
  if (int err = file_link_count(fd, &links); err != 0) return throw_errno(env, err, "fstat");
  napi_value result;
  NAPI_OK(napi_create_double(env, static_cast<double>(links), &result));
  return result;
}

napi_value Flock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  if (!get_args(env, info, 2, argv) || !get_fd(env, argv[0], "flock", &fd)) return nullptr;
  const char* kOpError = "op must be 'exclusive', 'shared' or 'unlock'";
  napi_valuetype type;
  NAPI_OK(napi_typeof(env, argv[1], &type));
  if (type != napi_string) return throw_type(env, "flock", kOpError);
  char name[16];
  size_t length = 0;
  NAPI_OK(napi_get_value_string_utf8(env, argv[1], name, sizeof name, &length));
  LockOp op;
  if (std::strlen(name) != length) {
    return throw_type(env, "flock", kOpError);  // An embedded null byte.
  } else if (std::strcmp(name, "exclusive") == 0) {
    op = LockOp::kExclusive;
  } else if (std::strcmp(name, "shared") == 0) {
    op = LockOp::kShared;
  } else if (std::strcmp(name, "unlock") == 0) {
    op = LockOp::kUnlock;
  } else {
    return throw_type(env, "flock", kOpError);
  }
  bool acquired = false;
  if (int err = file_flock(fd, op, &acquired); err != 0) return throw_errno(env, err, "flock");
  napi_value result;
  NAPI_OK(napi_get_boolean(env, acquired, &result));
  return result;
}

}  // namespace

NAPI_MODULE_INIT() {
  // An unusable forced choice fails the load with its message, rather than
  // running with an instruction the tests did not ask for.
  const char* error = flush_init();
  if (error == nullptr) error = crc32c_init();
  if (error != nullptr) {
    napi_throw_error(env, "DAXKV_NATIVE_CONFIG", error);
    return nullptr;
  }

  napi_value flush_instruction_value, crc32c_implementation_value, page_size_value;
  NAPI_OK(napi_create_string_utf8(env, flush_instruction(), NAPI_AUTO_LENGTH,
                                  &flush_instruction_value));
  NAPI_OK(napi_create_string_utf8(env, crc32c_implementation(), NAPI_AUTO_LENGTH,
                                  &crc32c_implementation_value));
  NAPI_OK(napi_create_int64(env, sysconf(_SC_PAGESIZE), &page_size_value));

  // Methods are created with their names so that they show in stack traces.
  const struct {
    const char* name;
    napi_callback fn;
  } methods[] = {
      {"flush", Flush},         {"drain", Drain},       {"persist", Persist},
      {"crc32c", Crc32cChosen}, {"crc32cSoftware", Crc32cSoftware},
      {"statxDax", StatxDax},   {"fallocate", Fallocate}, {"fiemap", Fiemap},
      {"flock", Flock},         {"linkCount", LinkCount},
  };
  constexpr size_t kValues = 3;
  constexpr size_t kMethods = sizeof methods / sizeof methods[0];
  napi_property_descriptor properties[kValues + kMethods] = {
      {"flushInstruction", nullptr, nullptr, nullptr, nullptr, flush_instruction_value,
       napi_enumerable, nullptr},
      {"crc32cImplementation", nullptr, nullptr, nullptr, nullptr, crc32c_implementation_value,
       napi_enumerable, nullptr},
      {"pageSize", nullptr, nullptr, nullptr, nullptr, page_size_value, napi_enumerable, nullptr},
  };
  for (size_t i = 0; i < kMethods; i++) {
    napi_value fn;
    NAPI_OK(napi_create_function(env, methods[i].name, NAPI_AUTO_LENGTH, methods[i].fn, nullptr,
                                 &fn));
    properties[kValues + i] = {methods[i].name, nullptr, nullptr, nullptr, nullptr, fn,
                               napi_enumerable, nullptr};
  }
  NAPI_OK(napi_define_properties(env, exports, kValues + kMethods, properties));
  return exports;
}
