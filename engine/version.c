/*
 * version.c - the set of live table files and its durable record.
 *
 * A version is an immutable, refcounted list of table files, newest first
 * (level 0 only until leveled compaction arrives). The db holds the current
 * one; a reader takes a reference under the db mutex and searches it without
 * the mutex while a flush installs a successor. Files are refcounted too, so
 * a table is closed when the last version naming it goes.
 *
 * The MANIFEST is a small file rewritten whole with ppdb_fs_write_atomic
 * after each flush: which tables exist (with the facts a read needs before
 * opening them), which log is current, the last sequence number and the next
 * file number. A CRC32C over the whole file detects corruption; the write is
 * atomic, so a crash leaves either the old or the new record. Layout in
 * docs/formats/wal.md (section MANIFEST).
 *
 * Invariants: files[] is in creation order, newest first (file numbers
 * descend); refs > 0 while reachable.
 */
#include "engine_int.h"

_Static_assert(PPDB_MANIFEST_HEADER == 4 + 4 + 8 + 8 + 8 + 4, "manifest header layout");
_Static_assert(PPDB_MANIFEST_FILE == 4 * 8, "manifest file entry layout");

int manifest_encode(const struct manifest *m, struct ppdb_buf *out)
{
    PPDB_ASSERT(m->nfiles <= PPDB_MANIFEST_MAX_FILES);
    int rc = ppdb_buf_reserve(out, PPDB_MANIFEST_HEADER + m->nfiles * PPDB_MANIFEST_FILE +
                                       PPDB_MANIFEST_TRAILER);
    if (rc)
        return rc;
    size_t start = out->len;
    ppdb_buf_append_u32le(out, PPDB_MANIFEST_MAGIC);
    ppdb_buf_append_u32le(out, PPDB_MANIFEST_FORMAT);
    ppdb_buf_append_u64le(out, m->next_file);
    ppdb_buf_append_u64le(out, m->log_number);
    ppdb_buf_append_u64le(out, m->last_seq);
    ppdb_buf_append_u32le(out, (uint32_t)m->nfiles);
    for (uint64_t i = 0; i < m->nfiles; i++) {
        const struct vfile *f = &m->files[i];
        ppdb_buf_append_u64le(out, f->number);
        ppdb_buf_append_u64le(out, f->size);
        ppdb_buf_append_u64le(out, f->max_version);
        ppdb_buf_append_u64le(out, f->max_seq);
    }
    uint32_t crc = ppdb_crc32c(out->data + start, out->len - start);
    return ppdb_buf_append_u32le(out, ppdb_crc32c_mask(crc));
}

int manifest_decode(const uint8_t *p, size_t n, struct manifest *m)
{
    memset(m, 0, sizeof(*m));
    if (n < PPDB_MANIFEST_HEADER + PPDB_MANIFEST_TRAILER)
        return PPDB_ECORRUPT;
    uint32_t want = ppdb_crc32c_unmask(ppdb_load_u32le(p + n - PPDB_MANIFEST_TRAILER));
    if (ppdb_crc32c(p, n - PPDB_MANIFEST_TRAILER) != want)
        return PPDB_ECORRUPT;
    struct ppdb_rd r;
    uint32_t magic, format, nfiles;
    ppdb_rd_init(&r, p, n - PPDB_MANIFEST_TRAILER);
    if (ppdb_rd_u32le(&r, &magic) || ppdb_rd_u32le(&r, &format) || magic != PPDB_MANIFEST_MAGIC)
        return PPDB_ECORRUPT;
    if (format != PPDB_MANIFEST_FORMAT)
        return PPDB_EVERSION;
    if (ppdb_rd_u64le(&r, &m->next_file) || ppdb_rd_u64le(&r, &m->log_number) ||
        ppdb_rd_u64le(&r, &m->last_seq) || ppdb_rd_u32le(&r, &nfiles))
        return PPDB_ECORRUPT;
    if (nfiles > PPDB_MANIFEST_MAX_FILES ||
        ppdb_rd_left(&r) != (size_t)nfiles * PPDB_MANIFEST_FILE || m->last_seq > PPDB_SEQ_MAX)
        return PPDB_ECORRUPT;
    m->files = ppdb_calloc(nfiles ? nfiles : 1, sizeof(*m->files));
    if (!m->files)
        return PPDB_ENOMEM;
    m->nfiles = nfiles;
    for (uint32_t i = 0; i < nfiles; i++) {
        struct vfile *f = &m->files[i];
        ppdb_rd_u64le(&r, &f->number);
        ppdb_rd_u64le(&r, &f->size);
        ppdb_rd_u64le(&r, &f->max_version);
        ppdb_rd_u64le(&r, &f->max_seq);
        bool bad = f->number >= m->next_file || (i > 0 && f->number >= m->files[i - 1].number);
        if (bad) {
            ppdb_free(m->files);
            m->files = NULL;
            return PPDB_ECORRUPT;
        }
    }
    return 0;
}

struct vfile *vfile_new(uint64_t number, uint64_t size, uint64_t max_version, uint64_t max_seq)
{
    struct vfile *f = ppdb_calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->number = number;
    f->size = size;
    f->max_version = max_version;
    f->max_seq = max_seq;
    atomic_init(&f->refs, 1);
    return f;
}

void vfile_ref(struct vfile *f)
{
    atomic_fetch_add(&f->refs, 1);
}

void vfile_unref(struct vfile *f)
{
    int old = atomic_fetch_sub(&f->refs, 1);
    PPDB_ASSERT_CMP(old, >, 0);
    if (old != 1)
        return;
    if (f->table)
        ppdb_table_close(f->table);
    if (f->file)
        f->fs->ops->close(f->fs, f->file);
    ppdb_free(f);
}

struct version *version_new(size_t nfiles)
{
    struct version *v = ppdb_calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->files = ppdb_calloc(nfiles ? nfiles : 1, sizeof(*v->files));
    if (!v->files) {
        ppdb_free(v);
        return NULL;
    }
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
    for (size_t i = 0; i < v->nfiles; i++)
        vfile_unref(v->files[i]);
    ppdb_free(v->files);
    ppdb_free(v);
}

struct version *version_with_file(const struct version *old, struct vfile *f)
{
    struct version *v = version_new(old->nfiles + 1);
    if (!v)
        return NULL;
    PPDB_ASSERT(old->nfiles == 0 || old->files[0]->number < f->number);
    vfile_ref(f);
    v->files[0] = f;
    for (size_t i = 0; i < old->nfiles; i++) {
        vfile_ref(old->files[i]);
        v->files[i + 1] = old->files[i];
    }
    v->nfiles = old->nfiles + 1;
    return v;
}
