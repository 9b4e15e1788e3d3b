/*
 * fs_mem.c - an in-memory ppdb_fs that models what survives a power cut.
 *
 * Model. Inodes (files and directories) are reached from the root through
 * directory entries, so hard links share one inode and rename only moves
 * an entry. Each file holds its bytes and `synced_len`, the prefix the last
 * sync made durable. Each directory holds two entry maps: `cur`, what the
 * running system sees, and `dur`, a copy taken by the last sync_dir. A
 * power cut (ppdb_fs_mem_drop_unsynced) rebuilds the tree from `dur` alone,
 * starting at the root, and truncates every file to `synced_len`: files
 * created but not dir-synced vanish, removals and renames that were not
 * dir-synced revert, unsynced tails are lost. A rename is durable once the
 * destination directory is synced; for a rename across directories the
 * source entry disappears only when the source directory is synced too, so
 * a cut in between can leave the file under both names (one inode), a
 * state real journaling file systems avoid but that a careful engine never
 * depends on either way.
 *
 * Truncation is modelled as durable at once for the bytes it removes
 * (synced_len never exceeds the length), one of the outcomes a real file
 * system may produce.
 *
 * Logs. PPDB_FS_LOG is accepted and changes nothing while the system runs:
 * a log's handle and every other see exactly the appended bytes. With
 * log_prealloc set, a power cut leaves each file ever opened as a log with
 * zero fill after its synced bytes, up to the next multiple of
 * log_prealloc: the space fs_posix reserves ahead of a log's appends, which
 * a crash leaves behind. The fill then counts as durable file contents.
 *
 * Space. `used` is the byte count of files that are live: linked in a
 * current directory or held open, like blocks on a real disk. Capacity
 * faults compare against it, so removing (and closing) a file frees room.
 *
 * Invariants, all under the one mutex: an inode is freed when no current
 * entry, durable entry or handle refers to it (nlink_cur, nlink_dur,
 * opens), except the root which lives as long as the fs; `counted` says
 * whether its length is in `used`; cur and dur are sorted bytewise; the
 * current tree is a tree (no directory links, no rename into a subtree);
 * drop_unsynced restores that for the durable tree too, keeping the first
 * entry (breadth first, sorted) of a directory reached twice.
 *
 * map() returns a private copy of the file's bytes, freed by unmap, so it
 * stays valid across appends, truncation and drop_unsynced.
 */
#include "fs_internal.h"
#include <stdatomic.h>

struct ent {
    char *name; /* owned, NUL-terminated */
    struct inode *ino;
};

/* A sorted array of entries. */
struct ents {
    struct ent *v;
    uint32_t len, cap;
};

struct inode {
    struct inode *prev, *next; /* every inode of the fs */
    bool is_dir;
    bool counted; /* len is included in fs->used */
    bool locked;  /* held by a lock handle */
    bool visited; /* drop_unsynced scratch */
    bool dying;   /* being freed: settle must not free it again */
    bool log;     /* was opened with PPDB_FS_LOG | PPDB_FS_APPEND */
    uint32_t nlink_cur, nlink_dur, opens;
    uint8_t *data; /* files */
    size_t len, cap, synced_len;
    struct ents cur, dur;   /* directories */
    struct inode *bfs_next; /* drop_unsynced scratch queue */
};

struct ppdb_file {
    struct inode *ino;             /* NULL once drop_unsynced invalidated it */
    struct ppdb_file *prev, *next; /* fs->handles, while valid */
    int flags;
    bool is_lock;
};

struct fs_mem {
    struct ppdb_fs base;
    pthread_mutex_t mu; /* guards everything below except bg */
    struct inode *root;
    struct inode *inodes;      /* list of all inodes */
    struct ppdb_file *handles; /* list of valid handles */
    uint64_t used;             /* bytes of live files */
    int64_t maps;              /* live map copies */
    struct ppdb_fs_mem_faults faults;
    struct ppdb_rng rng; /* torn-append lengths */
    struct ppdb_fs__bg bg;
    _Atomic int64_t wall_offset_ms; /* added to wall_ms (tests of expiry) */
    uint64_t log_prealloc;          /* zero fill step of logs at a power cut (0 = off) */
};

static struct fs_mem *to_mem(struct ppdb_fs *fs)
{
    return (struct fs_mem *)fs;
}

/* ------------------------------------------------------------- entries */

static int name_cmp(const char *a, const char *s, size_t n)
{
    size_t alen = strlen(a);
    int c = memcmp(a, s, PPDB_MIN(alen, n));
    return c ? c : alen < n ? -1 : alen > n ? 1 : 0;
}

