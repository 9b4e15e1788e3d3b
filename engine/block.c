/*
 * block.c - sorted key/value blocks with prefix compression and restarts.
 *
 * A block is the unit of I/O, caching and checksumming of a table. Keys
 * share their prefix with the previous key; every restart_interval-th entry
 * stores its key whole and is listed in the restart array at the end, so a
 * seek binary-searches the restart points and then scans forward at most
 * one restart interval. Layout in docs/formats/sst.md.
 *
 * Invariants: the builder asserts strictly ascending keys; the iterator
 * trusts nothing it reads (lengths are bounds-checked, a malformed entry
 * sets status = PPDB_ECORRUPT and invalidates it), because blocks come from
 * disk. A block that passed its checksum can still be adversarial (fuzzing).
 */
#include "table.h"

/* ---------------------------------------------------------------- builder */

void ppdb_block_builder_init(struct ppdb_block_builder *bb, uint32_t restart_interval)
{
    PPDB_ASSERT(restart_interval >= 1);
    memset(bb, 0, sizeof(*bb));
    ppdb_buf_init(&bb->buf);
    ppdb_buf_init(&bb->last_key);
    bb->interval = restart_interval;
}

void ppdb_block_builder_deinit(struct ppdb_block_builder *bb)
{
    ppdb_buf_deinit(&bb->buf);
    ppdb_buf_deinit(&bb->last_key);
    ppdb_free(bb->restarts);
    bb->restarts = NULL;
}

void ppdb_block_builder_reset(struct ppdb_block_builder *bb)
{
    ppdb_buf_reset(&bb->buf);
    ppdb_buf_reset(&bb->last_key);
    bb->n_restarts = 0;
    bb->counter = 0;
    bb->entries = 0;
    bb->finished = false;
}

static int push_restart(struct ppdb_block_builder *bb, uint32_t off)
{
    if (bb->n_restarts == bb->cap_restarts) {
        size_t cap = bb->cap_restarts ? bb->cap_restarts * 2 : 64;
        uint32_t *r = ppdb_realloc(bb->restarts, cap * sizeof(*r));
        if (!r)
            return PPDB_ENOMEM;
        bb->restarts = r;
        bb->cap_restarts = cap;
    }
    bb->restarts[bb->n_restarts++] = off;
    return 0;
}

int ppdb_block_builder_add(struct ppdb_block_builder *bb, const uint8_t *key, size_t klen,
                           const uint8_t *value, size_t vlen)
{
    PPDB_ASSERT(!bb->finished);
    PPDB_ASSERT(klen >= PPDB_IKEY_TRAILER);
    PPDB_ASSERT(bb->entries == 0 ||
                ppdb_ikey_cmp(bb->last_key.data, bb->last_key.len, key, klen) < 0);
    PPDB_ASSERT(bb->buf.len + klen + vlen < PPDB_SST_MAX_BLOCK);
    size_t shared = 0;
    int rc;
    if (bb->counter == bb->interval || bb->entries == 0) {
        if ((rc = push_restart(bb, (uint32_t)bb->buf.len)) != 0)
            return rc;
        bb->counter = 0;
    } else {
        size_t n = PPDB_MIN(klen, bb->last_key.len);
        while (shared < n && key[shared] == bb->last_key.data[shared])
            shared++;
    }
    uint8_t hdr[30];
    size_t h = ppdb_varint_put(hdr, shared);
    h += ppdb_varint_put(hdr + h, klen - shared);
    h += ppdb_varint_put(hdr + h, vlen);
    if ((rc = ppdb_buf_reserve(&bb->buf, h + klen - shared + vlen)) != 0)
        return rc;
    ppdb_buf_append(&bb->buf, hdr, h);
    ppdb_buf_append(&bb->buf, key + shared, klen - shared);
    if (vlen)
        ppdb_buf_append(&bb->buf, value, vlen);
    /* last_key keeps its shared prefix; only the tail changes. */
    bb->last_key.len = shared;
    if ((rc = ppdb_buf_append(&bb->last_key, key + shared, klen - shared)) != 0)
        return rc;
    bb->counter++;
    bb->entries++;
    return 0;
}

