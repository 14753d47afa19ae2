#ifndef MOECKPT_CRC32C_H
#define MOECKPT_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli, as in iSCSI and ext4) of `length` bytes, continuing from `crc` (0 to start).
/// Uses the SSE4.2 crc32 instruction on three interleaved streams when the CPU has it.
uint32_t moeckpt_crc32c(uint32_t crc, const void *data, size_t length);

/// The same computed bit by bit, for tests.
uint32_t moeckpt_crc32c_reference(uint32_t crc, const void *data, size_t length);

#endif