/* True if found; *idx_out is its index or where it would go. */
static bool ents_find(const struct ents *e, const char *s, size_t n, uint32_t *idx_out)
{
    uint32_t lo = 0, hi = e->len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(e->v[mid].name, s, n);
        if (c == 0) {
            *idx_out = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx_out = lo;
    return false;
}

static int ents_insert(struct ents *e, uint32_t idx, const char *s, size_t n, struct inode *ino)
{
    if (e->len == PPDB_FS__DIR_ENTRIES_MAX)
        return PPDB_ELIMIT;
    if (e->len == e->cap) {
        uint32_t cap = e->cap ? e->cap * 2 : 8;
        struct ent *v = ppdb_realloc(e->v, cap * sizeof(*v));
        if (!v)
            return PPDB_ENOMEM;
        e->v = v;
        e->cap = cap;
    }
    char *name = ppdb_malloc(n + 1);
    if (!name)
        return PPDB_ENOMEM;
    memcpy(name, s, n);
    name[n] = '\0';
    memmove(e->v + idx + 1, e->v + idx, (e->len - idx) * sizeof(*e->v));
    e->v[idx] = (struct ent){name, ino};
    e->len++;
    return 0;
}

static void ents_remove(struct ents *e, uint32_t idx)
{
    PPDB_ASSERT_CMP(idx, <, e->len);
    ppdb_free(e->v[idx].name);
    memmove(e->v + idx, e->v + idx + 1, (e->len - idx - 1) * sizeof(*e->v));
    e->len--;
}

static void ents_free(struct ents *e)
{
    for (uint32_t i = 0; i < e->len; i++)
        ppdb_free(e->v[i].name);
    ppdb_free(e->v);
    memset(e, 0, sizeof(*e));
}

static int ents_copy(struct ents *dst, const struct ents *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->len == 0)
        return 0;
    dst->v = ppdb_malloc(src->len * sizeof(*dst->v));
    if (!dst->v)
        return PPDB_ENOMEM;
    dst->cap = src->len;
    for (uint32_t i = 0; i < src->len; i++) {
        dst->v[i].ino = src->v[i].ino;
        if (!(dst->v[i].name = ppdb_strdup(src->v[i].name))) {
            ents_free(dst);
            return PPDB_ENOMEM;
        }
        dst->len++;
    }
    return 0;
}

/* -------------------------------------------------------------- inodes */

static struct inode *inode_new(struct fs_mem *m, bool is_dir)
{
    struct inode *ino = ppdb_calloc(1, sizeof(*ino));
    if (!ino)
        return NULL;
    ino->is_dir = is_dir;
    ino->next = m->inodes;
    if (m->inodes)
        m->inodes->prev = ino;
    m->inodes = ino;
    return ino;
}

/* Frees the inode itself; the caller has dealt with what its entries
 * point to. */
static void inode_free_raw(struct fs_mem *m, struct inode *ino)
{
    if (ino->prev)
        ino->prev->next = ino->next;
    else
        m->inodes = ino->next;
    if (ino->next)
        ino->next->prev = ino->prev;
    ents_free(&ino->cur);
    ents_free(&ino->dur);
    ppdb_free(ino->data);
    ppdb_free(ino);
}

static void settle(struct fs_mem *m, struct inode *ino);

static void release_ents(struct fs_mem *m, struct ents *e, bool durable)
{
    for (uint32_t i = 0; i < e->len; i++) {
        struct inode *c = e->v[i].ino;
        if (durable)
            c->nlink_dur--;
        else
            c->nlink_cur--;
        settle(m, c);
    }
}

/* Brings `counted` and the inode's existence in line with its counts. */
static void settle(struct fs_mem *m, struct inode *ino)
{
    if (ino->dying)
        return;
    bool live = ino->nlink_cur > 0 || ino->opens > 0;
    if (live != ino->counted) {
        if (live)
            m->used += ino->len;
        else
            m->used -= ino->len;
        ino->counted = live;
    }
    if (live || ino->nlink_dur > 0 || ino == m->root)
        return;
    ino->dying = true;
    release_ents(m, &ino->cur, false);
    release_ents(m, &ino->dur, true);
    inode_free_raw(m, ino);
}

/* Sets a file's length; growth is zero-filled and must have passed the
 * capacity check. */
static int set_len(struct fs_mem *m, struct inode *ino, size_t len)
{
    if (len > ino->cap) {
        size_t cap = ino->cap ? ino->cap : 256;
        while (cap < len)
            cap = cap > SIZE_MAX / 2 ? len : cap * 2;
        uint8_t *d = ppdb_realloc(ino->data, cap);
        if (!d)
            return PPDB_ENOMEM;
        ino->data = d;
        ino->cap = cap;
    }
    if (len > ino->len)
        memset(ino->data + ino->len, 0, len - ino->len);
    if (ino->counted)
        m->used = m->used - ino->len + len;
    ino->len = len;
    ino->synced_len = PPDB_MIN(ino->synced_len, len);
    return 0;
}

