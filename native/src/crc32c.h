// CRC32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final
// xor 0xFFFFFFFF, as in iSCSI, ext4 and SSE4.2. Both functions continue from
// `previous`, the finished CRC of the bytes before `data` (0 for none), so
// crc(prev = crc(A), B) == crc(0, A || B).
#pragma once

#include <cstddef>
#include <cstdint>

// Picks the implementation once per process: SSE4.2 if the CPU has it, unless
// DAXKV_CRC32C=software. Returns nullptr on success or a message if the forced
// choice is unknown or unsupported.
const char* crc32c_init();

// "sse4.2" or "software".
const char* crc32c_implementation();

// The chosen implementation.
uint32_t crc32c(uint32_t previous, const uint8_t* data, size_t length);

// Slicing-by-8 in portable C++; the reference for the hardware path.
uint32_t crc32c_software(uint32_t previous, const uint8_t* data, size_t length);
