/*
 * wal.c - the write-ahead log: writer and recovery reader.
 *
 * The file is a sequence of 32 KiB blocks. A record (one group commit) is
 * cut into fragments that never cross a block boundary; each fragment has a
 * 7-byte header: masked CRC32C (over the type byte and the payload), payload
 * length, type (FULL, FIRST, MIDDLE, LAST). A block tail shorter than a
 * header is zero-filled. docs/formats/wal.md draws it. Blocks let the reader
 * find the next header without trusting any length it read before.
 *
 * The writer opens its file with PPDB_FS_LOG, so the file system may
 * reserve zero-filled space ahead of the appends (fs_posix maps it): a log
 * read while it is written, or left by a crashed process, ends in zeros.
 *
 * The reader tells three endings apart, because recovery must treat them
 * differently: CLEAN (the file ends at a record boundary or in zero fill),
 * TORN (the file ends inside a record, or a fragment that fails its
 * checksum has only zeros from its last byte to the end of the file: a
 * crash cut the last append short, so the record was never acknowledged as
 * synced and is dropped), and CORRUPT
 * (a checksum mismatch, an impossible length or type, fragments out of
 * order, or zero fill followed by data: bytes that were written and synced
 * are no longer what was written). It never skips a bad region to continue
 * after it.
 *
 * Invariants: the writer appends a whole record with one fs append, so a
 * failed append leaves at most one torn record at the tail; the reader never
 * reads outside [0, file size) and never returns a record whose every
 * fragment did not pass its checksum.
 */
#include "engine_int.h"

#define PPDB_WAL_MAX_RECORD (512u * 1024 * 1024)

_Static_assert(PPDB_WAL_HEADER == 4 + 2 + 1, "crc + length + type");
_Static_assert(PPDB_WAL_BLOCK - PPDB_WAL_HEADER <= UINT16_MAX, "fragment length fits u16");
_Static_assert(PPDB_WAL_BLOCK == 32768, "block size is part of the format");
_Static_assert(WAL_FULL == 1 && WAL_FIRST == 2 && WAL_MIDDLE == 3 && WAL_LAST == 4, "types");

static uint32_t fragment_crc(uint8_t type, const uint8_t *p, size_t n)
{
    uint32_t crc = ppdb_crc32c_extend(0, &type, 1);
    return ppdb_crc32c_mask(ppdb_crc32c_extend(crc, p, n));
}

int wal_writer_open(struct ppdb_fs *fs, const char *path, uint64_t number, struct wal_writer *w)
{
    memset(w, 0, sizeof(*w));
    /* A log: the fs may copy records into space reserved ahead instead of a
     * system call per record, so a crashed or live log ends in zero fill. */
    int flags = PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_EXCL | PPDB_FS_LOG;
    int rc = fs->ops->open(fs, path, flags, &w->f);
    if (rc)
        return rc;
    w->fs = fs;
    w->number = number;
    ppdb_buf_init(&w->frame);
    return 0;
}

static int frame_fragment(struct wal_writer *w, uint8_t type, const uint8_t *p, size_t n)
{
    uint8_t hdr[PPDB_WAL_HEADER];
    ppdb_store_u32le(hdr, fragment_crc(type, p, n));
    hdr[4] = (uint8_t)n;
    hdr[5] = (uint8_t)(n >> 8);
    hdr[6] = type;
    int rc = ppdb_buf_append(&w->frame, hdr, sizeof(hdr));
    return rc ? rc : ppdb_buf_append(&w->frame, p, n);
}

/* Cuts the record into fragments in w->frame, continuing the block layout
 * from the current end of the file. */
static int frame_record(struct wal_writer *w, const uint8_t *p, size_t n)
{
    static const uint8_t zeros[PPDB_WAL_HEADER];
    bool first = true;
    ppdb_buf_reset(&w->frame);
    do {
        uint64_t pos = w->size + w->frame.len;
        size_t block_left = PPDB_WAL_BLOCK - (size_t)(pos % PPDB_WAL_BLOCK);
        if (block_left < PPDB_WAL_HEADER) {
            int rc = ppdb_buf_append(&w->frame, zeros, block_left);
            if (rc)
                return rc;
            block_left = PPDB_WAL_BLOCK;
        }
        size_t frag = PPDB_MIN(n, block_left - PPDB_WAL_HEADER);
        bool last = frag == n;
        uint8_t type = first && last ? WAL_FULL : first ? WAL_FIRST : last ? WAL_LAST : WAL_MIDDLE;
        int rc = frame_fragment(w, type, p, frag);
        if (rc)
            return rc;
        p += frag;
        n -= frag;
        first = false;
    } while (n > 0);
    return 0;
}

