/*
 * version.c - versions (the live tables per level), version edits and the
 * MANIFEST that records them.
 *
 * A version is an immutable, refcounted set of table files per level. The
 * db holds the current one; a reader holds it through the db's super
 * version (db.c) and searches it without the mutex while a flush or a
 * compaction installs a successor. Files are refcounted too: an edit that
 * removes a file marks it obsolete, and the last reference to it (held by
 * whichever version or reader lets go last) hands back the reader a get
 * pinned to it (tcache.c) and deletes it from the directory. So a reader
 * holding an old version keeps its files readable, and no file a live
 * version names is ever deleted.
 *
 * The MANIFEST-NNNNNN file is a log of version edits, each record framed by
 * its length (stored twice, so a flipped length bit is corruption and not a
 * torn tail) and a CRC32C; its first record is a snapshot of the whole
 * state, each later record one change. CURRENT (one
 * line, written with ppdb_fs_write_atomic) names the live manifest. A new
 * manifest is started at open, after a failed append, and when the current
 * one passes PPDB_MANIFEST_MAX_BYTES. Byte layout: docs/formats/manifest.md.
 *
 * Invariants: level 0 is sorted by file number, newest first; levels >= 1
 * by smallest key with disjoint user-key ranges (a user key lives in one
 * file per level); an edit reaches the version only after it was synced.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine_int.h"

enum edit_tag {
    TAG_LOG_NUMBER = 1,
    TAG_NEXT_FILE = 2,
    TAG_LAST_SEQ = 3,
    TAG_COMPACT_POINTER = 4,
    TAG_DELETED_FILE = 5,
    TAG_NEW_FILE = 6,
    TAG_FORMAT = 7
};

#define PPDB_MANIFEST_FORMAT   2u  /* format 1 was the single-file MANIFEST */
#define PPDB_MANIFEST_NAME_MAX 32u /* "MANIFEST-" + up to 20 digits + NUL */
#define EDIT_MAX_ENTRIES       1000000u

_Static_assert(TAG_FORMAT == 7 && TAG_NEW_FILE == 6, "tags are part of the format");
_Static_assert(PPDB_NUM_LEVELS <= 255, "a level fits one byte");
_Static_assert(sizeof(PPDB_MANIFEST_PREFIX) - 1 + 20 < PPDB_MANIFEST_NAME_MAX, "name fits");
_Static_assert(PPDB_MANIFEST_REC_HEADER == 4 + 4 + 4, "length, ~length, crc");

/* --------------------------------------------------------------- records */

int manifest_append(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t *p, size_t n)
{
    PPDB_ASSERT(n > 0 && n <= PPDB_MANIFEST_MAX_RECORD);
    struct ppdb_buf rec;
    ppdb_buf_init(&rec);
    int rc = ppdb_buf_reserve(&rec, PPDB_MANIFEST_REC_HEADER + n);
    if (!rc) {
        ppdb_buf_append_u32le(&rec, (uint32_t)n);
        ppdb_buf_append_u32le(&rec, ~(uint32_t)n);
        ppdb_buf_append_u32le(&rec, ppdb_crc32c_mask(ppdb_crc32c(p, n)));
        ppdb_buf_append(&rec, p, n);
        rc = fs->ops->append(fs, f, rec.data, rec.len); /* one append: one torn record at most */
    }
    ppdb_buf_deinit(&rec);
    return rc;
}

int manifest_parse(const uint8_t *p, size_t n, manifest_record_cb cb, void *arg,
                   uint64_t *torn_off_out, uint64_t *bad_off_out)
{
    size_t off = 0;
    *torn_off_out = UINT64_MAX;
    *bad_off_out = 0;
    while (off < n) {
        size_t left = n - off;
        if (left < PPDB_MANIFEST_REC_HEADER) {
            *torn_off_out = off;
            return 0;
        }
        uint32_t len = ppdb_load_u32le(p + off), check = ppdb_load_u32le(p + off + 4);
        uint32_t crc = ppdb_crc32c_unmask(ppdb_load_u32le(p + off + 8));
        if (len != ~check || len == 0 || len > PPDB_MANIFEST_MAX_RECORD) {
            *bad_off_out = off;
            return PPDB_ECORRUPT;
        }
        if (left - PPDB_MANIFEST_REC_HEADER < len) {
            *torn_off_out = off;
            return 0;
        }
        const uint8_t *rec = p + off + PPDB_MANIFEST_REC_HEADER;
        if (ppdb_crc32c(rec, len) != crc) {
            *bad_off_out = off;
            return PPDB_ECORRUPT;
        }
        int rc = cb(arg, rec, len);
        if (rc) {
            *bad_off_out = off;
            return rc;
        }
        off += PPDB_MANIFEST_REC_HEADER + len;
    }
    return 0;
}

