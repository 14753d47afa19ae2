// CRC-32C with the SSE4.2 crc32 instruction. One instruction has a latency of 3 cycles and a
// throughput of 1 per cycle, so three independent streams over three blocks keep it busy; the
// three partial CRCs are then joined with a precomputed "append BLOCK zero bytes" operator
// (CRC is linear over GF(2)), as in Mark Adler's crc32c.c.
#include "crc32c.h"
#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u /* reflected Castagnoli polynomial */
#define BLOCK 4096

uint32_t moeckpt_crc32c_reference(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = data;
    crc = ~crc;
    while (length--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ POLY : crc >> 1;
    }
    return ~crc;
}

static uint32_t byte_table[8][256];
static uint32_t shift_table[4][256]; /* applies "append BLOCK zero bytes" to a raw CRC state */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Raw state update (no pre/post inversion) over n zero bytes, bit by bit: used once at start-up. */
static uint32_t zeros_slow(uint32_t state, size_t n) {
    while (n--) {
        for (int k = 0; k < 8; k++) state = state & 1 ? (state >> 1) ^ POLY : state >> 1;
    }
    return state;
}

static void init_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        byte_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = byte_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = byte_table[0][c & 0xff] ^ (c >> 8);
            byte_table[k][n] = c;
        }
    }
    /* The operator is linear: its value on each of the 32 unit states determines it. */
    uint32_t unit[32];
    for (int bit = 0; bit < 32; bit++) unit[bit] = zeros_slow(1u << bit, BLOCK);
    for (int k = 0; k < 4; k++) {
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t v = 0;
            for (int bit = 0; bit < 8; bit++)
                if (n & (1u << bit)) v ^= unit[8 * k + bit];
            shift_table[k][n] = v;
        }
    }
}

static inline uint32_t shift_block(uint32_t state) {
    return shift_table[0][state & 0xff] ^ shift_table[1][(state >> 8) & 0xff] ^ shift_table[2][(state >> 16) & 0xff] ^
           shift_table[3][state >> 24];
}

/* Table-driven raw update, eight bytes at a time, for CPUs without SSE4.2. */
static uint32_t update_software(uint32_t state, const unsigned char *p, size_t n) {
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= state;
        state = byte_table[7][word & 0xff] ^ byte_table[6][(word >> 8) & 0xff] ^ byte_table[5][(word >> 16) & 0xff] ^
                byte_table[4][(word >> 24) & 0xff] ^ byte_table[3][(word >> 32) & 0xff] ^ byte_table[2][(word >> 40) & 0xff] ^
                byte_table[1][(word >> 48) & 0xff] ^ byte_table[0][word >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) state = byte_table[0][(state ^ *p++) & 0xff] ^ (state >> 8);
    return state;
}

#if defined(__x86_64__) && !defined(MOECKPT_PORTABLE)
__attribute__((target("sse4.2"))) static uint32_t update_hardware(uint32_t state, const unsigned char *p, size_t n) {
    uint64_t s0 = state;
    while (n >= 3 * BLOCK) {
        uint64_t s1 = 0, s2 = 0;
        const unsigned char *end = p + BLOCK;
        while (p < end) {
            uint64_t a, b, c;
            memcpy(&a, p, 8);
            memcpy(&b, p + BLOCK, 8);
            memcpy(&c, p + 2 * BLOCK, 8);
            s0 = __builtin_ia32_crc32di(s0, a);
            s1 = __builtin_ia32_crc32di(s1, b);
            s2 = __builtin_ia32_crc32di(s2, c);
            p += 8;
        }
        s0 = shift_block(shift_block((uint32_t)s0) ^ (uint32_t)s1) ^ (uint32_t)s2;
        p += 2 * BLOCK;
        n -= 3 * BLOCK;
    }
    while (n >= 8) {
        uint64_t a;
        memcpy(&a, p, 8);
        s0 = __builtin_ia32_crc32di(s0, a);
        p += 8;
        n -= 8;
    }
    uint32_t s = (uint32_t)s0;
    while (n--) s = __builtin_ia32_crc32qi(s, *p++);
    return s;
}
#endif

uint32_t moeckpt_crc32c(uint32_t crc, const void *data, size_t length) {
    pthread_once(&once, init_tables);
    uint32_t state = ~crc;
#if defined(__x86_64__) && !defined(MOECKPT_PORTABLE)
    if (__builtin_cpu_supports("sse4.2")) return ~update_hardware(state, data, length);
#endif
    return ~update_software(state, data, length);
}
