/*
 * compress.c - block compression with LZ4 or zstd.
 *
 * A compressed payload is `raw length varint | codec bytes`, so the reader
 * allocates the exact output size up front and can check that the codec
 * produced exactly that many bytes. The raw length is capped at
 * PPDB_SST_MAX_BLOCK, so a corrupt length cannot make the reader allocate
 * without bound. Both codecs' decoders are the bounds-checked variants.
 */
#include <lz4.h>
#include <zstd.h>

#include "table.h"

int ppdb_compress(int type, int zstd_level, const uint8_t *src, size_t n, struct ppdb_buf *out)
{
    if (n > PPDB_SST_MAX_BLOCK)
        return PPDB_EINVAL;
    size_t bound;
    if (type == PPDB_COMPRESS_LZ4)
        bound = (size_t)LZ4_compressBound((int)n);
    else if (type == PPDB_COMPRESS_ZSTD)
        bound = ZSTD_compressBound(n);
    else
        return PPDB_ENOTSUP;
    int rc = ppdb_buf_reserve(out, bound + 10);
    if (rc)
        return rc;
    out->len += ppdb_varint_put(out->data + out->len, n);
    size_t got;
    if (type == PPDB_COMPRESS_LZ4) {
        int r = LZ4_compress_default((const char *)src, (char *)out->data + out->len, (int)n,
                                     (int)bound);
        if (r <= 0)
            return PPDB_EIO;
        got = (size_t)r;
    } else {
        got = ZSTD_compress(out->data + out->len, bound, src, n, zstd_level ? zstd_level : 3);
        if (ZSTD_isError(got))
            return PPDB_EIO;
    }
    out->len += got;
    return 0;
}

int ppdb_decompress_size(const uint8_t *src, size_t n, size_t *raw_out)
{
    struct ppdb_rd rd;
    uint64_t raw;
    ppdb_rd_init(&rd, src, n);
    if (ppdb_rd_varint(&rd, &raw) != 0 || raw > PPDB_SST_MAX_BLOCK)
        return PPDB_ECORRUPT;
    *raw_out = (size_t)raw;
    return 0;
}

int ppdb_decompress_into(int type, const uint8_t *src, size_t n, uint8_t *dst, size_t raw)
{
    struct ppdb_rd rd;
    uint64_t stored;
    ppdb_rd_init(&rd, src, n);
    if (ppdb_rd_varint(&rd, &stored) != 0 || stored != raw || raw > PPDB_SST_MAX_BLOCK)
        return PPDB_ECORRUPT;
    size_t left = ppdb_rd_left(&rd);
    if (type == PPDB_COMPRESS_LZ4) {
        int r = LZ4_decompress_safe((const char *)rd.p, (char *)dst, (int)left, (int)raw);
        return r >= 0 && (uint64_t)r == raw ? 0 : PPDB_ECORRUPT;
    }
    if (type == PPDB_COMPRESS_ZSTD) {
        size_t r = ZSTD_decompress(dst, raw, rd.p, left);
        return !ZSTD_isError(r) && r == raw ? 0 : PPDB_ECORRUPT;
    }
    return PPDB_ECORRUPT;
}

int ppdb_decompress(int type, const uint8_t *src, size_t n, uint8_t **out, size_t *n_out)
{
    size_t raw;
    int rc = ppdb_decompress_size(src, n, &raw);
    if (rc)
        return rc;
    if (type != PPDB_COMPRESS_LZ4 && type != PPDB_COMPRESS_ZSTD)
        return PPDB_ECORRUPT;
    uint8_t *buf = ppdb_malloc(raw ? raw : 1);
    if (!buf)
        return PPDB_ENOMEM;
    rc = ppdb_decompress_into(type, src, n, buf, raw);
    if (rc) {
        ppdb_free(buf);
        return rc;
    }
    *out = buf;
    *n_out = raw;
    return 0;
}
