/*
 * buf.c - growable byte buffers, a bounds-checked reader and varints.
 *
 * Buffers grow geometrically (x2, minimum 64 bytes) and report PPDB_ENOMEM
 * without changing their contents when growth fails. The reader never moves
 * past `end`: a short read is PPDB_ETRUNC and leaves the cursor in place.
 */
#include "ppdb_base.h"

void ppdb_buf_init(struct ppdb_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void ppdb_buf_deinit(struct ppdb_buf *b)
{
    ppdb_free(b->data);
    ppdb_buf_init(b);
}

void ppdb_buf_reset(struct ppdb_buf *b)
{
    b->len = 0;
}

int ppdb_buf_reserve(struct ppdb_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return PPDB_ENOMEM;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap *= 2;
    uint8_t *p = ppdb_realloc(b->data, cap);
    if (!p)
        return PPDB_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int ppdb_buf_append(struct ppdb_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = ppdb_buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int ppdb_buf_append_u8(struct ppdb_buf *b, uint8_t v)
{
    return ppdb_buf_append(b, &v, 1);
}

int ppdb_buf_append_u16be(struct ppdb_buf *b, uint16_t v)
{
    uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return ppdb_buf_append(b, t, 2);
}

int ppdb_buf_append_u32be(struct ppdb_buf *b, uint32_t v)
{
    uint8_t t[4];
    ppdb_store_u32be(t, v);
    return ppdb_buf_append(b, t, 4);
}

int ppdb_buf_append_u64be(struct ppdb_buf *b, uint64_t v)
{
    uint8_t t[8];
    ppdb_store_u64be(t, v);
    return ppdb_buf_append(b, t, 8);
}

int ppdb_buf_append_u32le(struct ppdb_buf *b, uint32_t v)
{
    uint8_t t[4];
    ppdb_store_u32le(t, v);
    return ppdb_buf_append(b, t, 4);
}

int ppdb_buf_append_u64le(struct ppdb_buf *b, uint64_t v)
{
    uint8_t t[8];
    ppdb_store_u64le(t, v);
    return ppdb_buf_append(b, t, 8);
}

int ppdb_buf_append_varint(struct ppdb_buf *b, uint64_t v)
{
    uint8_t t[10];
    return ppdb_buf_append(b, t, ppdb_varint_put(t, v));
}

uint8_t *ppdb_buf_steal(struct ppdb_buf *b, size_t *len_out)
{
    uint8_t *p = b->data;
    *len_out = b->len;
    ppdb_buf_init(b);
    return p;
}

int ppdb_rd_bytes(struct ppdb_rd *r, size_t n, const uint8_t **p_out)
{
    if (n > ppdb_rd_left(r))
        return PPDB_ETRUNC;
    *p_out = r->p;
    r->p += n;
    return 0;
}

int ppdb_rd_u8(struct ppdb_rd *r, uint8_t *out)
{
    if (ppdb_rd_left(r) < 1)
        return PPDB_ETRUNC;
    *out = *r->p++;
    return 0;
}

int ppdb_rd_u16be(struct ppdb_rd *r, uint16_t *out)
{
    if (ppdb_rd_left(r) < 2)
        return PPDB_ETRUNC;
    *out = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    return 0;
}

int ppdb_rd_u32be(struct ppdb_rd *r, uint32_t *out)
{
    if (ppdb_rd_left(r) < 4)
        return PPDB_ETRUNC;
    *out = ppdb_load_u32be(r->p);
    r->p += 4;
    return 0;
}

int ppdb_rd_u64be(struct ppdb_rd *r, uint64_t *out)
{
    if (ppdb_rd_left(r) < 8)
        return PPDB_ETRUNC;
    *out = ppdb_load_u64be(r->p);
    r->p += 8;
    return 0;
}

int ppdb_rd_u32le(struct ppdb_rd *r, uint32_t *out)
{
    if (ppdb_rd_left(r) < 4)
        return PPDB_ETRUNC;
    *out = ppdb_load_u32le(r->p);
    r->p += 4;
    return 0;
}

int ppdb_rd_u64le(struct ppdb_rd *r, uint64_t *out)
{
    if (ppdb_rd_left(r) < 8)
        return PPDB_ETRUNC;
    *out = ppdb_load_u64le(r->p);
    r->p += 8;
    return 0;
}

int ppdb_rd_varint(struct ppdb_rd *r, uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *p = r->p;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (p >= r->end)
            return PPDB_ETRUNC;
        uint8_t byte = *p++;
        if (shift == 63 && byte > 1)
            return PPDB_ECORRUPT;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            r->p = p;
            *out = v;
            return 0;
        }
    }
    return PPDB_ECORRUPT;
}

size_t ppdb_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t ppdb_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