static bool room_for(const struct fs_mem *m, uint64_t extra)
{
    uint64_t cap = m->faults.capacity_bytes;
    return cap == 0 || (m->used <= cap && extra <= cap - m->used);
}

/* Counts a fault countdown down; true when it fires. */
static bool fault_tick(int64_t *countdown)
{
    if (*countdown <= 0)
        return false;
    return --*countdown == 0;
}

/* --------------------------------------------------------------- paths */

/* Next component of *pp: 1 and (s, n), 0 at the end, or PPDB_EINVAL.
 * Empty and "." components are skipped; ".." is not supported. */
static int comp_next(const char **pp, const char **s, size_t *n)
{
    const char *p = *pp;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p) {
            *pp = p;
            return 0;
        }
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 1 && p[0] == '.') {
            p += len;
            continue;
        }
        if ((len == 2 && p[0] == '.' && p[1] == '.') || len > PPDB_FS__NAME_MAX)
            return PPDB_EINVAL;
        *s = p;
        *n = len;
        *pp = p + len;
        return 1;
    }
}

static struct inode *dir_child(const struct inode *dir, const char *s, size_t n)
{
    uint32_t idx;
    return ents_find(&dir->cur, s, n, &idx) ? dir->cur.v[idx].ino : NULL;
}

/* Resolves every component but the last: *dir_out is the directory that
 * holds (or would hold) the last one, (*s_out, *n_out). PPDB_EINVAL if a
 * directory on the way is `avoid` (rename into its own subtree) or is a
 * file, or if the path names the root. */
static int walk_parent(struct fs_mem *m, const char *path, const struct inode *avoid,
                       struct inode **dir_out, const char **s_out, size_t *n_out)
{
    PPDB_ASSERT(path);
    if (strnlen(path, PPDB_FS__PATH_MAX) >= PPDB_FS__PATH_MAX)
        return PPDB_EINVAL;
    struct inode *dir = m->root;
    const char *p = path, *s, *ns;
    size_t n, nn;
    int rc = comp_next(&p, &s, &n);
    if (rc <= 0)
        return rc ? rc : PPDB_EINVAL;
    while ((rc = comp_next(&p, &ns, &nn)) == 1) {
        struct inode *c = dir_child(dir, s, n);
        if (!c)
            return PPDB_ENOENT;
        if (!c->is_dir || c == avoid)
            return PPDB_EINVAL;
        dir = c;
        s = ns;
        n = nn;
    }
    if (rc < 0)
        return rc;
    *dir_out = dir;
    *s_out = s;
    *n_out = n;
    return 0;
}

static int resolve(struct fs_mem *m, const char *path, struct inode **ino_out)
{
    const char *p = path, *s;
    size_t n;
    int rc = comp_next(&p, &s, &n);
    if (rc == 0) {
        *ino_out = m->root;
        return 0;
    }
    struct inode *dir;
    rc = walk_parent(m, path, NULL, &dir, &s, &n);
    if (rc)
        return rc;
    *ino_out = dir_child(dir, s, n);
    return *ino_out ? 0 : PPDB_ENOENT;
}

/* -------------------------------------------------------------- handles */

static void handle_link(struct fs_mem *m, struct ppdb_file *h)
{
    h->prev = NULL;
    h->next = m->handles;
    if (m->handles)
        m->handles->prev = h;
    m->handles = h;
    h->ino->opens++;
    settle(m, h->ino);
}

/* Detaches a valid handle from its inode (which may be freed). */
static void handle_unlink(struct fs_mem *m, struct ppdb_file *h)
{
    if (!h->ino)
        return;
    if (h->prev)
        h->prev->next = h->next;
    else
        m->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    struct inode *ino = h->ino;
    h->ino = NULL;
    if (h->is_lock)
        ino->locked = false;
    ino->opens--;
    settle(m, ino);
}

/* Finds or creates the file for open/lock. Called with mu held. */
static int get_file(struct fs_mem *m, const char *path, int flags, struct inode **ino_out)
{
    struct inode *dir;
    const char *s;
    size_t n;
    uint32_t idx;
    int rc = walk_parent(m, path, NULL, &dir, &s, &n);
    if (rc)
        return rc;
    if (ents_find(&dir->cur, s, n, &idx)) {
        struct inode *ino = dir->cur.v[idx].ino;
        if (flags & PPDB_FS_EXCL)
            return PPDB_EEXIST;
        if (ino->is_dir)
            return PPDB_EINVAL;
        *ino_out = ino;
        return 0;
    }
    if (!(flags & PPDB_FS_CREATE))
        return PPDB_ENOENT;
    struct inode *ino = inode_new(m, false);
    if (!ino)
        return PPDB_ENOMEM;
    if ((rc = ents_insert(&dir->cur, idx, s, n, ino)) != 0) {
        inode_free_raw(m, ino);
        return rc;
    }
    ino->nlink_cur = 1;
    settle(m, ino);
    *ino_out = ino;
    return 0;
}

