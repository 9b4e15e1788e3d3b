/*
 * iter.c - the user-facing iterator (ppdb_db_iter_new): user keys in order,
 * both ways, over a pinned view, with snapshots and bounds.
 *
 * It sits on the internal merge (merge.c) of the memtables and the tables
 * of the version pinned at creation (the children hold the references, so
 * nothing it reads can be freed or deleted under it), and turns internal
 * entries into user entries the way a get does: for each user key the
 * first entry with seq <= the read sequence is the winner (entries come
 * highest version first, then latest write); a key whose winner is a
 * tombstone or an expired TTL value is skipped.
 *
 * Forward, the merge stands AT the winner of the current key, and key and
 * value point into it (no copy). Backward, entries of a key arrive worst
 * first, so the iterator walks back over the whole key, keeps a copy of the
 * best visible entry seen, and stops at the first visible entry of an
 * earlier key: the merge then stands BEFORE the current key, whose key and
 * value live in saved_key / saved_val. A turn re-seeks around the current
 * key (as LevelDB's DBIter does).
 *
 * Bounds. Tables wholly outside [lower, upper) are not added to the merge
 * at all; seeks are clamped into the range, and a move stops at the first
 * key outside it without reading further.
 *
 * Invariants: valid implies the current key is in [lower, upper), its
 * winner is visible and alive; once status is set the iterator is invalid.
 */
#include "db_int.h"

struct ppdb_iter {
    struct ppdb_db *db;
    struct iter *merge;
    uint64_t seq;   /* read sequence */
    int64_t now_ms; /* expiry is judged at this time (creation) */
    struct ppdb_buf lower, upper;
    bool has_lower, has_upper;
    bool valid, backward;
    int status;
    struct ppdb_buf saved_key; /* forward: key being skipped; backward: current key */
    struct ppdb_buf saved_val; /* backward: current value (user part) */
    struct ppdb_buf seek;      /* scratch for internal seek keys */
    const uint8_t *key, *val;  /* current entry */
    size_t klen, vlen;
    uint64_t version;
};

static bool above_upper(const struct ppdb_iter *it, const uint8_t *k, size_t n)
{
    return it->has_upper && ppdb_ukey_cmp(k, n, it->upper.data, it->upper.len) >= 0;
}

static bool below_lower(const struct ppdb_iter *it, const uint8_t *k, size_t n)
{
    return it->has_lower && ppdb_ukey_cmp(k, n, it->lower.data, it->lower.len) < 0;
}

static void set_invalid(struct ppdb_iter *it, int st)
{
    it->valid = false;
    if (!it->status)
        it->status = st ? st : it->merge->ops->status(it->merge);
}

/* From the merge's position forward: the first live winner whose key is
 * not saved_key (when skipping) and below the upper bound. */
static void find_next(struct ppdb_iter *it, bool skipping)
{
    struct iter *m = it->merge;
    it->backward = false;
    for (; m->ops->valid(m); m->ops->next(m)) {
        size_t kl, vl;
        const uint8_t *k = m->ops->key(m, &kl);
        struct ppdb_ikey ik;
        if (ppdb_ikey_decode(k, kl, &ik)) {
            set_invalid(it, PPDB_ECORRUPT);
            return;
        }
        if (above_upper(it, ik.ukey, ik.ulen))
            break;
        if (ik.seq > it->seq)
            continue; /* written after the read sequence */
        if (skipping && ppdb_ukey_cmp(ik.ukey, ik.ulen, it->saved_key.data, it->saved_key.len) == 0)
            continue; /* an older entry of a key already decided */
        const uint8_t *v = m->ops->value(m, &vl);
        if (ppdb_entry_dead(ik.type, v, vl, it->now_ms)) {
            ppdb_buf_reset(&it->saved_key);
            if (ppdb_buf_append(&it->saved_key, ik.ukey, ik.ulen)) {
                set_invalid(it, PPDB_ENOMEM);
                return;
            }
            skipping = true;
            continue;
        }
        it->key = ik.ukey;
        it->klen = ik.ulen;
        it->val = ppdb_entry_user_value(ik.type, v, vl, &it->vlen);
        it->version = ik.version;
        it->valid = true;
        return;
    }
    set_invalid(it, 0);
}

/* Keeps a copy of the entry as the best of the current key so far. */
static int save_entry(struct ppdb_iter *it, const struct ppdb_ikey *ik, const uint8_t *v, size_t vl)
{
    size_t ul;
    const uint8_t *u = ppdb_entry_user_value(ik->type, v, vl, &ul);
    ppdb_buf_reset(&it->saved_key);
    ppdb_buf_reset(&it->saved_val);
    it->version = ik->version;
    int rc = ppdb_buf_append(&it->saved_key, ik->ukey, ik->ulen);
    return rc ? rc : ppdb_buf_append(&it->saved_val, u, ul);
}

/* From the merge's position backward: the last live winner at or above the
 * lower bound. */
