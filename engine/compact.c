/*
 * compact.c - background work: memtable flushes and leveled compaction.
 *
 * One background task at a time runs on the fs's scheduler (bg_tasks is 0
 * or 1). Each run does one step - flush the immutable memtable if there is
 * one (always first: writers may be waiting for it), else a step of a
 * manual compaction, else the most urgent automatic compaction - and
 * schedules the next run when more work is due. A memtable that fills up
 * while a compaction runs is flushed by the compaction itself, between two
 * of its entries (flush_between), so writers never wait for a whole
 * compaction to get a fresh memtable; the compaction's edit then applies
 * to the version holding the new level-0 table. Only this task (and open,
 * before it can run) changes db->current, so a step builds its new version
 * from current without racing anyone.
 *
 * Picking is LevelDB's: a level's score is (level-0 tables / trigger) for
 * level 0 and (bytes / target) for the others; the highest score >= 1 wins.
 * Level 0 compacts the oldest table together with every level-0 table that
 * overlaps the growing range; level L >= 1 the table with the least
 * overlap in L+1 per byte of its own (fewest bytes rewritten per byte moved
 * down; LevelDB takes the next after the level's compact pointer, which
 * here only breaks ties, round robin over the key space). The overlapping
 * tables of L+1 join; output tables are cut at target_file_bytes or when
 * they would overlap more than 10 tables' worth of level L+2 (grandparents),
 * and only between user keys, so a user key lives in one table per level.
 * A single input table with nothing to merge below is moved, not rewritten.
 * A manual compaction (compact_range) compacts each level in range into the
 * next, then rewrites the deepest level in place (in_place: outputs go to
 * the inputs' level), in runs of adjacent tables marked may_drop, so old
 * entries kept there for since-released snapshots do not linger.
 *
 * What a compaction keeps (keep_entry): for each user key, entries come best
 * first. Entries above the smallest live snapshot (db_smallest_snapshot:
 * the oldest snapshot's sequence, or the last sequence) are kept: some
 * reader may see them. Everything after the first entry with seq <= it is
 * shadowed for every reader and dropped. That entry itself goes if it is a
 * tombstone at the bottom for its key (no deeper level holds the key) and
 * old enough (version 0 at once, else tombstone_grace_ms after its HLC
 * time). A TTL value that has expired (entry_expired) IS a tombstone from
 * then on: it is rewritten as a tombstone of the same version and sequence
 * (its value dropped), and that goes by the tombstone rule above, so an
 * expired entry never uncovers an older value, nor lets a late write of a
 * lower version win within the grace period.
 *
 * Invariants: an output table is synced, and its directory entry too, before
 * the edit naming it is logged; an input table is deleted only when the last
 * version naming it is released (version.c); a failed step leaves no file
 * behind and current unchanged.
 */
#include <inttypes.h>
#include <stdio.h>

#include "db_int.h"

#define GRANDPARENT_FILES 10 /* output overlap with L+2, in target files */

/* --------------------------------------------------------- table outputs */

struct out_table {
    uint64_t number;
    char path[DB_PATH_MAX];
    struct ppdb_file *file;
    struct ppdb_table_builder *b;
};

static int out_open(struct ppdb_db *db, struct out_table *o)
{
    memset(o, 0, sizeof(*o));
    o->number = db_new_file_number(db);
    int rc = db_path(db, o->path, sizeof(o->path), o->number, "sst");
    if (!rc)
        rc = db->fs->ops->open(db->fs, o->path, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_TRUNC,
                               &o->file);
    if (!rc)
        rc = ppdb_table_builder_new(db->fs, o->file, &db->topts, &o->b);
    return rc;
}

/* Abandons a table being written (and its file). */
static void out_abandon(struct ppdb_db *db, struct out_table *o)
{
    if (o->b)
        ppdb_table_builder_free(o->b);
    if (o->file)
        db->fs->ops->close(db->fs, o->file);
    if (o->path[0])
        (void)db->fs->ops->remove(db->fs, o->path);
    memset(o, 0, sizeof(*o));
}

