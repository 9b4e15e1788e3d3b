/*
 * rng.c - xoshiro256** (seeded by splitmix64) and hex helpers.
 *
 * Deterministic per seed, fast, and good enough for simulation and tests.
 * It is not a cryptographic generator: keys and nonces come from libsodium
 * (through the env in protocol code).
 */
#include "ppdb_base.h"

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void ppdb_rng_seed(struct ppdb_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        seed += 0x9e3779b97f4a7c15ull;
        r->s[i] = ppdb_mix64(seed);
    }
}

uint64_t ppdb_rng_next(struct ppdb_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t ppdb_rng_below(struct ppdb_rng *r, uint64_t bound)
{
    PPDB_ASSERT(bound > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    for (;;) {
        uint64_t v = ppdb_rng_next(r);
        if (v < limit)
            return v % bound;
    }
}

double ppdb_rng_double(struct ppdb_rng *r)
{
    return (double)(ppdb_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

void ppdb_rng_bytes(struct ppdb_rng *r, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n >= 8) {
        uint64_t v = ppdb_rng_next(r);
        memcpy(p, &v, 8);
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = ppdb_rng_next(r);
        memcpy(p, &v, n);
    }
}

char *ppdb_hex(const void *data, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ppdb_unhex(const char *s, void *out, size_t n)
{
    uint8_t *o = out;
    if (strlen(s) != 2 * n)
        return PPDB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return PPDB_EINVAL;
        o[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