static int mem_open(struct ppdb_fs *fs, const char *path, int flags, struct ppdb_file **f_out)
{
    PPDB_ASSERT(path && f_out);
    PPDB_ASSERT(flags & (PPDB_FS_READ | PPDB_FS_APPEND));
    PPDB_ASSERT(!(flags & PPDB_FS_EXCL) || (flags & PPDB_FS_CREATE));
    struct fs_mem *m = to_mem(fs);
    struct ppdb_file *h = ppdb_calloc(1, sizeof(*h));
    if (!h)
        return PPDB_ENOMEM;
    h->flags = flags;
    pthread_mutex_lock(&m->mu);
    int rc = get_file(m, path, flags, &h->ino);
    if (rc == 0 && (flags & PPDB_FS_TRUNC))
        rc = set_len(m, h->ino, 0); /* shrinking never fails */
    if (rc == 0 && (flags & PPDB_FS_LOG) && (flags & PPDB_FS_APPEND))
        h->ino->log = true;
    if (rc == 0)
        handle_link(m, h);
    pthread_mutex_unlock(&m->mu);
    if (rc) {
        ppdb_free(h);
        return rc;
    }
    *f_out = h;
    return 0;
}

static int mem_close(struct ppdb_fs *fs, struct ppdb_file *f)
{
    PPDB_ASSERT(f && !f->is_lock);
    struct fs_mem *m = to_mem(fs);
    pthread_mutex_lock(&m->mu);
    handle_unlink(m, f);
    pthread_mutex_unlock(&m->mu);
    ppdb_free(f);
    return 0;
}

/* ------------------------------------------------------------ file I/O */