/* Finishes, syncs and closes the table; *f_out describes it. */
static int out_finish(struct ppdb_db *db, struct out_table *o, struct vfile **f_out)
{
    struct ppdb_table_props props;
    ppdb_table_props_init(&props);
    int rc = ppdb_table_builder_finish(o->b, &props);
    ppdb_table_builder_free(o->b);
    o->b = NULL;
    if (!rc)
        rc = db->fs->ops->sync(db->fs, o->file);
    int crc = db->fs->ops->close(db->fs, o->file);
    o->file = NULL;
    rc = rc ? rc : crc;
    struct vfile *f = NULL;
    if (!rc && !(f = vfile_new(o->number, props.file_size, props.max_version, props.max_seq)))
        rc = PPDB_ENOMEM;
    if (!rc && (rc = ppdb_buf_append(&f->smallest, props.smallest.data, props.smallest.len)) == 0)
        rc = ppdb_buf_append(&f->largest, props.largest.data, props.largest.len);
    ppdb_table_props_deinit(&props);
    if (rc) {
        if (f)
            vfile_unref(f);
        out_abandon(db, o);
        return rc;
    }
    *f_out = f;
    return 0;
}

int db_write_table(struct ppdb_db *db, struct memtable *m, struct vfile **f_out)
{
    struct out_table o;
    int rc = out_open(db, &o);
    struct mem_iter it;
    struct ppdb_ikey k, prev = {0};
    bool may_drop = false;
    for (mem_iter_first(&it, m); !rc && mem_iter_valid(&it); mem_iter_next(&it)) {
        rc = ppdb_ikey_decode(it.node->ikey, it.node->iklen, &k);
        if (!rc && (k.type != PPDB_VT_VALUE ||
                    (prev.ukey && ppdb_ukey_cmp(k.ukey, k.ulen, prev.ukey, prev.ulen) == 0)))
            may_drop = true;
        prev = k;
        if (!rc)
            rc = ppdb_table_builder_add(o.b, it.node->ikey, it.node->iklen, mem_iter_value(&it),
                                        it.node->vlen);
    }
    if (rc) {
        out_abandon(db, &o);
        return rc;
    }
    struct vfile *f;
    if ((rc = out_finish(db, &o, &f)) != 0)
        return rc;
    f->may_drop = may_drop;
    /* The new name must survive a crash before the manifest names it. */
    if ((rc = db->fs->ops->sync_dir(db->fs, db->dir)) != 0) {
        vfile_unref(f);
        (void)db->fs->ops->remove(db->fs, o.path);
        return rc;
    }
    *f_out = f;
    return 0;
}

/* Makes `v` current (mu held) and installs sv (db_sv_new) as the read
 * state; the old version goes when its readers do. */
static void install(struct ppdb_db *db, struct version *v, struct super_version *sv)
{
    version_unref(db->current);
    db->current = v;
    db_install_sv(db, sv);
}

/* ------------------------------------------------------------------ flush */

static int flush_imm(struct ppdb_db *db)
{
    struct super_version *sv = db_sv_new();
    if (!sv)
        return PPDB_ENOMEM;
    struct memtable *imm = db->imm;
    uint64_t log_number = db->mem->log_number; /* imm's log and older are obsolete */
    uint64_t last_seq = atomic_load(&db->last_seq);
    struct version *base = db->current;
    pthread_mutex_unlock(&db->mu);
    struct vfile *f = NULL;
    int rc = mem_count(imm) ? db_write_table(db, imm, &f) : 0;
    struct version_edit e;
    edit_init(&e);
    e.has_log_number = e.has_last_seq = true;
    e.log_number = log_number;
    e.last_seq = last_seq;
    struct version *v = NULL;
    if (!rc && f)
        rc = edit_add_file(&e, 0, f);
    if (!rc)
        rc = vset_log_and_apply(&db->vs, base, &e, &v);
    uint64_t bytes = f ? f->size : 0;
    if (rc && f)
        atomic_store(&f->obsolete, true), f->owner = &db->vs; /* removed with its last ref */
    edit_deinit(&e);
    if (f)
        vfile_unref(f);
    pthread_mutex_lock(&db->mu);
    if (rc) {
        db_sv_free(sv);
        return rc;
    }
    db->imm = NULL;
    install(db, v, sv);
    atomic_store_explicit(&db->imm_waiting, false, memory_order_relaxed);
    db->stats.flushes++;
    db->stats.flush_bytes += bytes;
    pthread_mutex_unlock(&db->mu);
    mem_unref(imm);
    db_delete_obsolete(db, log_number, false);
    pthread_mutex_lock(&db->mu);
    return 0;
}

