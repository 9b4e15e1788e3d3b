/*
 * bloom.c - a cache-line-blocked bloom filter over user keys.
 *
 * Each key's 64-bit hash picks one 64-byte line (fast range reduction of
 * the high 32 bits) and sets `probes` bits inside that line, each chosen
 * by the top 9 bits of a running multiplicative remix of the hash. A lookup
 * therefore costs one hash and one cache miss, at a slightly higher false
 * positive rate than a classic bloom filter of the same size (about 1% at
 * 10 bits per key with 6 probes; see tests/unit/test_table_bloom.c).
 *
 * The builder keeps only the 64-bit hashes of the keys, and sizes the filter
 * when it finishes. Invariant: the hash (ppdb_hash64 with PPDB_BLOOM_SEED)
 * and the probe sequence are part of the file format and never change.
 */
#include "table.h"

#define GOLDEN64 0x9e3779b97f4a7c15ull

void ppdb_bloom_builder_init(struct ppdb_bloom_builder *bb, uint32_t bits_per_key)
{
    memset(bb, 0, sizeof(*bb));
    bb->bits_per_key = bits_per_key;
}

void ppdb_bloom_builder_deinit(struct ppdb_bloom_builder *bb)
{
    ppdb_free(bb->hashes);
    memset(bb, 0, sizeof(*bb));
}

int ppdb_bloom_builder_add(struct ppdb_bloom_builder *bb, const void *ukey, size_t len)
{
    if (bb->n == bb->cap) {
        size_t cap = bb->cap ? bb->cap * 2 : 1024;
        uint64_t *h = ppdb_realloc(bb->hashes, cap * sizeof(*h));
        if (!h)
            return PPDB_ENOMEM;
        bb->hashes = h;
        bb->cap = cap;
    }
    bb->hashes[bb->n++] = ppdb_bloom_hash(ukey, len);
    return 0;
}

static uint32_t probes_for(uint32_t bits_per_key)
{
    /* Fewer probes than the classic ln2 * bits: within one line, extra
     * probes collide more than they help (measured). */
    uint32_t k = (bits_per_key * 6 + 5) / 10;
    return PPDB_MAX(1u, PPDB_MIN(k, 12u));
}

static inline uint32_t line_of(uint64_t h, uint32_t n_lines)
{
    return (uint32_t)(((h >> 32) * (uint64_t)n_lines) >> 32);
}

static inline void set_bits(uint8_t *line, uint64_t h, uint32_t probes)
{
    uint64_t h2 = h * GOLDEN64;
    for (uint32_t i = 0; i < probes; i++) {
        uint32_t bit = (uint32_t)(h2 >> 55);
        line[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        h2 *= GOLDEN64;
    }
}

int ppdb_bloom_builder_finish(struct ppdb_bloom_builder *bb, struct ppdb_buf *out)
{
    PPDB_ASSERT(bb->bits_per_key > 0);
    uint64_t bits = (uint64_t)bb->n * bb->bits_per_key;
    uint64_t n_lines64 = (bits + PPDB_BLOOM_LINE * 8 - 1) / (PPDB_BLOOM_LINE * 8);
    if (n_lines64 == 0)
        n_lines64 = 1;
    if (n_lines64 > (PPDB_SST_MAX_BLOCK - PPDB_BLOOM_TRAILER) / PPDB_BLOOM_LINE)
        return PPDB_ELIMIT;
    uint32_t n_lines = (uint32_t)n_lines64;
    uint32_t probes = probes_for(bb->bits_per_key);
    size_t start = out->len, size = (size_t)n_lines * PPDB_BLOOM_LINE;
    int rc = ppdb_buf_reserve(out, size + PPDB_BLOOM_TRAILER);
    if (rc)
        return rc;
    memset(out->data + start, 0, size);
    out->len += size;
    for (size_t i = 0; i < bb->n; i++) {
        uint64_t h = bb->hashes[i];
        set_bits(out->data + start + (size_t)line_of(h, n_lines) * PPDB_BLOOM_LINE, h, probes);
    }
    ppdb_buf_append_u32le(out, n_lines);
    uint8_t tail[4] = {(uint8_t)probes, 0, 0, 0};
    ppdb_buf_append(out, tail, sizeof(tail));
    bb->n = 0;
    return 0;
}

int ppdb_bloom_parse(struct ppdb_bloom *f, const uint8_t *p, size_t n)
{
    if (n < PPDB_BLOOM_TRAILER + PPDB_BLOOM_LINE)
        return PPDB_ECORRUPT;
    const uint8_t *t = p + n - PPDB_BLOOM_TRAILER;
    uint32_t n_lines = ppdb_load_u32le(t);
    uint32_t probes = t[4];
    if (n_lines == 0 || (uint64_t)n_lines * PPDB_BLOOM_LINE != n - PPDB_BLOOM_TRAILER ||
        probes == 0 || probes > 30 || t[5] || t[6] || t[7])
        return PPDB_ECORRUPT;
    f->lines = p;
    f->n_lines = n_lines;
    f->probes = probes;
    return 0;
}

bool ppdb_bloom_may_contain_hash(const struct ppdb_bloom *f, uint64_t h)
{
    const uint8_t *line = f->lines + (size_t)line_of(h, f->n_lines) * PPDB_BLOOM_LINE;
    uint64_t h2 = h * GOLDEN64;
    for (uint32_t i = 0; i < f->probes; i++) {
        uint32_t bit = (uint32_t)(h2 >> 55);
        if (!(line[bit >> 3] & (1u << (bit & 7))))
            return false;
        h2 *= GOLDEN64;
    }
    return true;
}

bool ppdb_bloom_may_contain(const struct ppdb_bloom *f, const void *ukey, size_t len)
{
    return ppdb_bloom_may_contain_hash(f, ppdb_bloom_hash(ukey, len));
}
