/*
 * merge.c - internal iterators over internal keys: memtable, table, level
 * and merge.
 *
 * Compaction reads its inputs through these (forward only), and the
 * user-facing iterator (iter.c, with snapshots and bounds) sits on the same
 * merge and moves both ways. Every iterator yields internal keys in
 * ppdb_ikey_cmp order (user key ascending, then version and sequence
 * descending), so a merge of sources yields each user key's entries
 * together, best first (backwards: worst first).
 *
 * A level iterator walks the files of one level >= 1 in key order and opens
 * each table through the table cache only when it reaches it, holding one
 * reader pinned at a time. The merge keeps its children's current keys and
 * picks the smallest by a linear scan: merges have a few to a few dozen
 * children (the L0 files, one per level), where a heap would not pay.
 * Ties between equal internal keys (possible only across a crash that
 * replayed a log into a table twice) go to the earlier child.
 *
 * Direction. Moving forward, every child stands at its first entry > the
 * merge's current key (the current child at the current key); backward, at
 * its last entry < it. Changing direction re-seeks the other children
 * around the current key (as in LevelDB), so one next/prev after a turn
 * costs a seek per child; runs in one direction cost one step. The memtable
 * has no back links: its prev is a skiplist search (O(log n)).
 *
 * Invariants: valid() implies key()/value() point at the current entry
 * until the next move; once status() is non-zero the iterator is invalid.
 */
#include "engine_int.h"

/* --------------------------------------------------------------- memtable */

struct mem_iterator {
    struct iter base;
    struct memtable *m;
    struct mem_node *node;
};

static void memit_seek_first(struct iter *it)
{
    struct mem_iterator *mi = (struct mem_iterator *)it;
    struct mem_iter x;
    mem_iter_first(&x, mi->m);
    mi->node = x.node;
}

static void memit_seek_last(struct iter *it)
{
    struct mem_iterator *mi = (struct mem_iterator *)it;
    mi->node = mem_find_lt(mi->m, NULL, 0);
}

static void memit_seek(struct iter *it, const uint8_t *ikey, size_t klen)
{
    struct mem_iterator *mi = (struct mem_iterator *)it;
    mi->node = mem_find_ge(mi->m, ikey, klen);
}

static void memit_next(struct iter *it)
{
    struct mem_iterator *mi = (struct mem_iterator *)it;
    struct mem_iter x = {.m = mi->m, .node = mi->node};
    mem_iter_next(&x);
    mi->node = x.node;
}

static void memit_prev(struct iter *it)
{
    struct mem_iterator *mi = (struct mem_iterator *)it;
    PPDB_ASSERT(mi->node != NULL);
    mi->node = mem_find_lt(mi->m, mi->node->ikey, mi->node->iklen);
}

static bool memit_valid(const struct iter *it)
{
    return ((const struct mem_iterator *)it)->node != NULL;
}

static const uint8_t *memit_key(const struct iter *it, size_t *len)
{
    const struct mem_node *n = ((const struct mem_iterator *)it)->node;
    *len = n->iklen;
    return n->ikey;
}

static const uint8_t *memit_value(const struct iter *it, size_t *len)
{
    const struct mem_node *n = ((const struct mem_iterator *)it)->node;
    *len = n->vlen;
    return n->value;
}

static int memit_status(const struct iter *it)
{
    (void)it;
    return 0;
}

static void memit_free(struct iter *it)
{
    struct mem_iterator *mi = (struct mem_iterator *)it;
    mem_unref(mi->m);
    ppdb_free(mi);
}

static const struct iter_ops mem_ops = {.seek_first = memit_seek_first,
                                        .seek_last = memit_seek_last,
                                        .seek = memit_seek,
                                        .next = memit_next,
                                        .prev = memit_prev,
                                        .valid = memit_valid,
                                        .key = memit_key,
                                        .value = memit_value,
                                        .status = memit_status,
                                        .free = memit_free};

int iter_mem_new(struct memtable *m, struct iter **out)
{
    struct mem_iterator *mi = ppdb_calloc(1, sizeof(*mi));
    if (!mi)
        return PPDB_ENOMEM;
    mi->base.ops = &mem_ops;
    mem_ref(m);
    mi->m = m;
    *out = &mi->base;
    return 0;
}

/* ------------------------------------------------------------------ table */

struct table_iterator {
    struct iter base;
    struct tcache *tc;
    struct vfile *f;
    struct tcache_handle *h;
    struct ppdb_table_iter *ti;
    int status;
};