/* ---------------------------------------------------------------- picking */

struct compaction {
    int level;     /* inputs from level and level + 1; outputs to level + 1 */
    bool in_place; /* a bottom-level rewrite: inputs from level only, outputs to it */
    struct vfile **in[2];
    size_t nin[2];
    struct vfile **grand;
    size_t ngrand;
    struct version *v; /* the version the inputs come from (referenced) */
    uint64_t max_output_bytes, max_grand_bytes;
};

static void compaction_free(struct compaction *c)
{
    ppdb_free(c->in[0]);
    ppdb_free(c->in[1]);
    ppdb_free(c->grand);
    version_unref(c->v);
}

static uint64_t level_target(const struct ppdb_db *db, int level)
{
    uint64_t t = db->opts.level1_bytes;
    for (int l = 1; l < level; l++)
        t *= db->opts.level_multiplier;
    return t;
}

/* The level most in need of compaction, or -1. */
static int best_level(const struct ppdb_db *db, const struct version *v)
{
    double best = 1.0;
    int level = -1;
    for (int l = 0; l < PPDB_NUM_LEVELS - 1; l++) {
        double score = l == 0 ? (double)v->nfiles[0] / db->opts.l0_compaction_trigger
                              : (double)version_level_bytes(v, l) / (double)level_target(db, l);
        if (score >= best) {
            best = score;
            level = l;
        }
    }
    return level;
}

bool db_needs_compaction(const struct ppdb_db *db, const struct version *v)
{
    return best_level(db, v) >= 0;
}

/* User-key range of a list of files. */
static void range_of(struct vfile **fs, size_t n, const uint8_t **b, size_t *blen,
                     const uint8_t **e, size_t *elen)
{
    for (size_t i = 0; i < n; i++) {
        size_t sl, ll;
        const uint8_t *s = vfile_ukey(&fs[i]->smallest, &sl);
        const uint8_t *g = vfile_ukey(&fs[i]->largest, &ll);
        if (i == 0 || ppdb_ukey_cmp(s, sl, *b, *blen) < 0)
            *b = s, *blen = sl;
        if (i == 0 || ppdb_ukey_cmp(g, ll, *e, *elen) > 0)
            *e = g, *elen = ll;
    }
}

/* Level 0: grows in[0] to every level-0 file overlapping its range. */
static int expand_l0(struct compaction *c)
{
    for (;;) {
        const uint8_t *b, *e;
        size_t blen, elen, n = 0;
        struct vfile **all = NULL;
        range_of(c->in[0], c->nin[0], &b, &blen, &e, &elen);
        int rc = version_overlaps(c->v, 0, b, blen, e, elen, &all, &n);
        if (rc || n == c->nin[0]) {
            ppdb_free(all);
            return rc;
        }
        ppdb_free(c->in[0]);
        c->in[0] = all;
        c->nin[0] = n;
    }
}

/* Fills in[1] and the grandparents from in[0]. */
static int add_lower(struct compaction *c)
{
    const uint8_t *b, *e;
    size_t blen, elen;
    range_of(c->in[0], c->nin[0], &b, &blen, &e, &elen);
    int rc = version_overlaps(c->v, c->level + 1, b, blen, e, elen, &c->in[1], &c->nin[1]);
    if (rc || c->level + 2 >= PPDB_NUM_LEVELS)
        return rc;
    const uint8_t *b2 = b, *e2 = e;
    size_t b2len = blen, e2len = elen;
    if (c->nin[1]) {
        range_of(c->in[1], c->nin[1], &b2, &b2len, &e2, &e2len);
        if (ppdb_ukey_cmp(b, blen, b2, b2len) < 0)
            b2 = b, b2len = blen;
        if (ppdb_ukey_cmp(e, elen, e2, e2len) > 0)
            e2 = e, e2len = elen;
    }
    return version_overlaps(c->v, c->level + 2, b2, b2len, e2, e2len, &c->grand, &c->ngrand);
}

/* Bytes of level l + 1 that compacting f (of level l) would rewrite. */
static int overlap_bytes(const struct version *v, int l, const struct vfile *f, uint64_t *out)
{
    size_t bl, el, n = 0;
    const uint8_t *b = vfile_ukey(&f->smallest, &bl), *e = vfile_ukey(&f->largest, &el);
    struct vfile **over = NULL;
    int rc = version_overlaps(v, l + 1, b, bl, e, el, &over, &n);
    *out = 0;
    for (size_t i = 0; !rc && i < n; i++)
        *out += over[i]->size;
    ppdb_free(over);
    return rc;
}