int wal_writer_add(struct wal_writer *w, const uint8_t *p, size_t n)
{
    PPDB_ASSERT(w->f != NULL);
    if (n > PPDB_WAL_MAX_RECORD)
        return PPDB_ELIMIT;
    int rc = frame_record(w, p, n);
    if (rc)
        return rc;
    rc = w->fs->ops->append(w->fs, w->f, w->frame.data, w->frame.len);
    if (rc)
        return rc;
    w->size += w->frame.len;
    if (w->frame.cap > 4 * PPDB_WAL_BLOCK)
        ppdb_buf_deinit(&w->frame); /* do not keep a huge record's buffer */
    return 0;
}

int wal_writer_rewind(struct wal_writer *w, uint64_t size)
{
    PPDB_ASSERT(size <= w->size || w->f != NULL);
    int rc = w->fs->ops->truncate(w->fs, w->f, size);
    if (!rc)
        rc = w->fs->ops->sync(w->fs, w->f);
    if (!rc)
        w->size = size;
    return rc;
}

int wal_writer_sync(struct wal_writer *w)
{
    return w->fs->ops->sync(w->fs, w->f);
}

int wal_writer_close(struct wal_writer *w)
{
    int rc = 0;
    if (w->f)
        rc = w->fs->ops->close(w->fs, w->f);
    w->f = NULL;
    ppdb_buf_deinit(&w->frame);
    return rc;
}

/* ---------------------------------------------------------------- reader */

int wal_reader_init(struct wal_reader *r, struct ppdb_fs *fs, struct ppdb_file *f)
{
    memset(r, 0, sizeof(*r));
    int rc = fs->ops->size(fs, f, &r->file_size);
    if (rc)
        return rc;
    r->block = ppdb_malloc(PPDB_WAL_BLOCK);
    if (!r->block)
        return PPDB_ENOMEM;
    r->fs = fs;
    r->f = f;
    r->block_off = 0;
    r->block_len = 0;
    r->pos = 0;
    ppdb_buf_init(&r->rec);
    return 0;
}

void wal_reader_deinit(struct wal_reader *r)
{
    ppdb_free(r->block);
    ppdb_buf_deinit(&r->rec);
    r->block = NULL;
}

static int read_block(struct wal_reader *r, uint64_t off, uint8_t *buf, uint32_t *len_out)
{
    size_t want = PPDB_WAL_BLOCK, got = 0;
    if (off >= r->file_size) {
        *len_out = 0;
        return 0;
    }
    if (r->file_size - off < want)
        want = (size_t)(r->file_size - off);
    int rc = r->fs->ops->pread(r->fs, r->f, buf, want, off, &got);
    if (rc)
        return rc;
    *len_out = (uint32_t)got;
    return 0;
}