static void find_prev(struct ppdb_iter *it)
{
    struct iter *m = it->merge;
    bool have = false;
    it->backward = true;
    for (; m->ops->valid(m); m->ops->prev(m)) {
        size_t kl, vl;
        const uint8_t *k = m->ops->key(m, &kl);
        struct ppdb_ikey ik;
        if (ppdb_ikey_decode(k, kl, &ik)) {
            set_invalid(it, PPDB_ECORRUPT);
            return;
        }
        if (below_lower(it, ik.ukey, ik.ulen))
            break;
        if (ik.seq > it->seq)
            continue;
        if (have && ppdb_ukey_cmp(ik.ukey, ik.ulen, it->saved_key.data, it->saved_key.len) < 0)
            break; /* the first visible entry of an earlier key */
        const uint8_t *v = m->ops->value(m, &vl);
        if (ppdb_entry_dead(ik.type, v, vl, it->now_ms)) {
            have = false; /* a better entry of this key is dead so far */
        } else {
            int rc = save_entry(it, &ik, v, vl);
            if (rc) {
                set_invalid(it, rc);
                return;
            }
            have = true;
        }
    }
    if (!have || it->status) {
        set_invalid(it, 0);
        return;
    }
    it->key = it->saved_key.data;
    it->klen = it->saved_key.len;
    it->val = it->saved_val.data;
    it->vlen = it->saved_val.len;
    it->valid = true;
}

/* Internal seek to user key k followed by a 16-byte trailer of `fill`
 * (0x00: before every entry of k; 0xff: after every entry of k). */
static bool merge_seek_user(struct ppdb_iter *it, const uint8_t *k, size_t n, uint8_t fill)
{
    ppdb_buf_reset(&it->seek);
    if (ppdb_buf_reserve(&it->seek, n + PPDB_IKEY_TRAILER)) {
        set_invalid(it, PPDB_ENOMEM);
        return false;
    }
    if (n)
        memcpy(it->seek.data, k, n);
    memset(it->seek.data + n, fill, PPDB_IKEY_TRAILER);
    it->seek.len = n + PPDB_IKEY_TRAILER;
    it->merge->ops->seek(it->merge, it->seek.data, it->seek.len);
    return true;
}

/* Places the merge on the last entry < user key k (+ trailer fill). */
static void merge_seek_before(struct ppdb_iter *it, const uint8_t *k, size_t n, uint8_t fill)
{
    struct iter *m = it->merge;
    if (!merge_seek_user(it, k, n, fill))
        return;
    if (m->ops->valid(m))
        m->ops->prev(m);
    else if (!m->ops->status(m))
        m->ops->seek_last(m);
}

void ppdb_iter_seek(struct ppdb_iter *it, const void *key, size_t klen)
{
    PPDB_ASSERT(it && (key || klen == 0));
    if (it->status)
        return;
    if (below_lower(it, key, klen)) {
        key = it->lower.data;
        klen = it->lower.len;
    }
    if (above_upper(it, key, klen)) {
        set_invalid(it, 0);
        return;
    }
    if (merge_seek_user(it, key, klen, 0x00))
        find_next(it, false);
}

void ppdb_iter_seek_first(struct ppdb_iter *it)
{
    PPDB_ASSERT(it);
    if (it->status)
        return;
    if (it->has_lower) {
        ppdb_iter_seek(it, it->lower.data, it->lower.len);
        return;
    }
    it->merge->ops->seek_first(it->merge);
    find_next(it, false);
}

void ppdb_iter_seek_last(struct ppdb_iter *it)
{
    PPDB_ASSERT(it);
    if (it->status)
        return;
    if (it->has_upper)
        merge_seek_before(it, it->upper.data, it->upper.len, 0x00);
    else
        it->merge->ops->seek_last(it->merge);
    if (!it->status)
        find_prev(it);
}

void ppdb_iter_seek_for_prev(struct ppdb_iter *it, const void *key, size_t klen)
{
    PPDB_ASSERT(it && (key || klen == 0));
    if (it->status)
        return;
    if (above_upper(it, key, klen)) {
        ppdb_iter_seek_last(it);
        return;
    }
    if (below_lower(it, key, klen)) {
        set_invalid(it, 0);
        return;
    }
    merge_seek_before(it, key, klen, 0xff);
    if (!it->status)
        find_prev(it);
}

void ppdb_iter_next(struct ppdb_iter *it)
{
    PPDB_ASSERT(it && it->valid);
    if (it->backward) { /* the merge stands before the current key */
        if (merge_seek_user(it, it->saved_key.data, it->saved_key.len, 0x00))
            find_next(it, true);
        return;
    }
    ppdb_buf_reset(&it->saved_key);
    if (ppdb_buf_append(&it->saved_key, it->key, it->klen)) {
        set_invalid(it, PPDB_ENOMEM);
        return;
    }
    it->merge->ops->next(it->merge);
    find_next(it, true);
}

void ppdb_iter_prev(struct ppdb_iter *it)
{
    PPDB_ASSERT(it && it->valid);
    if (!it->backward) { /* the merge stands at the current key's winner */
        ppdb_buf_reset(&it->saved_key);
        if (ppdb_buf_append(&it->saved_key, it->key, it->klen)) {
            set_invalid(it, PPDB_ENOMEM);
            return;
        }
        merge_seek_before(it, it->saved_key.data, it->saved_key.len, 0x00);
        if (it->status)
            return;
    }
    find_prev(it);
}