/* Level l >= 1: the table whose compaction rewrites the fewest bytes of
 * level l + 1 per byte it moves down (overlap / size), so each compaction
 * buys the most room for its writes; the scan starts after the level's
 * compact pointer, so ties go round robin over the key space. */
static int pick_min_overlap(struct ppdb_db *db, const struct version *v, int l, struct vfile **out)
{
    const struct ppdb_buf *cp = &db->vs.cpointer[l];
    size_t n = v->nfiles[l], start = 0;
    while (start < n && cp->len &&
           ppdb_ikey_cmp(v->files[l][start]->largest.data, v->files[l][start]->largest.len,
                         cp->data, cp->len) <= 0)
        start++;
    double best = 0;
    *out = NULL;
    for (size_t k = 0; k < n; k++) {
        struct vfile *f = v->files[l][(start + k) % n];
        uint64_t over = 0;
        int rc = l + 1 < PPDB_NUM_LEVELS ? overlap_bytes(v, l, f, &over) : 0;
        if (rc)
            return rc;
        double ratio = (double)over / (double)(f->size ? f->size : 1);
        if (!*out || ratio < best)
            *out = f, best = ratio;
    }
    return 0;
}

static int pick_first(struct ppdb_db *db, struct compaction *c)
{
    const struct version *v = c->v;
    int l = c->level;
    struct vfile *f = NULL;
    if (l == 0) {
        f = v->files[0][v->nfiles[0] - 1]; /* the oldest */
    } else {
        int rc = pick_min_overlap(db, v, l, &f);
        if (rc)
            return rc;
    }
    c->in[0] = ppdb_malloc(sizeof(*c->in[0]));
    if (!c->in[0])
        return PPDB_ENOMEM;
    c->in[0][0] = f;
    c->nin[0] = 1;
    return l == 0 ? expand_l0(c) : 0;
}

static void compaction_init(struct ppdb_db *db, struct compaction *c, int level)
{
    memset(c, 0, sizeof(*c));
    c->level = level;
    c->v = db->current;
    version_ref(c->v);
    c->max_output_bytes = db->opts.target_file_bytes;
    c->max_grand_bytes = GRANDPARENT_FILES * db->opts.target_file_bytes;
}

/* --------------------------------------------------------------- running */

/* TTL: the one place where compaction recognizes an expired entry (a
 * PPDB_VT_TTL value whose expiry prefix is <= now_ms). */
static bool entry_expired(unsigned type, const uint8_t *val, size_t vlen, int64_t now_ms)
{
    return type == PPDB_VT_TTL && ppdb_entry_dead(type, val, vlen, now_ms);
}

static bool tombstone_old_enough(const struct ppdb_db *db, uint64_t version, int64_t now_ms)
{
    if (version == 0)
        return true; /* unversioned: nothing can arrive late to resurrect */
    int64_t written_ms = (int64_t)(version >> 16);
    if (now_ms < written_ms)
        return false;
    return (uint64_t)(now_ms - written_ms) >= db->opts.tombstone_grace_ms;
}

static int out_level(const struct compaction *c)
{
    return c->in_place ? c->level : c->level + 1;
}

/* No level below the output holds ukey. */
static bool bottom_for_key(const struct compaction *c, const uint8_t *ukey, size_t ulen)
{
    for (int l = out_level(c) + 1; l < PPDB_NUM_LEVELS; l++) {
        size_t i = version_find_file(c->v, l, ukey, ulen);
        if (i >= c->v->nfiles[l])
            continue;
        size_t n;
        const uint8_t *s = vfile_ukey(&c->v->files[l][i]->smallest, &n);
        if (ppdb_ukey_cmp(s, n, ukey, ulen) <= 0)
            return false;
    }
    return true;
}

struct run {
    struct ppdb_db *db;
    struct compaction *c;
    struct out_table out;
    bool out_open;
    struct vfile **outputs;
    size_t nout;
    struct ppdb_buf cur_ukey; /* user key of the previous entry */
    struct ppdb_buf tomb_key; /* an expired entry rewritten as a tombstone */
    bool have_ukey, winner_seen;
    uint64_t smallest_snapshot;
    int64_t now_ms;
    size_t grand_i;
    uint64_t grand_bytes;
    uint64_t dropped;
    bool out_may_drop; /* the open output holds what a later compaction may drop */
};