size_t ppdb_block_builder_size(const struct ppdb_block_builder *bb)
{
    size_t n = bb->n_restarts ? bb->n_restarts : 1;
    return bb->buf.len + 4 * n + 4;
}

int ppdb_block_builder_finish(struct ppdb_block_builder *bb)
{
    PPDB_ASSERT(!bb->finished);
    int rc;
    if (bb->n_restarts == 0 && (rc = push_restart(bb, 0)) != 0)
        return rc;
    if ((rc = ppdb_buf_reserve(&bb->buf, 4 * bb->n_restarts + 4)) != 0)
        return rc;
    for (size_t i = 0; i < bb->n_restarts; i++)
        ppdb_buf_append_u32le(&bb->buf, bb->restarts[i]);
    ppdb_buf_append_u32le(&bb->buf, (uint32_t)bb->n_restarts);
    bb->finished = true;
    return 0;
}

/* ------------------------------------------------------------------ parse */

int ppdb_block_parse(struct ppdb_block *blk, const uint8_t *data, size_t size)
{
    if (size < 8 || size > PPDB_SST_MAX_BLOCK)
        return PPDB_ECORRUPT;
    uint32_t n = ppdb_load_u32le(data + size - 4);
    if (n == 0 || n > (size - 4) / 4)
        return PPDB_ECORRUPT;
    uint32_t roff = (uint32_t)(size - 4 - 4 * (size_t)n);
    if (roff == 0) { /* an empty block: one restart at 0 */
        if (n != 1 || ppdb_load_u32le(data) != 0)
            return PPDB_ECORRUPT;
        goto done;
    }
    /* Restart offsets must be ascending and inside the entries area. */
    uint32_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = ppdb_load_u32le(data + roff + 4 * (size_t)i);
        if (r >= roff || (i > 0 && r <= prev) || (i == 0 && r != 0))
            return PPDB_ECORRUPT;
        prev = r;
    }
done:
    blk->data = data;
    blk->size = (uint32_t)size;
    blk->restarts_off = roff;
    blk->n_restarts = n;
    return 0;
}

static inline uint32_t restart_at(const struct ppdb_block *blk, uint32_t i)
{
    return ppdb_load_u32le(blk->data + blk->restarts_off + 4 * (size_t)i);
}

/* --------------------------------------------------------------- iterator */

void ppdb_block_iter_init(struct ppdb_block_iter *it, const struct ppdb_block *blk)
{
    memset(it, 0, sizeof(*it));
    ppdb_buf_init(&it->key);
    it->blk = blk;
    it->cur = blk->restarts_off;
    it->next_off = blk->restarts_off;
}

void ppdb_block_iter_deinit(struct ppdb_block_iter *it)
{
    ppdb_buf_deinit(&it->key);
}

static void set_corrupt(struct ppdb_block_iter *it)
{
    it->status = PPDB_ECORRUPT;
    it->cur = it->blk->restarts_off;
    it->next_off = it->cur;
}

/* Reads one varint below limit; fast path for one-byte values. */
static inline const uint8_t *get_varint32(const uint8_t *p, const uint8_t *limit, uint32_t *v)
{
    if (PPDB_LIKELY(p < limit && *p < 0x80)) {
        *v = *p;
        return p + 1;
    }
    uint32_t r = 0;
    for (unsigned shift = 0; shift <= 28 && p < limit; shift += 7) {
        uint32_t b = *p++;
        r |= (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return p;
        }
    }
    return NULL;
}

/* Decodes the entry at it->next_off into key/value. false on corruption. */
static bool parse_next(struct ppdb_block_iter *it)
{
    const struct ppdb_block *blk = it->blk;
    const uint8_t *p = blk->data + it->next_off;
    const uint8_t *limit = blk->data + blk->restarts_off;
    uint32_t shared, unshared, vlen;
    if ((p = get_varint32(p, limit, &shared)) == NULL ||
        (p = get_varint32(p, limit, &unshared)) == NULL ||
        (p = get_varint32(p, limit, &vlen)) == NULL)
        return false;
    if (shared > it->key.len || (size_t)(limit - p) < (size_t)unshared + vlen)
        return false;
    if (shared + unshared < PPDB_IKEY_TRAILER)
        return false;
    it->key.len = shared;
    if (ppdb_buf_append(&it->key, p, unshared) != 0)
        return false;
    it->cur = it->next_off;
    it->value = p + unshared;
    it->vlen = vlen;
    it->next_off = (uint32_t)(it->value + vlen - blk->data);
    while (it->restart + 1 < blk->n_restarts && restart_at(blk, it->restart + 1) <= it->cur)
        it->restart++;
    return true;
}