static int mem_pread(struct ppdb_fs *fs, struct ppdb_file *f, void *buf, size_t n, uint64_t off,
                     size_t *n_out)
{
    PPDB_ASSERT(f && (f->flags & PPDB_FS_READ) && (buf || n == 0) && n_out);
    struct fs_mem *m = to_mem(fs);
    int rc = 0;
    *n_out = 0;
    pthread_mutex_lock(&m->mu);
    struct inode *ino = f->ino;
    if (!ino) {
        rc = PPDB_EIO;
    } else if (off < ino->len) {
        size_t k = PPDB_MIN(n, ino->len - (size_t)off);
        memcpy(buf, ino->data + off, k);
        *n_out = k;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* Called with mu held, n > 0. */
static int append_locked(struct fs_mem *m, struct inode *ino, const void *buf, size_t n)
{
    bool fail = fault_tick(&m->faults.fail_append_after);
    bool torn = fault_tick(&m->faults.torn_append_after);
    if (fail)
        return PPDB_EIO;
    if (!room_for(m, n))
        return PPDB_ENOSPC;
    if (n > SIZE_MAX - ino->len)
        return PPDB_EINVAL;
    size_t w = torn ? (size_t)ppdb_rng_below(&m->rng, n) : n;
    size_t old = ino->len;
    int rc = set_len(m, ino, old + w);
    if (rc)
        return rc;
    if (w) /* a torn append may cut to nothing; data may still be NULL then */
        memcpy(ino->data + old, buf, w);
    return torn ? PPDB_EIO : 0;
}

static int mem_append(struct ppdb_fs *fs, struct ppdb_file *f, const void *buf, size_t n)
{
    PPDB_ASSERT(f && (f->flags & PPDB_FS_APPEND) && (buf || n == 0));
    struct fs_mem *m = to_mem(fs);
    pthread_mutex_lock(&m->mu);
    int rc = !f->ino ? PPDB_EIO : n == 0 ? 0 : append_locked(m, f->ino, buf, n);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_sync(struct ppdb_fs *fs, struct ppdb_file *f)
{
    PPDB_ASSERT(f);
    struct fs_mem *m = to_mem(fs);
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    if (!f->ino)
        rc = PPDB_EIO;
    else if (fault_tick(&m->faults.fail_sync_after))
        rc = PPDB_EIO;
    else
        f->ino->synced_len = f->ino->len;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_size(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t *size_out)
{
    PPDB_ASSERT(f && size_out);
    struct fs_mem *m = to_mem(fs);
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    if (!f->ino)
        rc = PPDB_EIO;
    else
        *size_out = f->ino->len;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_truncate(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t size)
{
    PPDB_ASSERT(f);
    struct fs_mem *m = to_mem(fs);
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    struct inode *ino = f->ino;
    if (!ino)
        rc = PPDB_EIO;
    else if (size > SIZE_MAX)
        rc = PPDB_ENOMEM;
    else if (size > ino->len && !room_for(m, size - ino->len))
        rc = PPDB_ENOSPC;
    else
        rc = set_len(m, ino, (size_t)size);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_map(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t **p_out,
                   uint64_t *len_out)
{
    PPDB_ASSERT(f && (f->flags & PPDB_FS_READ) && p_out && len_out);
    struct fs_mem *m = to_mem(fs);
    int rc = 0;
    uint8_t *copy = NULL;
    size_t len = 0;
    pthread_mutex_lock(&m->mu);
    if (!f->ino)
        rc = PPDB_EIO;
    else if ((len = f->ino->len) > 0 && m->maps >= PPDB_FS__MAP_MAX)
        rc = PPDB_ELIMIT;
    else if (len > 0 && !(copy = ppdb_malloc(len)))
        rc = PPDB_ENOMEM;
    else if (len > 0) {
        memcpy(copy, f->ino->data, len);
        m->maps++;
    }
    pthread_mutex_unlock(&m->mu);
    if (rc)
        return rc;
    *p_out = copy;
    *len_out = len;
    return 0;
}

static void mem_unmap(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t *p, uint64_t len)
{
    if (!p)
        return;
    struct fs_mem *m = to_mem(fs);
    pthread_mutex_lock(&m->mu);
    PPDB_ASSERT_CMP(m->maps, >, 0);
    m->maps--;
    pthread_mutex_unlock(&m->mu);
    ppdb_free((void *)(uintptr_t)p);
}

/* ------------------------------------------------------------ namespace */

/* Points the entry `to` (in tdir at tidx, found or not) at src. */
static int rename_target(struct fs_mem *m, struct inode *tdir, const char *ts, size_t tn,
                         struct inode *src, struct inode **replaced_out)
{
    uint32_t tidx;
    *replaced_out = NULL;
    if (!ents_find(&tdir->cur, ts, tn, &tidx)) {
        int rc = ents_insert(&tdir->cur, tidx, ts, tn, src);
        if (rc == 0)
            src->nlink_cur++;
        return rc;
    }
    struct inode *dst = tdir->cur.v[tidx].ino;
    if (src->is_dir && !dst->is_dir)
        return PPDB_EINVAL;
    if (!src->is_dir && dst->is_dir)
        return PPDB_EINVAL;
    if (dst->is_dir && dst->cur.len > 0)
        return PPDB_EEXIST;
    tdir->cur.v[tidx].ino = src;
    src->nlink_cur++;
    dst->nlink_cur--;
    *replaced_out = dst;
    return 0;
}

static int rename_locked(struct fs_mem *m, const char *from, const char *to)
{
    struct inode *fdir, *tdir, *replaced;
    const char *fs_, *ts;
    size_t fn, tn;
    uint32_t fidx, tidx;
    int rc = walk_parent(m, from, NULL, &fdir, &fs_, &fn);
    if (rc)
        return rc;
    if (!ents_find(&fdir->cur, fs_, fn, &fidx))
        return PPDB_ENOENT;
    struct inode *src = fdir->cur.v[fidx].ino;
    rc = walk_parent(m, to, src->is_dir ? src : NULL, &tdir, &ts, &tn);
    if (rc)
        return rc;
    if (ents_find(&tdir->cur, ts, tn, &tidx) && tdir->cur.v[tidx].ino == src)
        return 0; /* the same file under both names: POSIX does nothing */
    if ((rc = rename_target(m, tdir, ts, tn, src, &replaced)) != 0)
        return rc;
    /* The insertion may have shifted fdir's entries: look the name up again. */
    PPDB_ASSERT(ents_find(&fdir->cur, fs_, fn, &fidx) && fdir->cur.v[fidx].ino == src);
    ents_remove(&fdir->cur, fidx);
    src->nlink_cur--;
    if (replaced)
        settle(m, replaced);
    settle(m, src);
    return 0;
}

static int mem_rename(struct ppdb_fs *fs, const char *from, const char *to)
{
    struct fs_mem *m = to_mem(fs);
    pthread_mutex_lock(&m->mu);
    int rc = rename_locked(m, from, to);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* Removes the entry `path`; want_dir selects rmdir or remove semantics. */
static int unlink_locked(struct fs_mem *m, const char *path, bool want_dir)
{
    struct inode *dir;
    const char *s;
    size_t n;
    uint32_t idx;
    int rc = walk_parent(m, path, NULL, &dir, &s, &n);
    if (rc)
        return rc;
    if (!ents_find(&dir->cur, s, n, &idx))
        return PPDB_ENOENT;
    struct inode *ino = dir->cur.v[idx].ino;
    if (ino->is_dir != want_dir)
        return PPDB_EINVAL;
    if (want_dir && ino->cur.len > 0)
        return PPDB_EEXIST;
    ents_remove(&dir->cur, idx);
    ino->nlink_cur--;
    settle(m, ino);
    return 0;
}

static int mem_remove(struct ppdb_fs *fs, const char *path)
{
    struct fs_mem *m = to_mem(fs);
    pthread_mutex_lock(&m->mu);
    int rc = unlink_locked(m, path, false);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_rmdir(struct ppdb_fs *fs, const char *path)
{
    struct fs_mem *m = to_mem(fs);
    pthread_mutex_lock(&m->mu);
    int rc = unlink_locked(m, path, true);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* Adds a new entry `path` -> ino (ino NULL: a new directory). */
static int add_entry_locked(struct fs_mem *m, const char *path, struct inode *ino)
{
    struct inode *dir;
    const char *s;
    size_t n;
    uint32_t idx;
    int rc = walk_parent(m, path, NULL, &dir, &s, &n);
    if (rc)
        return rc;
    if (ents_find(&dir->cur, s, n, &idx))
        return PPDB_EEXIST;
    bool fresh = ino == NULL;
    if (fresh && !(ino = inode_new(m, true)))
        return PPDB_ENOMEM;
    if ((rc = ents_insert(&dir->cur, idx, s, n, ino)) != 0) {
        if (fresh)
            inode_free_raw(m, ino);
        return rc;
    }
    ino->nlink_cur++;
    settle(m, ino);
    return 0;
}

static int mem_link(struct ppdb_fs *fs, const char *from, const char *to)
{
    struct fs_mem *m = to_mem(fs);
    struct inode *src;
    pthread_mutex_lock(&m->mu);
    int rc = resolve(m, from, &src);
    if (rc == 0 && src->is_dir)
        rc = PPDB_EINVAL; /* no directory hard links: the tree stays a tree */
    if (rc == 0)
        rc = add_entry_locked(m, to, src);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_mkdir(struct ppdb_fs *fs, const char *path)
{
    struct fs_mem *m = to_mem(fs);
    pthread_mutex_lock(&m->mu);
    int rc = add_entry_locked(m, path, NULL);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int list_locked(struct fs_mem *m, const char *dir, char ***names_out, size_t *count_out)
{
    struct inode *d;
    int rc = resolve(m, dir, &d);
    if (rc)
        return rc;
    if (!d->is_dir)
        return PPDB_EINVAL;
    if (d->cur.len == 0)
        return 0;
    char **names = ppdb_calloc(d->cur.len, sizeof(*names));
    if (!names)
        return PPDB_ENOMEM;
    for (uint32_t i = 0; i < d->cur.len; i++) {
        if (!(names[i] = ppdb_strdup(d->cur.v[i].name))) {
            ppdb_fs_names_free(names, i);
            return PPDB_ENOMEM;
        }
    }
    *names_out = names; /* entries are kept sorted bytewise already */
    *count_out = d->cur.len;
    return 0;
}

static int mem_list(struct ppdb_fs *fs, const char *dir, char ***names_out, size_t *count_out)
{
    PPDB_ASSERT(dir && names_out && count_out);
    struct fs_mem *m = to_mem(fs);
    *names_out = NULL;
    *count_out = 0;
    pthread_mutex_lock(&m->mu);
    int rc = list_locked(m, dir, names_out, count_out);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_exists(struct ppdb_fs *fs, const char *path)
{
    struct fs_mem *m = to_mem(fs);
    struct inode *ino;
    pthread_mutex_lock(&m->mu);
    int rc = resolve(m, path, &ino);
    pthread_mutex_unlock(&m->mu);
    return rc ? PPDB_ENOENT : 0; /* a file on the way also means "not there" */
}

static int mem_file_size(struct ppdb_fs *fs, const char *path, uint64_t *size_out)
{
    PPDB_ASSERT(size_out);
    struct fs_mem *m = to_mem(fs);
    struct inode *ino;
    pthread_mutex_lock(&m->mu);
    int rc = resolve(m, path, &ino);
    if (rc == 0 && ino->is_dir)
        rc = PPDB_EINVAL;
    if (rc == 0)
        *size_out = ino->len;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* dur := cur. New references first, so nothing is freed in between. */
static int sync_dir_locked(struct fs_mem *m, const char *path)
{
    struct inode *d;
    struct ents fresh;
    int rc = resolve(m, path, &d);
    if (rc)
        return rc;
    if (!d->is_dir)
        return PPDB_EINVAL;
    if (fault_tick(&m->faults.fail_sync_after))
        return PPDB_EIO;
    if ((rc = ents_copy(&fresh, &d->cur)) != 0)
        return rc;
    for (uint32_t i = 0; i < fresh.len; i++)
        fresh.v[i].ino->nlink_dur++;
    struct ents old = d->dur;
    d->dur = fresh;
    release_ents(m, &old, true);
    ents_free(&old);
    return 0;
}

static int mem_sync_dir(struct ppdb_fs *fs, const char *dir)
{
    struct fs_mem *m = to_mem(fs);
    pthread_mutex_lock(&m->mu);
    int rc = sync_dir_locked(m, dir);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---------------------------------------------------------------- locks */

static int mem_lock(struct ppdb_fs *fs, const char *path, struct ppdb_file **lock_out)
{
    PPDB_ASSERT(path && lock_out);
    struct fs_mem *m = to_mem(fs);
    struct ppdb_file *h = ppdb_calloc(1, sizeof(*h));
    if (!h)
        return PPDB_ENOMEM;
    h->flags = PPDB_FS_READ | PPDB_FS_APPEND;
    h->is_lock = true;
    pthread_mutex_lock(&m->mu);
    int rc = get_file(m, path, PPDB_FS_CREATE, &h->ino);
    if (rc == 0 && h->ino->locked)
        rc = PPDB_EBUSY;
    if (rc == 0) {
        h->ino->locked = true;
        handle_link(m, h);
    }
    pthread_mutex_unlock(&m->mu);
    if (rc) {
        ppdb_free(h);
        return rc;
    }
    *lock_out = h;
    return 0;
}

static int mem_unlock(struct ppdb_fs *fs, struct ppdb_file *f)
{
    PPDB_ASSERT(f && f->is_lock);
    struct fs_mem *m = to_mem(fs);
    pthread_mutex_lock(&m->mu);
    handle_unlink(m, f);
    pthread_mutex_unlock(&m->mu);
    ppdb_free(f);
    return 0;
}

/* ------------------------------------------------------- time and tasks */

static int mem_schedule(struct ppdb_fs *fs, ppdb_fs_task_fn fn, void *arg)
{
    return ppdb_fs__bg_schedule(&to_mem(fs)->bg, fn, arg);
}

static uint64_t mem_now_us(struct ppdb_fs *fs)
{
    return ppdb_fs__mono_us();
}

static int64_t mem_wall_ms(struct ppdb_fs *fs)
{
    return ppdb_fs__wall_ms() + atomic_load(&to_mem(fs)->wall_offset_ms);
}

void ppdb_fs_mem_set_wall_offset_ms(struct ppdb_fs *fs, int64_t offset_ms)
{
    atomic_store(&to_mem(fs)->wall_offset_ms, offset_ms);
}

static void mem_sleep_us(struct ppdb_fs *fs, uint64_t us)
{
    ppdb_fs__sleep_us(us);
}

static void mem_destroy(struct ppdb_fs *fs)
{
    struct fs_mem *m = to_mem(fs);
    ppdb_fs__bg_deinit(&m->bg);
    PPDB_ASSERT(m->handles == NULL); /* close and unlock before destroy */
    PPDB_ASSERT_CMP(m->maps, ==, 0); /* unmap before destroy */
    while (m->inodes)
        inode_free_raw(m, m->inodes);
    pthread_mutex_destroy(&m->mu);
    ppdb_free(m);
}

static const struct ppdb_fs_ops mem_ops = {
    .open = mem_open,
    .close = mem_close,
    .pread = mem_pread,
    .append = mem_append,
    .sync = mem_sync,
    .size = mem_size,
    .truncate = mem_truncate,
    .map = mem_map,
    .unmap = mem_unmap,
    .rename = mem_rename,
    .remove = mem_remove,
    .link = mem_link,
    .mkdir = mem_mkdir,
    .rmdir = mem_rmdir,
    .list = mem_list,
    .exists = mem_exists,
    .file_size = mem_file_size,
    .sync_dir = mem_sync_dir,
    .lock = mem_lock,
    .unlock = mem_unlock,
    .schedule = mem_schedule,
    .now_us = mem_now_us,
    .wall_ms = mem_wall_ms,
    .sleep_us = mem_sleep_us,
    .destroy = mem_destroy,
};

int ppdb_fs_mem_new(struct ppdb_fs **fs_out)
{
    PPDB_ASSERT(fs_out);
    struct fs_mem *m = ppdb_calloc(1, sizeof(*m));
    if (!m)
        return PPDB_ENOMEM;
    m->base.ops = &mem_ops;
    if (!(m->root = inode_new(m, true))) {
        ppdb_free(m);
        return PPDB_ENOMEM;
    }
    PPDB_ASSERT(pthread_mutex_init(&m->mu, NULL) == 0);
    ppdb_rng_seed(&m->rng, 0);
    ppdb_fs__bg_init(&m->bg, PPDB_FS__TASK_QUEUE_MAX);
    *fs_out = &m->base;
    return 0;
}

static struct fs_mem *mem_of(struct ppdb_fs *fs)
{
    PPDB_ASSERT(fs && fs->ops == &mem_ops); /* only for ppdb_fs_mem_new's fs */
    return to_mem(fs);
}

/* --------------------------------------------------------------- faults */

void ppdb_fs_mem_set_faults(struct ppdb_fs *fs, const struct ppdb_fs_mem_faults *f)
{
    PPDB_ASSERT(f);
    struct fs_mem *m = mem_of(fs);
    pthread_mutex_lock(&m->mu);
    m->faults = *f;
    ppdb_rng_seed(&m->rng, f->seed);
    pthread_mutex_unlock(&m->mu);
}

/* Every valid handle becomes invalid: EIO from now on, close still frees. */
static void drop_handles(struct fs_mem *m)
{
    struct ppdb_file *h = m->handles;
    while (h) {
        struct ppdb_file *next = h->next;
        h->ino = NULL;
        h->prev = h->next = NULL;
        h = next;
    }
    m->handles = NULL;
}

/* A log's length after a power cut: its synced bytes, then zero fill up to
 * the next multiple of log_prealloc (a whole step for an empty log). */
static void prealloc_log(struct fs_mem *m, struct inode *ino)
{
    uint64_t step = m->log_prealloc;
    if (ino->is_dir || !ino->log || step == 0)
        return;
    uint64_t end = ((uint64_t)ino->len / step + 1) * step;
    PPDB_ASSERT(end <= SIZE_MAX);
    /* As for ents_copy below: no out-of-memory injection around a cut. */
    PPDB_ASSERT(set_len(m, ino, (size_t)end) == 0);
    ino->synced_len = ino->len;
}

/* Resets every inode to its durable self: counts cleared (rebuilt by the
 * walk), files cut to synced_len (logs then zero-filled), directories' cur
 * replaced by dur. */
static void reset_to_durable(struct fs_mem *m)
{
    for (struct inode *ino = m->inodes; ino; ino = ino->next) {
        ino->nlink_cur = ino->nlink_dur = ino->opens = 0;
        ino->locked = ino->visited = ino->counted = false;
        ino->bfs_next = NULL;
        ino->len = PPDB_MIN(ino->len, ino->synced_len);
        prealloc_log(m, ino);
        if (ino->is_dir) {
            ents_free(&ino->cur);
            /* drop_unsynced cannot report errors; it is a test hook and
             * out-of-memory injection around it is not supported. */
            PPDB_ASSERT(ents_copy(&ino->cur, &ino->dur) == 0);
        }
    }
    m->used = 0;
}

/* Breadth-first from the root over the (durable) entries: marks what is
 * reachable, recounts links, and cuts second paths to a directory. */
static void walk_durable(struct fs_mem *m)
{
    struct inode *head = m->root, *tail = m->root;
    m->root->visited = true;
    while (head) {
        struct inode *d = head;
        for (uint32_t i = 0; i < d->cur.len;) {
            struct inode *c = d->cur.v[i].ino;
            if (c->is_dir && c->visited) {
                ents_remove(&d->cur, i); /* cur and dur are equal here */
                ents_remove(&d->dur, i);
                continue;
            }
            if (!c->visited && c->is_dir) {
                tail->bfs_next = c;
                tail = c;
            }
            c->visited = true;
            c->nlink_cur++;
            c->nlink_dur++;
            i++;
        }
        head = d->bfs_next;
    }
}

void ppdb_fs_mem_drop_unsynced(struct ppdb_fs *fs)
{
    struct fs_mem *m = mem_of(fs);
    pthread_mutex_lock(&m->mu);
    drop_handles(m);
    reset_to_durable(m);
    walk_durable(m);
    struct inode *ino = m->inodes;
    while (ino) {
        struct inode *next = ino->next;
        if (!ino->visited) {
            inode_free_raw(m, ino); /* unreachable after the cut */
        } else {
            ino->counted = true;
            m->used += ino->len;
        }
        ino = next;
    }
    pthread_mutex_unlock(&m->mu);
}

void ppdb_fs_mem_set_log_prealloc(struct ppdb_fs *fs, uint64_t chunk_bytes)
{
    struct fs_mem *m = mem_of(fs);
    pthread_mutex_lock(&m->mu);
    m->log_prealloc = chunk_bytes;
    pthread_mutex_unlock(&m->mu);
}

int ppdb_fs_mem_flip_bit(struct ppdb_fs *fs, const char *path, uint64_t off, int bit)
{
    PPDB_ASSERT(bit >= 0 && bit < 8);
    struct fs_mem *m = mem_of(fs);
    struct inode *ino;
    pthread_mutex_lock(&m->mu);
    int rc = resolve(m, path, &ino);
    if (rc == 0 && ino->is_dir)
        rc = PPDB_EINVAL;
    if (rc == 0 && off >= ino->len)
        rc = PPDB_ERANGE;
    if (rc == 0)
        ino->data[off] ^= (uint8_t)(1u << bit);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

uint64_t ppdb_fs_mem_used_bytes(struct ppdb_fs *fs)
{
    struct fs_mem *m = mem_of(fs);
    pthread_mutex_lock(&m->mu);
    uint64_t used = m->used;
    pthread_mutex_unlock(&m->mu);
    return used;
}