enum keep { KEEP_DROP = 0, KEEP_AS_IS = 1, KEEP_AS_TOMBSTONE = 2 };

static enum keep keep_entry(struct run *r, const struct ppdb_ikey *k, const uint8_t *val,
                            size_t vlen, bool new_key)
{
    if (new_key)
        r->winner_seen = false;
    if (r->winner_seen)
        return KEEP_DROP; /* shadowed for every reader */
    if (k->seq > r->smallest_snapshot)
        return KEEP_AS_IS; /* a snapshot below it may still need older entries */
    r->winner_seen = true;
    bool expired = entry_expired(k->type, val, vlen, r->now_ms);
    if ((expired || k->type == PPDB_VT_DEL) && tombstone_old_enough(r->db, k->version, r->now_ms) &&
        bottom_for_key(r->c, k->ukey, k->ulen))
        return KEEP_DROP;
    return expired ? KEEP_AS_TOMBSTONE : KEEP_AS_IS;
}

/* Whether the output should end before user key ukey (grandparent overlap). */
static bool stop_before(struct run *r, const uint8_t *ukey, size_t ulen)
{
    struct compaction *c = r->c;
    while (r->grand_i < c->ngrand) {
        size_t n;
        const uint8_t *g = vfile_ukey(&c->grand[r->grand_i]->largest, &n);
        if (ppdb_ukey_cmp(ukey, ulen, g, n) <= 0)
            break;
        if (r->out_open)
            r->grand_bytes += c->grand[r->grand_i]->size;
        r->grand_i++;
    }
    if (r->grand_bytes > c->max_grand_bytes) {
        r->grand_bytes = 0;
        return true;
    }
    return false;
}

static int finish_output(struct run *r)
{
    struct vfile *f;
    r->out_open = false;
    int rc = out_finish(r->db, &r->out, &f);
    if (rc)
        return rc;
    f->may_drop = r->out_may_drop;
    struct vfile **a = ppdb_realloc(r->outputs, (r->nout + 1) * sizeof(*a));
    if (!a) {
        atomic_store(&f->obsolete, true);
        f->owner = &r->db->vs;
        vfile_unref(f);
        return PPDB_ENOMEM;
    }
    r->outputs = a;
    a[r->nout++] = f;
    return 0;
}

static int emit(struct run *r, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                bool new_key, const struct ppdb_ikey *k)
{
    int rc = 0;
    bool cut =
        new_key && r->out_open && ppdb_table_builder_file_size(r->out.b) >= r->c->max_output_bytes;
    if (new_key && stop_before(r, k->ukey, k->ulen) && r->out_open)
        cut = true;
    if (cut)
        rc = finish_output(r);
    if (!rc && !r->out_open) {
        rc = out_open(r->db, &r->out);
        if (rc)
            out_abandon(r->db, &r->out);
        r->out_open = rc == 0;
        r->out_may_drop = false;
    }
    /* an older entry of a key kept for a snapshot, a tombstone or an
     * expiring value: a later compaction may drop something here */
    if (!new_key || k->type != PPDB_VT_VALUE)
        r->out_may_drop = true;
    return rc ? rc : ppdb_table_builder_add(r->out.b, key, klen, val, vlen);
}

/* Called between entries of a compaction (mu NOT held): a memtable that
 * filled up meanwhile is flushed at once, as writers may be waiting for
 * it, instead of after the whole compaction. The compaction's edit is
 * then applied on top of the version with the new level-0 table. */