/* ------------------------------------------------------------------ files */

struct vfile *vfile_new(uint64_t number, uint64_t size, uint64_t max_version, uint64_t max_seq)
{
    struct vfile *f = ppdb_calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->number = number;
    f->size = size;
    f->max_version = max_version;
    f->max_seq = max_seq;
    f->may_drop = true; /* unknown: the writer of a new table clears it */
    ppdb_buf_init(&f->smallest);
    ppdb_buf_init(&f->largest);
    atomic_init(&f->refs, 1);
    atomic_init(&f->obsolete, false);
    atomic_init(&f->pinned, NULL);
    return f;
}

void vfile_ref(struct vfile *f)
{
    atomic_fetch_add(&f->refs, 1);
}

static void delete_table(struct vset *vs, uint64_t number)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%06" PRIu64 ".sst", vs->dir, number);
    if (vs->tc)
        tcache_evict(vs->tc, number);
    int rc = vs->fs->ops->remove(vs->fs, path);
    if (rc && rc != PPDB_ENOENT)
        PPDB_LOG(vs->lg, PPDB_LOG_WARN, "engine", "cannot delete obsolete table", "file=%s err=%s",
                 path, ppdb_errname(rc));
    else
        atomic_fetch_add(&vs->deleted_files, 1);
}

void vfile_unref(struct vfile *f)
{
    int old = atomic_fetch_sub(&f->refs, 1);
    PPDB_ASSERT_CMP(old, >, 0);
    if (old != 1)
        return;
    if (f->owner && f->owner->tc)
        tcache_unpin(f->owner->tc, f); /* before the table may be deleted */
    if (atomic_load(&f->obsolete) && f->owner)
        delete_table(f->owner, f->number);
    ppdb_buf_deinit(&f->smallest);
    ppdb_buf_deinit(&f->largest);
    ppdb_free(f);
}

/* --------------------------------------------------------------- versions */

struct version *version_new(void)
{
    struct version *v = ppdb_calloc(1, sizeof(*v));
    if (v)
        atomic_init(&v->refs, 1);
    return v;
}

void version_ref(struct version *v)
{
    atomic_fetch_add(&v->refs, 1);
}

void version_unref(struct version *v)
{
    if (!v)
        return;
    int old = atomic_fetch_sub(&v->refs, 1);
    PPDB_ASSERT_CMP(old, >, 0);
    if (old != 1)
        return;
    for (int l = 0; l < PPDB_NUM_LEVELS; l++) {
        for (size_t i = 0; i < v->nfiles[l]; i++)
            vfile_unref(v->files[l][i]);
        ppdb_free(v->files[l]);
    }
    ppdb_free(v);
}

uint64_t version_level_bytes(const struct version *v, int level)
{
    uint64_t n = 0;
    for (size_t i = 0; i < v->nfiles[level]; i++)
        n += v->files[level][i]->size;
    return n;
}

static int cmp_l0(const void *a, const void *b)
{
    const struct vfile *x = *(struct vfile *const *)a, *y = *(struct vfile *const *)b;
    return x->number < y->number ? 1 : x->number > y->number ? -1 : 0;
}

static int cmp_smallest(const void *a, const void *b)
{
    const struct vfile *x = *(struct vfile *const *)a, *y = *(struct vfile *const *)b;
    int c = ppdb_ikey_cmp(x->smallest.data, x->smallest.len, y->smallest.data, y->smallest.len);
    return c ? c : (x->number > y->number) - (x->number < y->number);
}