static void seek_restart(struct ppdb_block_iter *it, uint32_t idx)
{
    it->key.len = 0;
    it->restart = idx;
    it->next_off = restart_at(it->blk, idx);
}

void ppdb_block_iter_seek_first(struct ppdb_block_iter *it)
{
    if (it->status)
        return;
    seek_restart(it, 0);
    if (it->next_off >= it->blk->restarts_off) {
        it->cur = it->blk->restarts_off;
        return;
    }
    if (!parse_next(it))
        set_corrupt(it);
}

void ppdb_block_iter_next(struct ppdb_block_iter *it)
{
    PPDB_ASSERT(ppdb_block_iter_valid(it));
    if (it->next_off >= it->blk->restarts_off) {
        it->cur = it->blk->restarts_off;
        return;
    }
    if (!parse_next(it))
        set_corrupt(it);
}

/* Scans from restart idx to the last entry before `stop` (an entry offset). */
static void scan_to(struct ppdb_block_iter *it, uint32_t idx, uint32_t stop)
{
    seek_restart(it, idx);
    do {
        if (!parse_next(it)) {
            set_corrupt(it);
            return;
        }
    } while (it->next_off < stop);
}

void ppdb_block_iter_seek_last(struct ppdb_block_iter *it)
{
    if (it->status)
        return;
    uint32_t end = it->blk->restarts_off;
    if (end == 0) {
        it->cur = end;
        return;
    }
    scan_to(it, it->blk->n_restarts - 1, end);
}

void ppdb_block_iter_prev(struct ppdb_block_iter *it)
{
    PPDB_ASSERT(ppdb_block_iter_valid(it));
    uint32_t orig = it->cur;
    uint32_t idx = it->restart;
    while (restart_at(it->blk, idx) >= orig) {
        if (idx == 0) { /* no entry before the first */
            it->cur = it->blk->restarts_off;
            it->next_off = it->cur;
            return;
        }
        idx--;
    }
    scan_to(it, idx, orig);
}

/* Compares the full key stored at a restart point with target. */
static bool restart_key_less(struct ppdb_block_iter *it, uint32_t idx, const uint8_t *target,
                             size_t tlen, bool *ok)
{
    const struct ppdb_block *blk = it->blk;
    const uint8_t *p = blk->data + restart_at(blk, idx);
    const uint8_t *limit = blk->data + blk->restarts_off;
    uint32_t shared, unshared, vlen;
    if ((p = get_varint32(p, limit, &shared)) == NULL ||
        (p = get_varint32(p, limit, &unshared)) == NULL ||
        (p = get_varint32(p, limit, &vlen)) == NULL || shared != 0 ||
        (size_t)(limit - p) < unshared || unshared < PPDB_IKEY_TRAILER) {
        *ok = false;
        return false;
    }
    return ppdb_ikey_cmp(p, unshared, target, tlen) < 0;
}

void ppdb_block_iter_seek(struct ppdb_block_iter *it, const uint8_t *target, size_t tlen)
{
    PPDB_ASSERT(tlen >= PPDB_IKEY_TRAILER);
    if (it->status)
        return;
    /* Last restart whose key < target: the target's entry is after it. */
    uint32_t lo = 0, hi = it->blk->n_restarts - 1;
    bool ok = true;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (restart_key_less(it, mid, target, tlen, &ok))
            lo = mid;
        else
            hi = mid - 1;
        if (!ok) {
            set_corrupt(it);
            return;
        }
    }
    seek_restart(it, lo);
    for (;;) {
        if (it->next_off >= it->blk->restarts_off) {
            it->cur = it->blk->restarts_off;
            return;
        }
        if (!parse_next(it)) {
            set_corrupt(it);
            return;
        }
        if (ppdb_ikey_cmp(it->key.data, it->key.len, target, tlen) >= 0)
            return;
    }
}