static int flush_between(struct ppdb_db *db)
{
    if (!atomic_load_explicit(&db->imm_waiting, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&db->mu);
    int rc = db->imm && !db->bg_error ? flush_imm(db) : 0;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

static int run_entries(struct run *r, struct iter *it)
{
    int rc = 0;
    unsigned n = 0;
    for (it->ops->seek_first(it); !rc && it->ops->valid(it); it->ops->next(it)) {
        if ((++n & 255) == 0 && (rc = flush_between(r->db)) != 0)
            break;
        size_t klen, vlen;
        const uint8_t *key = it->ops->key(it, &klen);
        const uint8_t *val = it->ops->value(it, &vlen);
        struct ppdb_ikey k;
        if ((rc = ppdb_ikey_decode(key, klen, &k)) != 0)
            break;
        bool new_key =
            !r->have_ukey || ppdb_ukey_cmp(k.ukey, k.ulen, r->cur_ukey.data, r->cur_ukey.len) != 0;
        if (new_key) {
            ppdb_buf_reset(&r->cur_ukey);
            rc = ppdb_buf_append(&r->cur_ukey, k.ukey, k.ulen);
            r->have_ukey = true;
        }
        enum keep keep = rc ? KEEP_AS_IS : keep_entry(r, &k, val, vlen, new_key);
        if (keep == KEEP_DROP) {
            r->dropped++;
            continue;
        }
        if (!rc && keep == KEEP_AS_TOMBSTONE) { /* same key, type DEL, no value */
            ppdb_buf_reset(&r->tomb_key);
            rc = ppdb_ikey_append(&r->tomb_key, k.ukey, k.ulen, k.version, k.seq, PPDB_VT_DEL);
            key = r->tomb_key.data;
            klen = r->tomb_key.len;
            vlen = 0;
            r->dropped++;
        }
        if (!rc)
            rc = emit(r, key, klen, val, vlen, new_key, &k);
    }
    if (!rc)
        rc = it->ops->status(it);
    if (!rc && r->out_open)
        rc = finish_output(r);
    return rc;
}

static int make_input(struct ppdb_db *db, struct compaction *c, struct iter **out)
{
    struct iter *kids[64];
    size_t n = 0;
    int rc = 0;
    if (c->level == 0) {
        for (size_t i = 0; !rc && i < c->nin[0] && n < 63; i++)
            if ((rc = iter_table_new(db->tc, c->in[0][i], &kids[n])) == 0)
                n++;
        PPDB_ASSERT(rc || n == c->nin[0]); /* level 0 is bounded by l0_stop_trigger */
    } else if ((rc = iter_files_new(db->tc, c->in[0], c->nin[0], &kids[n])) == 0) {
        n++;
    }
    if (!rc && (rc = iter_files_new(db->tc, c->in[1], c->nin[1], &kids[n])) == 0)
        n++;
    if (rc) {
        for (size_t i = 0; i < n; i++)
            iter_free(kids[i]);
        return rc;
    }
    return iter_merge_new(kids, n, out);
}

static int edit_inputs(struct compaction *c, struct version_edit *e)
{
    int rc = 0;
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; !rc && i < c->nin[w]; i++)
            rc = edit_del_file(e, c->level + w, c->in[w][i]->number);
    struct vfile *last = c->in[0][0];
    for (size_t i = 1; i < c->nin[0]; i++)
        if (ppdb_ikey_cmp(c->in[0][i]->largest.data, c->in[0][i]->largest.len, last->largest.data,
                          last->largest.len) > 0)
            last = c->in[0][i];
    return rc ? rc : edit_set_cpointer(e, c->level, last->largest.data, last->largest.len);
}

/* Logs e against the current version and installs the result (mu NOT
 * held; returns held). Current is the compaction's version c->v plus the level-0 tables of any
 * flush_between since c was picked: only this task changes current. */
static int apply_edit(struct ppdb_db *db, struct version_edit *e)
{
    struct version *v = NULL;
    struct super_version *sv = db_sv_new();
    int rc = sv ? vset_log_and_apply(&db->vs, db->current, e, &v) : PPDB_ENOMEM;
    pthread_mutex_lock(&db->mu);
    if (!rc)
        install(db, v, sv);
    else
        db_sv_free(sv);
    return rc;
}

static uint64_t input_bytes(const struct compaction *c)
{
    uint64_t n = 0;
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < c->nin[w]; i++)
            n += c->in[w][i]->size;
    return n;
}