static bool edit_deletes(const struct version_edit *e, int level, uint64_t number)
{
    for (size_t i = 0; i < e->ndeleted; i++)
        if (e->deleted[i].level == level && e->deleted[i].number == number)
            return true;
    return false;
}

static int build_level(const struct version *base, const struct version_edit *e, int l,
                       struct version *v)
{
    size_t cap = base->nfiles[l] + e->nadded, n = 0, kept = 0;
    struct vfile **fs = ppdb_calloc(cap ? cap : 1, sizeof(*fs));
    if (!fs)
        return PPDB_ENOMEM;
    for (size_t i = 0; i < base->nfiles[l]; i++)
        if (!edit_deletes(e, l, base->files[l][i]->number))
            fs[n++] = base->files[l][i];
    kept = n;
    for (size_t i = 0; i < e->nadded; i++)
        if (e->added[i].level == l)
            fs[n++] = e->added[i].f;
    for (size_t i = 0; i < n; i++)
        vfile_ref(fs[i]);
    v->files[l] = fs;
    v->nfiles[l] = n;
    if (n == kept && l == 0)
        return 0;
    qsort(fs, n, sizeof(*fs), l == 0 ? cmp_l0 : cmp_smallest);
    for (size_t i = 1; l > 0 && i < n; i++) {
        size_t a, b;
        const uint8_t *pa = vfile_ukey(&fs[i - 1]->largest, &a);
        const uint8_t *pb = vfile_ukey(&fs[i]->smallest, &b);
        if (ppdb_ukey_cmp(pa, a, pb, b) >= 0)
            return PPDB_ECORRUPT; /* overlapping files in one level */
    }
    return 0;
}

int version_apply(const struct version *base, const struct version_edit *e, struct version **out)
{
    size_t found = 0;
    for (size_t i = 0; i < e->ndeleted; i++) {
        const struct edit_del *d = &e->deleted[i];
        for (size_t j = 0; d->level < PPDB_NUM_LEVELS && j < base->nfiles[d->level]; j++)
            found += base->files[d->level][j]->number == d->number;
    }
    if (found != e->ndeleted)
        return PPDB_ECORRUPT; /* deletes a file the version does not hold */
    struct version *v = version_new();
    if (!v)
        return PPDB_ENOMEM;
    int rc = 0;
    for (int l = 0; !rc && l < PPDB_NUM_LEVELS; l++)
        rc = build_level(base, e, l, v);
    if (rc) {
        version_unref(v);
        return rc;
    }
    *out = v;
    return 0;
}

static bool before_range(const struct vfile *f, const uint8_t *b, size_t blen)
{
    size_t n;
    const uint8_t *k = vfile_ukey(&f->largest, &n);
    return b && ppdb_ukey_cmp(k, n, b, blen) < 0;
}

static bool after_range(const struct vfile *f, const uint8_t *e, size_t elen)
{
    size_t n;
    const uint8_t *k = vfile_ukey(&f->smallest, &n);
    return e && ppdb_ukey_cmp(k, n, e, elen) > 0;
}

int version_overlaps(const struct version *v, int level, const uint8_t *b, size_t blen,
                     const uint8_t *e, size_t elen, struct vfile ***out, size_t *n)
{
    for (size_t i = 0; i < v->nfiles[level]; i++) {
        struct vfile *f = v->files[level][i];
        if (before_range(f, b, blen) || after_range(f, e, elen))
            continue;
        struct vfile **a = ppdb_realloc(*out, (*n + 1) * sizeof(**out));
        if (!a)
            return PPDB_ENOMEM;
        *out = a;
        a[(*n)++] = f;
    }
    return 0;
}