static int stop(struct wal_reader *r, int end, uint64_t off, const char *why)
{
    r->end = end;
    r->bad_off = off;
    r->why = why;
    return end == WAL_END_CORRUPT ? PPDB_ECORRUPT : PPDB_ENOTFOUND;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* True if every byte from block position `from` to the end of the file is
 * zero (zero fill after the last record, e.g. preallocated space). */
static int rest_is_zero(struct wal_reader *r, uint32_t from, bool *zero_out)
{
    *zero_out = from >= r->block_len || all_zero(r->block + from, r->block_len - from);
    uint64_t off = r->block_off + PPDB_WAL_BLOCK;
    uint8_t *buf = NULL;
    while (*zero_out && off < r->file_size) {
        uint32_t len;
        if (!buf && !(buf = ppdb_malloc(PPDB_WAL_BLOCK)))
            return PPDB_ENOMEM;
        int rc = read_block(r, off, buf, &len);
        if (rc) {
            ppdb_free(buf);
            return rc;
        }
        *zero_out = all_zero(buf, len);
        off += PPDB_WAL_BLOCK;
    }
    ppdb_free(buf);
    return 0;
}

/* A fragment failed its checksum: was its append cut short? Appends to a
 * log leave a prefix of their bytes when a crash interrupts them, and what
 * follows in a preallocated log is zero fill: so the fragment's last byte
 * (not reached yet) and everything after it are zero. Damage to a complete
 * fragment shows otherwise, unless its own last byte was zero and it was
 * the last thing in the file. */
static int cut_short(struct wal_reader *r, const uint8_t *h, uint32_t len, bool *cut_out)
{
    *cut_out = false;
    if (h[PPDB_WAL_HEADER + len - 1] != 0)
        return 0;
    return rest_is_zero(r, r->pos + PPDB_WAL_HEADER + len, cut_out);
}

/* Moves to the next block when fewer than a header's bytes are left in this
 * one. Returns 1 when the file ended (r->end set), 0 to go on, or < 0. */
static int advance_block(struct wal_reader *r)
{
    if (r->block_len > 0 && r->block_len < PPDB_WAL_BLOCK) {
        /* The file ends in this block: a few stray bytes are a torn header. */
        uint32_t tail = r->block_len - r->pos;
        uint64_t off = r->block_off + r->pos;
        if (tail == 0 || all_zero(r->block + r->pos, tail))
            stop(r, WAL_END_CLEAN, off, NULL);
        else
            stop(r, WAL_END_TORN, off, "file ends inside a fragment header");
        return 1;
    }
    if (r->block_len == PPDB_WAL_BLOCK)
        r->block_off += PPDB_WAL_BLOCK;
    r->pos = 0;
    int rc = read_block(r, r->block_off, r->block, &r->block_len);
    if (rc)
        return rc;
    if (r->block_len == 0) {
        stop(r, WAL_END_CLEAN, r->block_off, NULL);
        return 1;
    }
    return 0;
}

/* Next physical fragment: 0, or 1 at the end / on corruption (r->end). */
static int read_fragment(struct wal_reader *r, uint8_t *type_out, const uint8_t **p_out,
                         size_t *n_out, uint64_t *off_out)
{
    while (r->block_len - r->pos < PPDB_WAL_HEADER || r->block_len == 0) {
        int rc = advance_block(r);
        if (rc)
            return rc;
    }
    const uint8_t *h = r->block + r->pos;
    uint64_t off = r->block_off + r->pos;
    uint32_t crc = ppdb_load_u32le(h);
    uint32_t len = (uint32_t)h[4] | (uint32_t)h[5] << 8;
    uint8_t type = h[6];
    uint32_t room = r->block_len - r->pos - PPDB_WAL_HEADER;
    if (type == WAL_ZERO && len == 0 && crc == 0) {
        bool zero;
        int rc = rest_is_zero(r, r->pos, &zero);
        if (rc)
            return rc;
        return stop(r, zero ? WAL_END_CLEAN : WAL_END_CORRUPT, off, "zero fill before data"), 1;
    }
    if (len > room) {
        bool fits_full = len <= PPDB_WAL_BLOCK - r->pos - PPDB_WAL_HEADER;
        if (r->block_len < PPDB_WAL_BLOCK && fits_full)
            return stop(r, WAL_END_TORN, off, "file ends inside a fragment"), 1;
        return stop(r, WAL_END_CORRUPT, off, "fragment length beyond its block"), 1;
    }
    if (fragment_crc(type, h + PPDB_WAL_HEADER, len) != crc) {
        bool cut;
        int rc = cut_short(r, h, len, &cut);
        if (rc)
            return rc;
        if (cut)
            return stop(r, WAL_END_TORN, off, "append cut short before zero fill"), 1;
        return stop(r, WAL_END_CORRUPT, off, "checksum mismatch"), 1;
    }
    if (type == WAL_ZERO || type > WAL_TYPE_MAX)
        return stop(r, WAL_END_CORRUPT, off, "unknown fragment type"), 1;
    r->pos += PPDB_WAL_HEADER + len;
    *type_out = type;
    *p_out = h + PPDB_WAL_HEADER;
    *n_out = len;
    *off_out = off;
    return 0;
}

static int finish(struct wal_reader *r, const uint8_t *p, size_t n, const uint8_t **p_out,
                  size_t *n_out)
{
    r->good_end_off = r->block_off + r->pos;
    *p_out = p;
    *n_out = n;
    return 0;
}

int wal_reader_next(struct wal_reader *r, const uint8_t **p_out, size_t *n_out)
{
    if (r->end)
        return r->end == WAL_END_CORRUPT ? PPDB_ECORRUPT : PPDB_ENOTFOUND;
    bool in_record = false;
    uint64_t rec_off = 0;
    ppdb_buf_reset(&r->rec);
    for (;;) {
        uint8_t type;
        const uint8_t *p;
        size_t n;
        uint64_t off;
        int rc = read_fragment(r, &type, &p, &n, &off);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            if (in_record && r->end == WAL_END_CLEAN)
                stop(r, WAL_END_TORN, rec_off, "file ends inside a record");
            return r->end == WAL_END_CORRUPT ? PPDB_ECORRUPT : PPDB_ENOTFOUND;
        }
        if ((type == WAL_FULL || type == WAL_FIRST) && in_record)
            return stop(r, WAL_END_CORRUPT, rec_off, "record without its last fragment");
        if ((type == WAL_MIDDLE || type == WAL_LAST) && !in_record)
            return stop(r, WAL_END_CORRUPT, off, "fragment without its first");
        if (type == WAL_FULL)
            return finish(r, p, n, p_out, n_out);
        if (type == WAL_FIRST) {
            in_record = true;
            rec_off = off;
        }
        if (r->rec.len + n > PPDB_WAL_MAX_RECORD)
            return stop(r, WAL_END_CORRUPT, rec_off, "record too large");
        if ((rc = ppdb_buf_append(&r->rec, p, n)) != 0)
            return rc;
        if (type == WAL_LAST)
            return finish(r, r->rec.data, r->rec.len, p_out, n_out);
    }
}