/* One compaction; mu held on entry and exit, released while it works. */
static int run_compaction(struct ppdb_db *db, struct compaction *c)
{
    struct run r = {.db = db, .c = c, .smallest_snapshot = db_smallest_snapshot(db)};
    ppdb_buf_init(&r.cur_ukey);
    ppdb_buf_init(&r.tomb_key);
    pthread_mutex_unlock(&db->mu);
    r.now_ms = db->fs->ops->wall_ms(db->fs);
    struct version_edit e;
    edit_init(&e);
    struct iter *it = NULL;
    int rc = make_input(db, c, &it);
    if (!rc)
        rc = run_entries(&r, it);
    iter_free(it);
    if (r.out_open)
        out_abandon(db, &r.out);
    if (!rc && r.nout)
        rc = db->fs->ops->sync_dir(db->fs, db->dir);
    uint64_t written = 0;
    for (size_t i = 0; !rc && i < r.nout; i++) {
        rc = edit_add_file(&e, out_level(c), r.outputs[i]);
        written += r.outputs[i]->size;
    }
    if (!rc)
        rc = edit_inputs(c, &e);
    if (!rc)
        rc = apply_edit(db, &e); /* returns with mu held */
    else
        pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < r.nout; i++) {
        if (rc) { /* never named: removed with its last reference */
            atomic_store(&r.outputs[i]->obsolete, true);
            r.outputs[i]->owner = &db->vs;
        }
        vfile_unref(r.outputs[i]);
    }
    edit_deinit(&e);
    ppdb_free(r.outputs);
    ppdb_buf_deinit(&r.cur_ukey);
    ppdb_buf_deinit(&r.tomb_key);
    if (!rc) {
        db->stats.compactions++;
        db->stats.compact_read_bytes += input_bytes(c);
        db->stats.compact_write_bytes += written;
        db->stats.compact_dropped += r.dropped;
    }
    return rc;
}

/* A single input with nothing below to merge with moves down unchanged. */
static bool trivial_move(const struct compaction *c)
{
    if (c->nin[0] != 1 || c->nin[1] != 0)
        return false;
    uint64_t grand = 0;
    for (size_t i = 0; i < c->ngrand; i++)
        grand += c->grand[i]->size;
    return grand <= c->max_grand_bytes;
}

static int move_file(struct ppdb_db *db, struct compaction *c)
{
    struct vfile *f = c->in[0][0];
    struct version_edit e;
    edit_init(&e);
    int rc = edit_del_file(&e, c->level, f->number);
    if (!rc)
        rc = edit_add_file(&e, c->level + 1, f);
    if (!rc)
        rc = edit_set_cpointer(&e, c->level, f->largest.data, f->largest.len);
    pthread_mutex_unlock(&db->mu);
    if (!rc)
        rc = apply_edit(db, &e);
    else
        pthread_mutex_lock(&db->mu);
    edit_deinit(&e);
    if (!rc) {
        db->stats.compactions++;
        db->stats.trivial_moves++;
    }
    return rc;
}

static int compact_level(struct ppdb_db *db, int level)
{
    struct compaction c;
    compaction_init(db, &c, level);
    int rc = pick_first(db, &c);
    if (!rc)
        rc = add_lower(&c);
    if (!rc && trivial_move(&c)) {
        rc = move_file(db, &c);
    } else if (!rc) {
        db->l0_compacting = level == 0 ? c.nin[0] : 0;
        rc = run_compaction(db, &c);
        db->l0_compacting = 0;
    }
    compaction_free(&c);
    return rc;
}

/* ----------------------------------------------------------------- manual */

static bool in_manual_range(const struct manual_compaction *m, struct vfile *f)
{
    size_t sl, ll;
    const uint8_t *s = vfile_ukey(&f->smallest, &sl);
    const uint8_t *g = vfile_ukey(&f->largest, &ll);
    if (m->has_begin && ppdb_ukey_cmp(g, ll, m->begin.data, m->begin.len) < 0)
        return false;
    return !(m->has_end && ppdb_ukey_cmp(s, sl, m->end.data, m->end.len) > 0);
}

/* The inputs of one step at m->level: every table in range; at the bottom
 * level (rewritten in place), a run of at most MANUAL_BOTTOM_FILES adjacent
 * tables in range that may hold droppable entries and that this compaction
 * did not write (numbered from m->first_new_file). The run stops at a table
 * left out, so the outputs cannot overlap it. */
#define MANUAL_BOTTOM_FILES 10
static int manual_inputs(const struct manual_compaction *m, struct compaction *c, bool bottom)
{
    for (size_t i = 0; i < c->v->nfiles[m->level]; i++) {
        struct vfile *f = c->v->files[m->level][i];
        bool take =
            in_manual_range(m, f) && (!bottom || (f->may_drop && f->number < m->first_new_file));
        if (!take && bottom && c->nin[0] > 0)
            break;
        if (!take)
            continue;
        if (bottom && c->nin[0] >= MANUAL_BOTTOM_FILES)
            break;
        struct vfile **a = ppdb_realloc(c->in[0], (c->nin[0] + 1) * sizeof(*a));
        if (!a)
            return PPDB_ENOMEM;
        (c->in[0] = a)[c->nin[0]++] = f;
    }
    return 0;
}