size_t version_find_file(const struct version *v, int level, const uint8_t *ukey, size_t ulen)
{
    size_t lo = 0, hi = v->nfiles[level];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2, n;
        const uint8_t *k = vfile_ukey(&v->files[level][mid]->largest, &n);
        if (ppdb_ukey_cmp(k, n, ukey, ulen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ------------------------------------------------------------------ edits */

void edit_init(struct version_edit *e)
{
    memset(e, 0, sizeof(*e));
    for (int l = 0; l < PPDB_NUM_LEVELS; l++)
        ppdb_buf_init(&e->cpointer[l]);
}

void edit_deinit(struct version_edit *e)
{
    for (size_t i = 0; i < e->nadded; i++)
        vfile_unref(e->added[i].f);
    ppdb_free(e->added);
    ppdb_free(e->deleted);
    for (int l = 0; l < PPDB_NUM_LEVELS; l++)
        ppdb_buf_deinit(&e->cpointer[l]);
    memset(e, 0, sizeof(*e));
}

int edit_add_file(struct version_edit *e, int level, struct vfile *f)
{
    PPDB_ASSERT(level >= 0 && level < PPDB_NUM_LEVELS);
    if (e->nadded == e->cap_added) {
        size_t cap = e->cap_added ? 2 * e->cap_added : 8;
        struct edit_file *a = ppdb_realloc(e->added, cap * sizeof(*a));
        if (!a)
            return PPDB_ENOMEM;
        e->added = a;
        e->cap_added = cap;
    }
    vfile_ref(f);
    e->added[e->nadded++] = (struct edit_file){.level = level, .f = f};
    return 0;
}

int edit_del_file(struct version_edit *e, int level, uint64_t number)
{
    PPDB_ASSERT(level >= 0 && level < PPDB_NUM_LEVELS);
    if (e->ndeleted == e->cap_deleted) {
        size_t cap = e->cap_deleted ? 2 * e->cap_deleted : 8;
        struct edit_del *a = ppdb_realloc(e->deleted, cap * sizeof(*a));
        if (!a)
            return PPDB_ENOMEM;
        e->deleted = a;
        e->cap_deleted = cap;
    }
    e->deleted[e->ndeleted++] = (struct edit_del){.level = level, .number = number};
    return 0;
}

int edit_set_cpointer(struct version_edit *e, int level, const uint8_t *k, size_t n)
{
    e->has_cpointer[level] = true;
    ppdb_buf_reset(&e->cpointer[level]);
    return ppdb_buf_append(&e->cpointer[level], k, n);
}

static int put_bytes(struct ppdb_buf *out, const struct ppdb_buf *b)
{
    int rc = ppdb_buf_append_varint(out, b->len);
    return rc ? rc : ppdb_buf_append(out, b->data, b->len);
}

static int encode_file(struct ppdb_buf *out, const struct edit_file *a)
{
    const struct vfile *f = a->f;
    int rc = ppdb_buf_append_u8(out, TAG_NEW_FILE);
    rc = rc ? rc : ppdb_buf_append_u8(out, (uint8_t)a->level);
    rc = rc ? rc : ppdb_buf_append_varint(out, f->number);
    rc = rc ? rc : ppdb_buf_append_varint(out, f->size);
    rc = rc ? rc : ppdb_buf_append_u64le(out, f->max_version);
    rc = rc ? rc : ppdb_buf_append_varint(out, f->max_seq);
    rc = rc ? rc : put_bytes(out, &f->smallest);
    return rc ? rc : put_bytes(out, &f->largest);
}

static int encode_counter(struct ppdb_buf *out, bool has, int tag, uint64_t v)
{
    if (!has)
        return 0;
    int rc = ppdb_buf_append_u8(out, (uint8_t)tag);
    return rc ? rc : ppdb_buf_append_varint(out, v);
}

int edit_encode(const struct version_edit *e, struct ppdb_buf *out)
{
    int rc = encode_counter(out, true, TAG_FORMAT, PPDB_MANIFEST_FORMAT);
    rc = rc ? rc : encode_counter(out, e->has_log_number, TAG_LOG_NUMBER, e->log_number);
    rc = rc ? rc : encode_counter(out, e->has_next_file, TAG_NEXT_FILE, e->next_file);
    rc = rc ? rc : encode_counter(out, e->has_last_seq, TAG_LAST_SEQ, e->last_seq);
    for (int l = 0; !rc && l < PPDB_NUM_LEVELS; l++) {
        if (!e->has_cpointer[l])
            continue;
        rc = ppdb_buf_append_u8(out, TAG_COMPACT_POINTER);
        rc = rc ? rc : ppdb_buf_append_u8(out, (uint8_t)l);
        rc = rc ? rc : put_bytes(out, &e->cpointer[l]);
    }
    for (size_t i = 0; !rc && i < e->ndeleted; i++) {
        rc = ppdb_buf_append_u8(out, TAG_DELETED_FILE);
        rc = rc ? rc : ppdb_buf_append_u8(out, (uint8_t)e->deleted[i].level);
        rc = rc ? rc : ppdb_buf_append_varint(out, e->deleted[i].number);
    }
    for (size_t i = 0; !rc && i < e->nadded; i++)
        rc = encode_file(out, &e->added[i]);
    return rc;
}

static int get_level(struct ppdb_rd *r, int *level)
{
    uint8_t l;
    if (ppdb_rd_u8(r, &l) || l >= PPDB_NUM_LEVELS)
        return PPDB_ECORRUPT;
    *level = l;
    return 0;
}

static int get_bytes(struct ppdb_rd *r, struct ppdb_buf *out, size_t min)
{
    uint64_t n;
    const uint8_t *p;
    if (ppdb_rd_varint(r, &n) || n < min || n > PPDB_DB_MAX_KEY + PPDB_IKEY_TRAILER ||
        ppdb_rd_bytes(r, (size_t)n, &p))
        return PPDB_ECORRUPT;
    ppdb_buf_reset(out);
    return ppdb_buf_append(out, p, (size_t)n);
}

static int decode_file(struct ppdb_rd *r, struct version_edit *e)
{
    int level;
    uint64_t number, size, maxv, maxs;
    if (get_level(r, &level) || ppdb_rd_varint(r, &number) || ppdb_rd_varint(r, &size) ||
        ppdb_rd_u64le(r, &maxv) || ppdb_rd_varint(r, &maxs) || maxs > PPDB_SEQ_MAX)
        return PPDB_ECORRUPT;
    struct vfile *f = vfile_new(number, size, maxv, maxs);
    if (!f)
        return PPDB_ENOMEM;
    int rc = get_bytes(r, &f->smallest, PPDB_IKEY_TRAILER);
    rc = rc ? rc : get_bytes(r, &f->largest, PPDB_IKEY_TRAILER);
    if (!rc &&
        ppdb_ikey_cmp(f->smallest.data, f->smallest.len, f->largest.data, f->largest.len) > 0)
        rc = PPDB_ECORRUPT;
    if (!rc)
        rc = edit_add_file(e, level, f);
    vfile_unref(f);
    return rc;
}

static int decode_field(struct ppdb_rd *r, uint8_t tag, struct version_edit *e)
{
    int level;
    uint64_t v;
    switch (tag) {
    case TAG_FORMAT:
        if (ppdb_rd_varint(r, &v))
            return PPDB_ECORRUPT;
        return v == PPDB_MANIFEST_FORMAT ? 0 : PPDB_EVERSION;
    case TAG_LOG_NUMBER:
        e->has_log_number = true;
        return ppdb_rd_varint(r, &e->log_number) ? PPDB_ECORRUPT : 0;
    case TAG_NEXT_FILE:
        e->has_next_file = true;
        return ppdb_rd_varint(r, &e->next_file) ? PPDB_ECORRUPT : 0;
    case TAG_LAST_SEQ:
        e->has_last_seq = true;
        if (ppdb_rd_varint(r, &e->last_seq) || e->last_seq > PPDB_SEQ_MAX)
            return PPDB_ECORRUPT;
        return 0;
    case TAG_COMPACT_POINTER:
        if (get_level(r, &level))
            return PPDB_ECORRUPT;
        e->has_cpointer[level] = true;
        return get_bytes(r, &e->cpointer[level], PPDB_IKEY_TRAILER);
    case TAG_DELETED_FILE:
        if (get_level(r, &level) || ppdb_rd_varint(r, &v))
            return PPDB_ECORRUPT;
        return edit_del_file(e, level, v);
    case TAG_NEW_FILE:
        return decode_file(r, e);
    default:
        return PPDB_ECORRUPT;
    }
}

int edit_decode(const uint8_t *p, size_t n, struct version_edit *e)
{
    edit_init(e);
    struct ppdb_rd r;
    ppdb_rd_init(&r, p, n);
    uint8_t tag;
    int rc = 0;
    bool first = true;
    while (!rc && ppdb_rd_left(&r) > 0) {
        if (ppdb_rd_u8(&r, &tag) || (first && tag != TAG_FORMAT))
            rc = PPDB_ECORRUPT; /* every record opens with its format */
        else if (e->nadded + e->ndeleted > EDIT_MAX_ENTRIES)
            rc = PPDB_ECORRUPT;
        else
            rc = decode_field(&r, tag, e);
        first = false;
    }
    if (!rc && first)
        rc = PPDB_ECORRUPT; /* an empty record */
    if (rc)
        edit_deinit(e);
    return rc;
}

/* ------------------------------------------------------------------- vset */

void vset_init(struct vset *vs, struct ppdb_fs *fs, const char *dir, struct ppdb_logger *lg)
{
    memset(vs, 0, sizeof(*vs));
    vs->fs = fs;
    vs->dir = dir;
    vs->lg = lg;
    vs->next_file = 1;
    for (int l = 0; l < PPDB_NUM_LEVELS; l++)
        ppdb_buf_init(&vs->cpointer[l]);
    atomic_init(&vs->deleted_files, 0);
}

void vset_deinit(struct vset *vs)
{
    if (vs->man_f)
        vs->fs->ops->close(vs->fs, vs->man_f);
    vs->man_f = NULL;
    for (int l = 0; l < PPDB_NUM_LEVELS; l++)
        ppdb_buf_deinit(&vs->cpointer[l]);
}

static void manifest_name(char *out, size_t cap, uint64_t number)
{
    snprintf(out, cap, PPDB_MANIFEST_PREFIX "%06" PRIu64, number);
}

static int read_current(struct vset *vs, uint64_t *number_out)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", vs->dir, PPDB_CURRENT_NAME);
    struct ppdb_buf buf;
    ppdb_buf_init(&buf);
    int rc = ppdb_fs_read_all(vs->fs, path, &buf);
    size_t plen = sizeof(PPDB_MANIFEST_PREFIX) - 1;
    if (!rc && (buf.len < plen + 2 || buf.len >= PPDB_MANIFEST_NAME_MAX ||
                buf.data[buf.len - 1] != '\n' || memcmp(buf.data, PPDB_MANIFEST_PREFIX, plen)))
        rc = PPDB_ECORRUPT;
    uint64_t n = 0;
    for (size_t i = plen; !rc && i + 1 < buf.len; i++) {
        if (buf.data[i] < '0' || buf.data[i] > '9' || n > UINT64_MAX / 10 - 1)
            rc = PPDB_ECORRUPT;
        n = n * 10 + (uint64_t)(buf.data[i] - '0');
    }
    ppdb_buf_deinit(&buf);
    *number_out = n;
    return rc;
}

/* Applies one decoded record to *v and the counters. */
static int replay_edit(struct vset *vs, struct version_edit *e, struct version **v, bool *seen)
{
    for (size_t i = 0; i < e->nadded; i++)
        e->added[i].f->owner = vs;
    struct version *nv;
    int rc = version_apply(*v, e, &nv);
    if (rc)
        return rc;
    version_unref(*v);
    *v = nv;
    if (e->has_log_number)
        vs->log_number = e->log_number;
    if (e->has_next_file)
        vs->next_file = e->next_file;
    if (e->has_last_seq)
        vs->last_seq_logged = e->last_seq;
    for (int l = 0; l < PPDB_NUM_LEVELS; l++)
        if (e->has_cpointer[l]) {
            ppdb_buf_reset(&vs->cpointer[l]);
            rc = ppdb_buf_append(&vs->cpointer[l], e->cpointer[l].data, e->cpointer[l].len);
        }
    seen[0] |= e->has_log_number;
    seen[1] |= e->has_next_file;
    seen[2] |= e->has_last_seq;
    return rc;
}

struct replay_ctx {
    struct vset *vs;
    struct version **v;
    bool seen[3];
};

static int replay_record_cb(void *arg, const uint8_t *p, size_t n)
{
    struct replay_ctx *c = arg;
    struct version_edit e;
    int rc = edit_decode(p, n, &e);
    if (!rc) {
        rc = replay_edit(c->vs, &e, c->v, c->seen);
        edit_deinit(&e);
    }
    return rc;
}

static int read_manifest(struct vset *vs, const char *path, struct version **v)
{
    uint64_t size = 0;
    int rc = vs->fs->ops->file_size(vs->fs, path, &size);
    if (rc)
        return rc == PPDB_ENOENT ? PPDB_ECORRUPT : rc; /* CURRENT names a missing file */
    if (size > PPDB_MANIFEST_MAX_FILE)
        return PPDB_ECORRUPT;
    struct ppdb_buf buf;
    ppdb_buf_init(&buf);
    rc = ppdb_fs_read_all(vs->fs, path, &buf);
    struct replay_ctx c = {.vs = vs, .v = v};
    uint64_t torn = UINT64_MAX, bad = 0;
    if (!rc)
        rc = manifest_parse(buf.data, buf.len, replay_record_cb, &c, &torn, &bad);
    ppdb_buf_deinit(&buf);
    if (!rc && torn != UINT64_MAX)
        PPDB_LOG(vs->lg, PPDB_LOG_WARN, "engine", "dropped torn manifest tail",
                 "file=%s offset=%" PRIu64, path, torn);
    if (!rc && !(c.seen[0] && c.seen[1] && c.seen[2]))
        rc = PPDB_ECORRUPT;
    return rc;
}

int vset_recover(struct vset *vs, struct version **v_out, uint64_t *last_seq_out)
{
    uint64_t number;
    int rc = read_current(vs, &number);
    if (rc)
        return rc;
    char name[PPDB_MANIFEST_NAME_MAX], path[4200];
    manifest_name(name, sizeof(name), number);
    snprintf(path, sizeof(path), "%s/%s", vs->dir, name);
    struct version *v = version_new();
    rc = v ? read_manifest(vs, path, &v) : PPDB_ENOMEM;
    if (!rc && vs->next_file <= number)
        vs->next_file = number + 1;
    if (rc) {
        version_unref(v);
        PPDB_LOG(vs->lg, PPDB_LOG_ERROR, "engine", "bad manifest", "file=%s err=%s", path,
                 ppdb_errname(rc));
        return rc;
    }
    vs->manifest_number = number;
    *v_out = v;
    *last_seq_out = vs->last_seq_logged;
    return 0;
}

int vset_snapshot_edit(const struct vset *vs, const struct version *v, uint64_t last_seq,
                       struct version_edit *e)
{
    edit_init(e);
    e->has_log_number = e->has_next_file = e->has_last_seq = true;
    e->log_number = vs->log_number;
    e->next_file = vs->next_file;
    e->last_seq = last_seq;
    int rc = 0;
    for (int l = 0; !rc && l < PPDB_NUM_LEVELS; l++) {
        if (vs->cpointer[l].len)
            rc = edit_set_cpointer(e, l, vs->cpointer[l].data, vs->cpointer[l].len);
        for (size_t i = 0; !rc && i < v->nfiles[l]; i++)
            rc = edit_add_file(e, l, v->files[l][i]);
    }
    if (rc)
        edit_deinit(e);
    return rc;
}

int vset_write_manifest(struct ppdb_fs *fs, const char *dir, uint64_t number,
                        const struct version_edit *snap, struct vset *keep_open)
{
    char name[PPDB_MANIFEST_NAME_MAX], path[4200], cur[PPDB_MANIFEST_NAME_MAX + 1];
    manifest_name(name, sizeof(name), number);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    (void)fs->ops->remove(fs, path); /* a leftover of a crash before CURRENT named it */
    struct ppdb_file *f = NULL;
    struct ppdb_buf rec;
    ppdb_buf_init(&rec);
    int rc = edit_encode(snap, &rec);
    if (!rc)
        rc = fs->ops->open(fs, path, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_EXCL, &f);
    if (!rc)
        rc = manifest_append(fs, f, rec.data, rec.len);
    if (!rc)
        rc = fs->ops->sync(fs, f);
    uint64_t size = PPDB_MANIFEST_REC_HEADER + rec.len;
    ppdb_buf_deinit(&rec);
    int n = snprintf(cur, sizeof(cur), "%s\n", name);
    if (!rc) /* also makes the manifest's own directory entry durable */
        rc = ppdb_fs_write_atomic(fs, dir, PPDB_CURRENT_NAME, cur, (size_t)n);
    if (rc || !keep_open) {
        if (f)
            fs->ops->close(fs, f);
        if (rc && f)
            (void)fs->ops->remove(fs, path);
        return rc;
    }
    if (keep_open->man_f)
        fs->ops->close(fs, keep_open->man_f);
    keep_open->man_f = f;
    keep_open->man_size = size;
    return 0;
}

/* Starts a new manifest holding v (the state after the edit). */
static int roll_manifest(struct vset *vs, const struct version *v, uint64_t last_seq)
{
    uint64_t old = vs->man_f ? vs->manifest_number : 0;
    uint64_t number = vs->next_file++;
    struct version_edit snap;
    int rc = vset_snapshot_edit(vs, v, last_seq, &snap);
    if (rc)
        return rc;
    rc = vset_write_manifest(vs->fs, vs->dir, number, &snap, vs);
    edit_deinit(&snap);
    if (rc)
        return rc;
    vs->manifest_number = number;
    vs->man_broken = false;
    if (old) {
        char name[PPDB_MANIFEST_NAME_MAX], path[4200];
        manifest_name(name, sizeof(name), old);
        snprintf(path, sizeof(path), "%s/%s", vs->dir, name);
        (void)vs->fs->ops->remove(vs->fs, path);
    }
    return 0;
}

static void note_applied(struct vset *vs, const struct version_edit *e, const struct version *base)
{
    vs->log_number = e->log_number;
    vs->last_seq_logged = e->last_seq;
    for (int l = 0; l < PPDB_NUM_LEVELS; l++)
        if (e->has_cpointer[l]) {
            ppdb_buf_reset(&vs->cpointer[l]);
            (void)ppdb_buf_append(&vs->cpointer[l], e->cpointer[l].data, e->cpointer[l].len);
        }
    /* Removed files die with the last version naming them (not moved ones). */
    for (size_t i = 0; i < e->ndeleted; i++) {
        bool moved = false;
        for (size_t j = 0; j < e->nadded; j++)
            moved |= e->added[j].f->number == e->deleted[i].number;
        int l = e->deleted[i].level;
        for (size_t j = 0; !moved && j < base->nfiles[l]; j++)
            if (base->files[l][j]->number == e->deleted[i].number)
                atomic_store(&base->files[l][j]->obsolete, true);
    }
}

int vset_log_and_apply(struct vset *vs, const struct version *base, struct version_edit *e,
                       struct version **out)
{
    if (!e->has_log_number)
        e->log_number = vs->log_number;
    if (!e->has_last_seq)
        e->last_seq = vs->last_seq_logged;
    e->has_log_number = e->has_last_seq = e->has_next_file = true;
    for (size_t i = 0; i < e->nadded; i++)
        if (!e->added[i].f->owner) /* a moved file is live: gets read its owner */
            e->added[i].f->owner = vs;
    struct version *v;
    int rc = version_apply(base, e, &v);
    if (rc)
        return rc;
    bool roll = !vs->man_f || vs->man_broken || vs->man_size >= PPDB_MANIFEST_MAX_BYTES;
    if (roll) {
        uint64_t keep_log = vs->log_number, keep_seq = vs->last_seq_logged;
        vs->log_number = e->log_number; /* the snapshot carries the edit's counters */
        rc = roll_manifest(vs, v, e->last_seq);
        if (rc)
            vs->log_number = keep_log, vs->last_seq_logged = keep_seq;
    } else {
        struct ppdb_buf rec;
        ppdb_buf_init(&rec);
        e->next_file = vs->next_file;
        rc = edit_encode(e, &rec);
        if (!rc && (rc = manifest_append(vs->fs, vs->man_f, rec.data, rec.len)) == 0)
            rc = vs->fs->ops->sync(vs->fs, vs->man_f);
        if (!rc)
            vs->man_size += PPDB_MANIFEST_REC_HEADER + rec.len;
        if (rc && rc != PPDB_ENOMEM)
            vs->man_broken = true; /* its tail is unknown: never append to it again */
        ppdb_buf_deinit(&rec);
    }
    if (rc) {
        version_unref(v);
        return rc;
    }
    note_applied(vs, e, base);
    *out = v;
    return 0;
}
