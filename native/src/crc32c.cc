#include "crc32c.h"

#include <cpuid.h>
#include <nmmintrin.h>

#include <array>
#include <cstdlib>
#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the 8-byte loads below assume a little-endian CPU");

namespace {

constexpr uint32_t kPolynomial = 0x82F63B78;  // Castagnoli, bit-reversed.

// The CRC register below is always the raw one, without the initial and final
// inversion. The raw update is linear over GF(2) in (register, data) jointly,
// which is what lets independent streams be combined.

using Table = std::array<uint32_t, 256>;

// kSlices[k][b] is the raw CRC of byte b followed by k zero bytes, starting from
// a zero register. kSlices[0] is the classic byte-at-a-time table.
constexpr std::array<Table, 8> make_slices() {
  std::array<Table, 8> t{};
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t r = b;
    for (int bit = 0; bit < 8; bit++) r = (r >> 1) ^ (kPolynomial & (0u - (r & 1)));
    t[0][b] = r;
  }
  for (size_t k = 1; k < 8; k++) {
    for (uint32_t b = 0; b < 256; b++) {
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
  }
  return t;
}

constexpr std::array<Table, 8> kSlices = make_slices();

// Shifting a register past n zero bytes is a linear map on 32 bits. It is
// applied a byte of the register at a time: shift(r) = xor of kShift[i][byte i].
using ShiftTable = std::array<Table, 4>;

constexpr ShiftTable make_shift(size_t zero_bytes) {
  uint32_t basis[32] = {};
  for (int bit = 0; bit < 32; bit++) {
    uint32_t r = 1u << bit;
    for (size_t i = 0; i < zero_bytes; i++) r = (r >> 8) ^ kSlices[0][r & 0xff];
    basis[bit] = r;
  }
  ShiftTable t{};
  for (int i = 0; i < 4; i++) {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t r = 0;
      for (int bit = 0; bit < 8; bit++) {
        if (b & (1u << bit)) r ^= basis[8 * i + bit];
      }
      t[i][b] = r;
    }
  }
  return t;
}

uint32_t shift(const ShiftTable& t, uint32_t r) {
  return t[0][r & 0xff] ^ t[1][(r >> 8) & 0xff] ^ t[2][(r >> 16) & 0xff] ^ t[3][r >> 24];
}

// The hardware path runs three independent crc32 streams over three adjacent
// blocks, because the instruction has a latency of about three cycles but a
// throughput of one per cycle. Long blocks amortise the combine step; short
// blocks keep medium buffers (under 3 * kLongBlock) fast too.
constexpr size_t kLongBlock = 8192;
constexpr size_t kShortBlock = 256;
constexpr ShiftTable kShiftLong = make_shift(kLongBlock);
constexpr ShiftTable kShiftShort = make_shift(kShortBlock);

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint32_t software_raw(uint32_t r, const uint8_t* p, size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    r = (r >> 8) ^ kSlices[0][(r ^ *p++) & 0xff];
    n--;
  }
  // The first byte of the little-endian word is followed by seven more bytes,
  // so it goes through kSlices[7]; the last byte goes through kSlices[0].
  for (; n >= 8; p += 8, n -= 8) {
    const uint64_t w = load64(p) ^ r;
    r = kSlices[7][w & 0xff] ^ kSlices[6][(w >> 8) & 0xff] ^ kSlices[5][(w >> 16) & 0xff] ^
        kSlices[4][(w >> 24) & 0xff] ^ kSlices[3][(w >> 32) & 0xff] ^
        kSlices[2][(w >> 40) & 0xff] ^ kSlices[1][(w >> 48) & 0xff] ^ kSlices[0][w >> 56];
  }
  while (n-- > 0) r = (r >> 8) ^ kSlices[0][(r ^ *p++) & 0xff];
  return r;
}

// Processes whole groups of three blocks while they last. The first stream
// continues from r; the other two start at zero, and by linearity
// crc(r, A || B || C) = shift(shift(crc(r, A)) ^ crc(0, B)) ^ crc(0, C).
template <size_t kBlock>
__attribute__((target("sse4.2"))) uint32_t hardware_3way(uint32_t r, const uint8_t*& p,
                                                         size_t& n, const ShiftTable& t) {
  for (; n >= 3 * kBlock; p += 3 * kBlock, n -= 3 * kBlock) {
    uint64_t a = r, b = 0, c = 0;
    for (size_t i = 0; i < kBlock; i += 8) {
      a = _mm_crc32_u64(a, load64(p + i));
      b = _mm_crc32_u64(b, load64(p + kBlock + i));
      c = _mm_crc32_u64(c, load64(p + 2 * kBlock + i));
    }
    r = shift(t, shift(t, static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b)) ^
        static_cast<uint32_t>(c);
  }
  return r;
}

__attribute__((target("sse4.2"))) uint32_t hardware_raw(uint32_t r, const uint8_t* p,
                                                        size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    r = _mm_crc32_u8(r, *p++);
    n--;
  }
  r = hardware_3way<kLongBlock>(r, p, n, kShiftLong);
  r = hardware_3way<kShortBlock>(r, p, n, kShiftShort);
  uint64_t r64 = r;
  for (; n >= 8; p += 8, n -= 8) r64 = _mm_crc32_u64(r64, load64(p));
  r = static_cast<uint32_t>(r64);
  while (n-- > 0) r = _mm_crc32_u8(r, *p++);
  return r;
}

struct Implementation {
  const char* name;
  uint32_t (*raw)(uint32_t, const uint8_t*, size_t);
  const char* error;
};

Implementation select_implementation() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool has_sse42 = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 20));
  const char* forced = std::getenv("DAXKV_CRC32C");
  if (forced != nullptr && forced[0] != '\0') {
    if (std::strcmp(forced, "software") == 0) return {"software", software_raw, nullptr};
    if (std::strcmp(forced, "sse4.2") == 0) {
      if (has_sse42) return {"sse4.2", hardware_raw, nullptr};
      return {nullptr, nullptr, "DAXKV_CRC32C=sse4.2, but this CPU does not support SSE4.2"};
    }
    return {nullptr, nullptr, "DAXKV_CRC32C must be one of sse4.2, software (or unset)"};
  }
  if (has_sse42) return {"sse4.2", hardware_raw, nullptr};
  return {"software", software_raw, nullptr};
}

// A thread-safe static initializer, for the same reason as in flush.cc.
const Implementation& implementation() {
  static const Implementation once = select_implementation();
  return once;
}

}  // namespace

const char* crc32c_init() { return implementation().error; }

const char* crc32c_implementation() { return implementation().name; }

uint32_t crc32c(uint32_t previous, const uint8_t* data, size_t length) {
  return ~implementation().raw(~previous, data, length);
}

uint32_t crc32c_software(uint32_t previous, const uint8_t* data, size_t length) {
  return ~software_raw(~previous, data, length);
}