/* One step of a manual compaction: the files of m->level in range and the
 * overlapping ones below; the next level once none is left. Last, the
 * bottom level (m->max_level) is rewritten in place, so what it kept for
 * snapshots since released, and tombstones now old enough, go too. */
static int manual_step(struct ppdb_db *db, struct manual_compaction *m)
{
    while (m->level <= m->max_level) {
        bool bottom = m->level == m->max_level;
        struct compaction c;
        compaction_init(db, &c, m->level);
        c.in_place = bottom;
        int rc = manual_inputs(m, &c, bottom);
        if (!rc && c.nin[0] && m->level == 0 && !bottom)
            rc = expand_l0(&c);
        if (!rc && c.nin[0] && !bottom)
            rc = add_lower(&c);
        /* Never a move: a manual compaction is asked to rewrite (and drop). */
        if (!rc && c.nin[0])
            rc = run_compaction(db, &c);
        bool did = c.nin[0] > 0;
        compaction_free(&c);
        if (rc || did)
            return rc;
        m->level++;
    }
    m->done = true;
    return 0;
}

/* ------------------------------------------------------------- scheduling */

static void bg_work_cb(void *arg)
{
    struct ppdb_db *db = arg;
    pthread_mutex_lock(&db->mu);
    int rc = 0;
    if (db->bg_error) {
        /* stopped; writers see the error */
    } else if (db->imm) {
        rc = flush_imm(db);
    } else if (db->manual && !db->manual->done) {
        rc = manual_step(db, db->manual);
        if (rc) {
            db->manual->status = rc;
            db->manual->done = true;
        }
    } else if (!db->closing) {
        int level = best_level(db, db->current);
        if (level >= 0)
            rc = compact_level(db, level);
    }
    if (rc)
        db_set_error(db, rc, "background flush or compaction failed");
    db->bg_tasks--;
    db_maybe_schedule(db);
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
}

void db_maybe_schedule(struct ppdb_db *db)
{
    if (db->bg_tasks > 0 || db->bg_error)
        return;
    bool manual = db->manual && !db->manual->done;
    bool compact = !db->closing && db_needs_compaction(db, db->current);
    if (!db->imm && !manual && !compact)
        return;
    db->bg_tasks++;
    int rc = db->fs->ops->schedule(db->fs, bg_work_cb, db);
    if (rc) {
        db->bg_tasks--;
        db_set_error(db, rc, "cannot schedule background work");
    }
}

static int wait_manual(struct ppdb_db *db, struct manual_compaction *m)
{
    pthread_mutex_lock(&db->mu);
    while (db->manual) /* one manual compaction at a time */
        pthread_cond_wait(&db->bg_cv, &db->mu);
    db->manual = m;
    m->first_new_file = atomic_load(&db->vs.next_file);
    m->max_level = 0;
    for (int l = 1; l < PPDB_NUM_LEVELS; l++)
        if (db->current->nfiles[l])
            m->max_level = l;
    if (m->max_level == 0)
        m->max_level = 1; /* level 0 alone: compact it into level 1 */
    db_maybe_schedule(db);
    while (!m->done && !db->bg_error)
        pthread_cond_wait(&db->bg_cv, &db->mu);
    int rc = m->status ? m->status : db->bg_error;
    db->manual = NULL;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int ppdb_db_compact_range(struct ppdb_db *db, const void *begin, size_t blen, const void *end,
                          size_t elen)
{
    PPDB_ASSERT(db);
    int rc = ppdb_db_flush(db);
    if (rc)
        return rc;
    struct manual_compaction m = {.has_begin = begin != NULL, .has_end = end != NULL};
    ppdb_buf_init(&m.begin);
    ppdb_buf_init(&m.end);
    if (begin)
        rc = ppdb_buf_append(&m.begin, begin, blen);
    if (!rc && end)
        rc = ppdb_buf_append(&m.end, end, elen);
    if (!rc)
        rc = wait_manual(db, &m);
    ppdb_buf_deinit(&m.begin);
    ppdb_buf_deinit(&m.end);
    return rc;
}