static bool tabit_open(struct table_iterator *t)
{
    if (t->ti)
        return true;
    if (t->status)
        return false;
    t->status = tcache_get(t->tc, t->f, &t->h);
    if (!t->status && (t->status = ppdb_table_iter_new(tcache_table(t->h), &t->ti)) != 0) {
        tcache_release(t->tc, t->h);
        t->h = NULL;
    }
    return t->status == 0;
}

static void tabit_seek_first(struct iter *it)
{
    struct table_iterator *t = (struct table_iterator *)it;
    if (tabit_open(t))
        ppdb_table_iter_seek_first(t->ti);
}

static void tabit_seek_last(struct iter *it)
{
    struct table_iterator *t = (struct table_iterator *)it;
    if (tabit_open(t))
        ppdb_table_iter_seek_last(t->ti);
}

static void tabit_seek(struct iter *it, const uint8_t *ikey, size_t klen)
{
    struct table_iterator *t = (struct table_iterator *)it;
    if (tabit_open(t))
        ppdb_table_iter_seek(t->ti, ikey, klen);
}

static void tabit_next(struct iter *it)
{
    ppdb_table_iter_next(((struct table_iterator *)it)->ti);
}

static void tabit_prev(struct iter *it)
{
    ppdb_table_iter_prev(((struct table_iterator *)it)->ti);
}

static bool tabit_valid(const struct iter *it)
{
    const struct table_iterator *t = (const struct table_iterator *)it;
    return t->ti && ppdb_table_iter_valid(t->ti);
}

static const uint8_t *tabit_key(const struct iter *it, size_t *len)
{
    return ppdb_table_iter_key(((const struct table_iterator *)it)->ti, len);
}

static const uint8_t *tabit_value(const struct iter *it, size_t *len)
{
    return ppdb_table_iter_value(((const struct table_iterator *)it)->ti, len);
}

static int tabit_status(const struct iter *it)
{
    const struct table_iterator *t = (const struct table_iterator *)it;
    return t->status ? t->status : t->ti ? ppdb_table_iter_status(t->ti) : 0;
}

static void tabit_close(struct table_iterator *t)
{
    if (t->ti)
        ppdb_table_iter_free(t->ti);
    if (t->h)
        tcache_release(t->tc, t->h);
    t->ti = NULL;
    t->h = NULL;
}

static void tabit_free(struct iter *it)
{
    struct table_iterator *t = (struct table_iterator *)it;
    tabit_close(t);
    vfile_unref(t->f);
    ppdb_free(t);
}

static const struct iter_ops table_ops = {.seek_first = tabit_seek_first,
                                          .seek_last = tabit_seek_last,
                                          .seek = tabit_seek,
                                          .next = tabit_next,
                                          .prev = tabit_prev,
                                          .valid = tabit_valid,
                                          .key = tabit_key,
                                          .value = tabit_value,
                                          .status = tabit_status,
                                          .free = tabit_free};

int iter_table_new(struct tcache *tc, struct vfile *f, struct iter **out)
{
    struct table_iterator *t = ppdb_calloc(1, sizeof(*t));
    if (!t)
        return PPDB_ENOMEM;
    t->base.ops = &table_ops;
    t->tc = tc;
    vfile_ref(f);
    t->f = f;
    *out = &t->base;
    return 0;
}

/* ------------------------------------------------------------------ level */

struct level_iterator {
    struct iter base;
    struct tcache *tc;
    struct vfile **files; /* referenced copies */
    size_t n;
    size_t cur; /* index of the open file; n = past the end */
    struct iter *file_it;
    int status;
};

/* Opens file i (closing the previous one); positions nothing. */
static void level_open(struct level_iterator *li, size_t i)
{
    iter_free(li->file_it);
    li->file_it = NULL;
    li->cur = i;
    if (i >= li->n || li->status)
        return;
    li->status = iter_table_new(li->tc, li->files[i], &li->file_it);
}

/* Moves to the next (forward) or previous file while the current one is
 * exhausted. */
static void level_skip_empty(struct level_iterator *li, bool forward)
{
    while (li->file_it && !li->file_it->ops->valid(li->file_it)) {
        int st = li->file_it->ops->status(li->file_it);
        if (st) {
            li->status = st;
            return;
        }
        if (!forward && li->cur == 0) {
            level_open(li, li->n); /* before the first file: invalid */
            return;
        }
        level_open(li, forward ? li->cur + 1 : li->cur - 1);
        if (li->file_it && forward)
            li->file_it->ops->seek_first(li->file_it);
        else if (li->file_it)
            li->file_it->ops->seek_last(li->file_it);
    }
}

static void levit_seek_first(struct iter *it)
{
    struct level_iterator *li = (struct level_iterator *)it;
    level_open(li, 0);
    if (li->file_it)
        li->file_it->ops->seek_first(li->file_it);
    level_skip_empty(li, true);
}

