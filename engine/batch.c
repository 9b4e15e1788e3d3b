/*
 * batch.c - write batches: the unit of atomicity and the log's payload.
 *
 * A batch is kept in its encoded form (engine_int.h draws it) so that the
 * write path can hand it to the log without a copy and a group commit can
 * concatenate several batches into one record. Decoding validates the whole
 * record before applying any entry, so a malformed record is rejected as a
 * unit and never half-applied.
 *
 * Invariants: rep always holds at least the 12-byte header; the header's
 * count equals the number of entries that follow.
 */
#include "engine_int.h"

_Static_assert(PPDB_BATCH_HEADER == sizeof(uint64_t) + sizeof(uint32_t), "seq + count");
_Static_assert(PPDB_VT_DEL == 0 && PPDB_VT_VALUE == 1 && PPDB_VT_TTL == 2,
               "entry types as in docs/formats/wal.md");

static bool type_has_value(int type)
{
    return type == PPDB_VT_VALUE || type == PPDB_VT_TTL;
}

static int batch_ensure_header(struct ppdb_batch *b)
{
    if (b->rep.len >= PPDB_BATCH_HEADER)
        return 0;
    uint8_t hdr[PPDB_BATCH_HEADER] = {0};
    return ppdb_buf_append(&b->rep, hdr, sizeof(hdr));
}

int ppdb_batch_new(struct ppdb_batch **b_out)
{
    struct ppdb_batch *b = ppdb_calloc(1, sizeof(*b));
    if (!b)
        return PPDB_ENOMEM;
    ppdb_buf_init(&b->rep);
    int rc = batch_ensure_header(b);
    if (rc) {
        ppdb_free(b);
        return rc;
    }
    *b_out = b;
    return 0;
}

void ppdb_batch_free(struct ppdb_batch *b)
{
    if (!b)
        return;
    ppdb_buf_deinit(&b->rep);
    ppdb_free(b);
}

void ppdb_batch_clear(struct ppdb_batch *b)
{
    PPDB_ASSERT(b->rep.len >= PPDB_BATCH_HEADER);
    b->rep.len = PPDB_BATCH_HEADER;
    memset(b->rep.data, 0, PPDB_BATCH_HEADER);
}

uint32_t batch_rep_count(const uint8_t *rep)
{
    return ppdb_load_u32le(rep + 8);
}

uint64_t batch_seq(const uint8_t *rep)
{
    return ppdb_load_u64le(rep);
}

void batch_set_seq(struct ppdb_buf *rep, uint64_t seq)
{
    PPDB_ASSERT(rep->len >= PPDB_BATCH_HEADER);
    ppdb_store_u64le(rep->data, seq);
}

uint32_t ppdb_batch_count(const struct ppdb_batch *b)
{
    return batch_rep_count(b->rep.data);
}

size_t ppdb_batch_bytes(const struct ppdb_batch *b)
{
    return b->rep.len;
}

/* expire_at_ms is used by PPDB_VT_TTL only: the stored value is the
 * expiry prefix followed by val. */
static int batch_add(struct ppdb_batch *b, int type, uint64_t version, const void *key, size_t klen,
                     const void *val, size_t vlen, uint64_t expire_at_ms)
{
    if (klen == 0 || klen > PPDB_DB_MAX_KEY || vlen > PPDB_DB_MAX_VALUE)
        return PPDB_EINVAL;
    uint32_t count = ppdb_batch_count(b);
    if (count == UINT32_MAX)
        return PPDB_ELIMIT;
    size_t old_len = b->rep.len;
    int rc = ppdb_buf_append_u8(&b->rep, (uint8_t)type);
    if (!rc)
        rc = ppdb_buf_append_varint(&b->rep, version);
    if (!rc)
        rc = ppdb_buf_append_varint(&b->rep, klen);
    if (!rc)
        rc = ppdb_buf_append(&b->rep, key, klen);
    if (!rc && type == PPDB_VT_TTL) {
        uint8_t exp[PPDB_TTL_PREFIX];
        ppdb_store_u64le(exp, expire_at_ms);
        rc = ppdb_buf_append_varint(&b->rep, vlen + PPDB_TTL_PREFIX);
        if (!rc)
            rc = ppdb_buf_append(&b->rep, exp, sizeof(exp));
        if (!rc)
            rc = ppdb_buf_append(&b->rep, val, vlen);
    } else if (!rc && type == PPDB_VT_VALUE) {
        rc = ppdb_buf_append_varint(&b->rep, vlen);
        if (!rc)
            rc = ppdb_buf_append(&b->rep, val, vlen);
    }
    if (rc) {
        b->rep.len = old_len; /* leave the batch as it was */
        return rc;
    }
    ppdb_store_u32le(b->rep.data + 8, count + 1);
    return 0;
}

