/*
 * hash.c - CRC-32C and a fast 64-bit hash.
 *
 * CRC-32C uses the SSE4.2 crc32 instruction when the CPU has it (checked
 * once with cpuid) and a slicing-by-8 table otherwise; both give identical
 * results, which the unit test checks against known vectors.
 *
 * ppdb_hash64 reads 8 bytes at a time, folds each word with a 128-bit
 * multiply and finishes with a strong 64-bit mixer. It is part of on-disk
 * formats (bloom filters), so its output must never change.
 */
#include "ppdb_base.h"

#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256];
static int crc_hw = -1; /* -1 unknown, 0 no, 1 yes; set once, benign race */

static void crc_init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo = ppdb_load_u32le(p) ^ crc, hi = ppdb_load_u32le(p + 4);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw_run(uint32_t crc, const uint8_t *p,
                                                             size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

static void crc_detect(void)
{
    crc_init_table();
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    crc_hw = 0;
#endif
}

uint32_t ppdb_crc32c_extend(uint32_t crc, const void *data, size_t n)
{
    if (PPDB_UNLIKELY(crc_hw < 0))
        crc_detect();
    crc = ~crc;
#if defined(__x86_64__)
    if (crc_hw)
        return ~crc_hw_run(crc, data, n);
#endif
    return ~crc_sw(crc, data, n);
}

static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#define H_K1 0x9e3779b97f4a7c15ull
#define H_K2 0xc2b2ae3d27d4eb4full
#define H_K3 0x165667b19e3779f9ull

uint64_t ppdb_hash64(const void *data, size_t n, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = seed ^ (n * H_K1);
    while (n >= 16) {
        h = fold_mul(ppdb_load_u64le(p) ^ H_K2 ^ h, ppdb_load_u64le(p + 8) ^ H_K3);
        p += 16;
        n -= 16;
    }
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        a = ppdb_load_u64le(p);
        b = ppdb_load_u64le(p + n - 8);
    } else if (n >= 4) {
        a = ppdb_load_u32le(p);
        b = ppdb_load_u32le(p + n - 4);
    } else if (n > 0) {
        a = (uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1];
    }
    h = fold_mul(a ^ H_K2 ^ h, b ^ H_K3 ^ n);
    return ppdb_mix64(h);
}