bool ppdb_iter_valid(const struct ppdb_iter *it)
{
    return it->valid;
}

const void *ppdb_iter_key(const struct ppdb_iter *it, size_t *len_out)
{
    PPDB_ASSERT(it->valid);
    *len_out = it->klen;
    return it->key;
}

const void *ppdb_iter_value(const struct ppdb_iter *it, size_t *len_out)
{
    PPDB_ASSERT(it->valid);
    *len_out = it->vlen;
    return it->val;
}

uint64_t ppdb_iter_version(const struct ppdb_iter *it)
{
    PPDB_ASSERT(it->valid);
    return it->version;
}

int ppdb_iter_status(const struct ppdb_iter *it)
{
    return it->status;
}

void ppdb_iter_free(struct ppdb_iter *it)
{
    if (!it)
        return;
    iter_free(it->merge);
    ppdb_buf_deinit(&it->lower);
    ppdb_buf_deinit(&it->upper);
    ppdb_buf_deinit(&it->saved_key);
    ppdb_buf_deinit(&it->saved_val);
    ppdb_buf_deinit(&it->seek);
    ppdb_free(it);
}

/* ------------------------------------------------------------- creation */

/* Whether table f may hold user keys in [lower, upper). */
static bool in_bounds(const struct ppdb_iter *it, const struct vfile *f)
{
    size_t sl, ll;
    const uint8_t *s = vfile_ukey(&f->smallest, &sl);
    const uint8_t *l = vfile_ukey(&f->largest, &ll);
    return !below_lower(it, l, ll) && !above_upper(it, s, sl);
}

struct kids {
    struct iter **a;
    size_t n, cap;
};

static int kids_add(struct kids *k, struct iter *child)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 16;
        struct iter **a = ppdb_realloc(k->a, cap * sizeof(*a));
        if (!a) {
            iter_free(child);
            return PPDB_ENOMEM;
        }
        k->a = a;
        k->cap = cap;
    }
    k->a[k->n++] = child;
    return 0;
}

/* Children for the pinned state: memtables, the level-0 tables in bounds,
 * and per deeper level the run of its tables in bounds. */
static int build_kids(struct ppdb_iter *it, const struct db_pin *p, struct kids *k)
{
    struct iter *c = NULL;
    int rc = iter_mem_new(p->mem, &c);
    if (!rc)
        rc = kids_add(k, c);
    if (!rc && p->imm && (rc = iter_mem_new(p->imm, &c)) == 0)
        rc = kids_add(k, c);
    const struct version *v = p->v;
    for (size_t i = 0; !rc && i < v->nfiles[0]; i++)
        if (in_bounds(it, v->files[0][i]) &&
            (rc = iter_table_new(it->db->tc, v->files[0][i], &c)) == 0)
            rc = kids_add(k, c);
    for (int l = 1; !rc && l < PPDB_NUM_LEVELS; l++) {
        size_t b = it->has_lower ? version_find_file(v, l, it->lower.data, it->lower.len) : 0;
        size_t e = b;
        while (e < v->nfiles[l] && in_bounds(it, v->files[l][e]))
            e++;
        if (e > b && (rc = iter_files_new(it->db->tc, v->files[l] + b, e - b, &c)) == 0)
            rc = kids_add(k, c);
    }
    return rc;
}

static int copy_bound(struct ppdb_buf *b, bool *has, const void *p, size_t n)
{
    *has = p != NULL;
    return p && n ? ppdb_buf_append(b, p, n) : 0;
}

int ppdb_db_iter_new(struct ppdb_db *db, const struct ppdb_iter_options *opts,
                     struct ppdb_iter **it_out)
{
    PPDB_ASSERT(db && it_out);
    struct ppdb_iter_options none = {0};
    const struct ppdb_iter_options *o = opts ? opts : &none;
    struct ppdb_iter *it = ppdb_calloc(1, sizeof(*it));
    if (!it)
        return PPDB_ENOMEM;
    it->db = db;
    ppdb_buf_init(&it->lower);
    ppdb_buf_init(&it->upper);
    ppdb_buf_init(&it->saved_key);
    ppdb_buf_init(&it->saved_val);
    ppdb_buf_init(&it->seek);
    int rc = copy_bound(&it->lower, &it->has_lower, o->lower_bound, o->lower_len);
    if (!rc)
        rc = copy_bound(&it->upper, &it->has_upper, o->upper_bound, o->upper_len);
    struct kids k = {0};
    struct db_pin pin;
    db_pin(db, o->snapshot, &pin);
    it->seq = pin.seq;
    it->now_ms = db->fs->ops->wall_ms(db->fs);
    if (!rc)
        rc = build_kids(it, &pin, &k);
    db_unpin(&pin);
    if (!rc)
        rc = iter_merge_new(k.a, k.n, &it->merge);
    else
        for (size_t i = 0; i < k.n; i++)
            iter_free(k.a[i]);
    ppdb_free(k.a);
    if (rc) {
        ppdb_iter_free(it);
        return rc;
    }
    *it_out = it;
    return 0;
}