int ppdb_batch_put(struct ppdb_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    return batch_add(b, PPDB_VT_VALUE, 0, key, klen, val, vlen, 0);
}

int ppdb_batch_put_versioned(struct ppdb_batch *b, const void *key, size_t klen, const void *val,
                             size_t vlen, uint64_t version)
{
    return batch_add(b, PPDB_VT_VALUE, version, key, klen, val, vlen, 0);
}

int ppdb_batch_delete(struct ppdb_batch *b, const void *key, size_t klen)
{
    return batch_add(b, PPDB_VT_DEL, 0, key, klen, NULL, 0, 0);
}

int ppdb_batch_delete_versioned(struct ppdb_batch *b, const void *key, size_t klen,
                                uint64_t version)
{
    return batch_add(b, PPDB_VT_DEL, version, key, klen, NULL, 0, 0);
}

int ppdb_batch_put_expiring(struct ppdb_batch *b, const void *key, size_t klen, const void *val,
                            size_t vlen, uint64_t version, uint64_t expire_at_ms)
{
    return batch_add(b, PPDB_VT_TTL, version, key, klen, val, vlen, expire_at_ms);
}

int batch_rep_append(struct ppdb_buf *dst, const uint8_t *src, size_t n)
{
    PPDB_ASSERT(dst->len >= PPDB_BATCH_HEADER && n >= PPDB_BATCH_HEADER);
    uint64_t count = (uint64_t)batch_rep_count(dst->data) + batch_rep_count(src);
    if (count > UINT32_MAX)
        return PPDB_ELIMIT;
    int rc = ppdb_buf_append(dst, src + PPDB_BATCH_HEADER, n - PPDB_BATCH_HEADER);
    if (rc)
        return rc;
    ppdb_store_u32le(dst->data + 8, (uint32_t)count);
    return 0;
}

/* Decodes one entry at r; PPDB_ECORRUPT on anything malformed. */
static int decode_entry(struct ppdb_rd *r, int *type, uint64_t *version, const uint8_t **key,
                        size_t *klen, const uint8_t **val, size_t *vlen)
{
    uint8_t t;
    uint64_t kl, vl = 0;
    if (ppdb_rd_u8(r, &t) || ppdb_rd_varint(r, version) || ppdb_rd_varint(r, &kl))
        return PPDB_ECORRUPT;
    if ((!type_has_value(t) && t != PPDB_VT_DEL) || kl == 0 || kl > PPDB_DB_MAX_KEY)
        return PPDB_ECORRUPT;
    if (ppdb_rd_bytes(r, (size_t)kl, key))
        return PPDB_ECORRUPT;
    *val = NULL;
    if (type_has_value(t)) {
        uint64_t max = PPDB_DB_MAX_VALUE + (t == PPDB_VT_TTL ? PPDB_TTL_PREFIX : 0);
        if (ppdb_rd_varint(r, &vl) || vl > max || ppdb_rd_bytes(r, (size_t)vl, val))
            return PPDB_ECORRUPT;
        if (t == PPDB_VT_TTL && vl < PPDB_TTL_PREFIX)
            return PPDB_ECORRUPT;
    }
    *type = t;
    *klen = (size_t)kl;
    *vlen = (size_t)vl;
    return 0;
}

static int walk_rep(const uint8_t *rep, size_t n, batch_entry_cb cb, void *arg)
{
    if (n < PPDB_BATCH_HEADER)
        return PPDB_ECORRUPT;
    uint64_t seq = batch_seq(rep);
    uint32_t count = batch_rep_count(rep);
    if (seq > PPDB_SEQ_MAX || PPDB_SEQ_MAX - seq < count)
        return PPDB_ECORRUPT;
    struct ppdb_rd r;
    ppdb_rd_init(&r, rep + PPDB_BATCH_HEADER, n - PPDB_BATCH_HEADER);
    for (uint32_t i = 0; i < count; i++) {
        int type;
        uint64_t version;
        const uint8_t *key, *val;
        size_t klen, vlen;
        if (decode_entry(&r, &type, &version, &key, &klen, &val, &vlen))
            return PPDB_ECORRUPT;
        if (cb) {
            int rc = cb(arg, seq + i, type, version, key, klen, val, vlen);
            if (rc)
                return rc;
        }
    }
    return ppdb_rd_left(&r) == 0 ? 0 : PPDB_ECORRUPT;
}

int batch_rep_validate(const uint8_t *rep, size_t n)
{
    return walk_rep(rep, n, NULL, NULL);
}

int batch_rep_iterate(const uint8_t *rep, size_t n, batch_entry_cb cb, void *arg)
{
    int rc = walk_rep(rep, n, NULL, NULL);
    if (rc)
        return rc;
    return walk_rep(rep, n, cb, arg);
}
