// CRC32C (Castagnoli), with the SSE4.2 instruction where the CPU has it and a table otherwise.
// Stored CRCs are masked (rotated and offset) so a CRC of data that itself holds CRCs stays strong.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hfe::crc32c {

// Extends `crc` (the CRC of earlier bytes, 0 to start) over `n` bytes.
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }

// True when the hardware instruction is used.
bool HardwareAccelerated();

constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace hfe::crc32c