static void levit_seek_last(struct iter *it)
{
    struct level_iterator *li = (struct level_iterator *)it;
    level_open(li, li->n ? li->n - 1 : 0);
    if (li->file_it)
        li->file_it->ops->seek_last(li->file_it);
    level_skip_empty(li, false);
}

static void levit_seek(struct iter *it, const uint8_t *ikey, size_t klen)
{
    struct level_iterator *li = (struct level_iterator *)it;
    size_t lo = 0, hi = li->n; /* first file whose largest key >= ikey */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct vfile *f = li->files[mid];
        if (ppdb_ikey_cmp(f->largest.data, f->largest.len, ikey, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    level_open(li, lo);
    if (li->file_it)
        li->file_it->ops->seek(li->file_it, ikey, klen);
    level_skip_empty(li, true);
}

static void levit_next(struct iter *it)
{
    struct level_iterator *li = (struct level_iterator *)it;
    li->file_it->ops->next(li->file_it);
    level_skip_empty(li, true);
}

static void levit_prev(struct iter *it)
{
    struct level_iterator *li = (struct level_iterator *)it;
    li->file_it->ops->prev(li->file_it);
    level_skip_empty(li, false);
}

static bool levit_valid(const struct iter *it)
{
    const struct level_iterator *li = (const struct level_iterator *)it;
    return !li->status && li->file_it && li->file_it->ops->valid(li->file_it);
}

static const uint8_t *levit_key(const struct iter *it, size_t *len)
{
    const struct level_iterator *li = (const struct level_iterator *)it;
    return li->file_it->ops->key(li->file_it, len);
}

static const uint8_t *levit_value(const struct iter *it, size_t *len)
{
    const struct level_iterator *li = (const struct level_iterator *)it;
    return li->file_it->ops->value(li->file_it, len);
}

static int levit_status(const struct iter *it)
{
    const struct level_iterator *li = (const struct level_iterator *)it;
    if (li->status)
        return li->status;
    return li->file_it ? li->file_it->ops->status(li->file_it) : 0;
}

static void levit_free(struct iter *it)
{
    struct level_iterator *li = (struct level_iterator *)it;
    iter_free(li->file_it);
    for (size_t i = 0; i < li->n; i++)
        vfile_unref(li->files[i]);
    ppdb_free(li->files);
    ppdb_free(li);
}

static const struct iter_ops level_ops = {.seek_first = levit_seek_first,
                                          .seek_last = levit_seek_last,
                                          .seek = levit_seek,
                                          .next = levit_next,
                                          .prev = levit_prev,
                                          .valid = levit_valid,
                                          .key = levit_key,
                                          .value = levit_value,
                                          .status = levit_status,
                                          .free = levit_free};

/* A level iterator over an explicit, key-ordered list of files. */
int iter_files_new(struct tcache *tc, struct vfile **files, size_t n, struct iter **out)
{
    struct level_iterator *li = ppdb_calloc(1, sizeof(*li));
    if (!li)
        return PPDB_ENOMEM;
    li->files = ppdb_calloc(n ? n : 1, sizeof(*li->files));
    if (!li->files) {
        ppdb_free(li);
        return PPDB_ENOMEM;
    }
    li->base.ops = &level_ops;
    li->tc = tc;
    li->n = n;
    li->cur = n;
    for (size_t i = 0; i < n; i++) {
        vfile_ref(files[i]);
        li->files[i] = files[i];
    }
    *out = &li->base;
    return 0;
}

int iter_level_new(struct tcache *tc, const struct version *v, int level, struct iter **out)
{
    PPDB_ASSERT(level > 0 && level < PPDB_NUM_LEVELS);
    return iter_files_new(tc, v->files[level], v->nfiles[level], out);
}

/* ------------------------------------------------------------------ merge */

struct merge_iterator {
    struct iter base;
    struct iter **kids;
    size_t n;
    struct iter *cur; /* the child at the current key, or NULL */
    bool backward;    /* the last move was prev or seek_last */
    int status;
};

/* Picks the child with the smallest key (largest when backward). */
static void merge_pick(struct merge_iterator *mi)
{
    mi->cur = NULL;
    size_t best_len = 0;
    const uint8_t *best = NULL;
    for (size_t i = 0; i < mi->n; i++) {
        struct iter *k = mi->kids[i];
        if (!k->ops->valid(k)) {
            int st = k->ops->status(k);
            if (st && !mi->status)
                mi->status = st;
            continue;
        }
        size_t len;
        const uint8_t *key = k->ops->key(k, &len);
        int c = best ? ppdb_ikey_cmp(key, len, best, best_len) : 0;
        if (!best || (mi->backward ? c > 0 : c < 0)) {
            best = key;
            best_len = len;
            mi->cur = k;
        }
    }
}

static void mergeit_seek_first(struct iter *it)
{
    struct merge_iterator *mi = (struct merge_iterator *)it;
    for (size_t i = 0; i < mi->n; i++)
        mi->kids[i]->ops->seek_first(mi->kids[i]);
    mi->backward = false;
    merge_pick(mi);
}

static void mergeit_seek_last(struct iter *it)
{
    struct merge_iterator *mi = (struct merge_iterator *)it;
    for (size_t i = 0; i < mi->n; i++)
        mi->kids[i]->ops->seek_last(mi->kids[i]);
    mi->backward = true;
    merge_pick(mi);
}

static void mergeit_seek(struct iter *it, const uint8_t *ikey, size_t klen)
{
    struct merge_iterator *mi = (struct merge_iterator *)it;
    for (size_t i = 0; i < mi->n; i++)
        mi->kids[i]->ops->seek(mi->kids[i], ikey, klen);
    mi->backward = false;
    merge_pick(mi);
}

static void mergeit_next(struct iter *it)
{
    struct merge_iterator *mi = (struct merge_iterator *)it;
    if (mi->backward) { /* the others stand before the key: put them after it */
        size_t klen;
        const uint8_t *key = mi->cur->ops->key(mi->cur, &klen);
        for (size_t i = 0; i < mi->n; i++) {
            struct iter *k = mi->kids[i];
            if (k == mi->cur)
                continue;
            k->ops->seek(k, key, klen);
            size_t l;
            if (k->ops->valid(k) && ppdb_ikey_cmp(k->ops->key(k, &l), l, key, klen) == 0)
                k->ops->next(k);
        }
        mi->backward = false;
    }
    mi->cur->ops->next(mi->cur);
    merge_pick(mi);
}

static void mergeit_prev(struct iter *it)
{
    struct merge_iterator *mi = (struct merge_iterator *)it;
    if (!mi->backward) { /* the others stand after the key: put them before it */
        size_t klen;
        const uint8_t *key = mi->cur->ops->key(mi->cur, &klen);
        for (size_t i = 0; i < mi->n; i++) {
            struct iter *k = mi->kids[i];
            if (k == mi->cur)
                continue;
            k->ops->seek(k, key, klen);
            if (k->ops->valid(k))
                k->ops->prev(k);
            else if (!k->ops->status(k))
                k->ops->seek_last(k);
        }
        mi->backward = true;
    }
    mi->cur->ops->prev(mi->cur);
    merge_pick(mi);
}

static bool mergeit_valid(const struct iter *it)
{
    const struct merge_iterator *mi = (const struct merge_iterator *)it;
    return !mi->status && mi->cur != NULL;
}

static const uint8_t *mergeit_key(const struct iter *it, size_t *len)
{
    const struct merge_iterator *mi = (const struct merge_iterator *)it;
    return mi->cur->ops->key(mi->cur, len);
}

static const uint8_t *mergeit_value(const struct iter *it, size_t *len)
{
    const struct merge_iterator *mi = (const struct merge_iterator *)it;
    return mi->cur->ops->value(mi->cur, len);
}

static int mergeit_status(const struct iter *it)
{
    return ((const struct merge_iterator *)it)->status;
}

static void mergeit_free(struct iter *it)
{
    struct merge_iterator *mi = (struct merge_iterator *)it;
    for (size_t i = 0; i < mi->n; i++)
        iter_free(mi->kids[i]);
    ppdb_free(mi->kids);
    ppdb_free(mi);
}

static const struct iter_ops merge_ops = {.seek_first = mergeit_seek_first,
                                          .seek_last = mergeit_seek_last,
                                          .seek = mergeit_seek,
                                          .next = mergeit_next,
                                          .prev = mergeit_prev,
                                          .valid = mergeit_valid,
                                          .key = mergeit_key,
                                          .value = mergeit_value,
                                          .status = mergeit_status,
                                          .free = mergeit_free};

int iter_merge_new(struct iter **children, size_t n, struct iter **out)
{
    struct merge_iterator *mi = ppdb_calloc(1, sizeof(*mi));
    struct iter **kids = ppdb_calloc(n ? n : 1, sizeof(*kids));
    if (!mi || !kids) {
        ppdb_free(mi);
        ppdb_free(kids);
        for (size_t i = 0; i < n; i++)
            iter_free(children[i]);
        return PPDB_ENOMEM;
    }
    memcpy(kids, children, n * sizeof(*kids));
    mi->base.ops = &merge_ops;
    mi->kids = kids;
    mi->n = n;
    *out = &mi->base;
    return 0;
}
