/*
 * table_builder.c - writes an SSTable from entries in ascending order.
 *
 * Entries fill a data block until it reaches block_size; the block is then
 * (optionally) compressed, given its trailer (type byte + masked CRC32C of
 * payload and type) and appended. Its index entry is written only when the
 * next key is known, so the index key can be a short separator between the
 * two blocks instead of the whole last key (LevelDB's trick). After the
 * last block come the filter (bloom over user keys), the properties block,
 * the index block and the fixed 64-byte footer. Writes are gathered in a
 * buffer and handed to the fs in large appends.
 *
 * Invariants: keys strictly ascend (asserted); after the first error every
 * call returns it (status is sticky); offset = bytes handed to the fs plus
 * bytes buffered, i.e. the file offset of the next block.
 */
#include "table.h"

#define WRITE_BUFFER_BYTES (256u << 10)

struct ppdb_table_builder {
    struct ppdb_fs *fs;
    struct ppdb_file *file;
    struct ppdb_table_options o;
    struct ppdb_block_builder data;
    struct ppdb_block_builder index;
    struct ppdb_bloom_builder bloom;
    struct ppdb_buf last_key; /* last key added */
    struct ppdb_buf scratch;  /* compressed payloads, index keys, props */
    struct ppdb_buf wbuf;     /* bytes not yet appended to the file */
    uint64_t offset;
    bool pending_index; /* a block was written; its index entry waits */
    struct ppdb_block_handle pending;
    struct ppdb_table_props props;
    int status;
    bool finished;
};

void ppdb_table_options_default(struct ppdb_table_options *o)
{
    memset(o, 0, sizeof(*o));
    o->block_size = 4096;
    o->restart_interval = 16;
    o->bloom_bits_per_key = 10;
    o->compression = PPDB_COMPRESS_NONE;
}

void ppdb_table_props_init(struct ppdb_table_props *p)
{
    memset(p, 0, sizeof(*p));
    ppdb_buf_init(&p->smallest);
    ppdb_buf_init(&p->largest);
    p->min_version = UINT64_MAX;
    p->min_seq = UINT64_MAX;
}

void ppdb_table_props_deinit(struct ppdb_table_props *p)
{
    ppdb_buf_deinit(&p->smallest);
    ppdb_buf_deinit(&p->largest);
}

int ppdb_table_builder_new(struct ppdb_fs *fs, struct ppdb_file *file,
                           const struct ppdb_table_options *opts, struct ppdb_table_builder **b_out)
{
    PPDB_ASSERT(opts->block_size >= 64 && opts->block_size <= PPDB_SST_MAX_BLOCK / 4);
    PPDB_ASSERT(opts->restart_interval >= 1);
    if (opts->compression < PPDB_COMPRESS_NONE || opts->compression > PPDB_COMPRESS_ZSTD)
        return PPDB_ENOTSUP;
    struct ppdb_table_builder *b = ppdb_calloc(1, sizeof(*b));
    if (!b)
        return PPDB_ENOMEM;
    b->fs = fs;
    b->file = file;
    b->o = *opts;
    ppdb_block_builder_init(&b->data, opts->restart_interval);
    ppdb_block_builder_init(&b->index, 1);
    ppdb_bloom_builder_init(&b->bloom, opts->bloom_bits_per_key);
    ppdb_buf_init(&b->last_key);
    ppdb_buf_init(&b->scratch);
    ppdb_buf_init(&b->wbuf);
    ppdb_table_props_init(&b->props);
    b->props.compression = (uint32_t)opts->compression;
    *b_out = b;
    return 0;
}

void ppdb_table_builder_free(struct ppdb_table_builder *b)
{
    if (!b)
        return;
    ppdb_block_builder_deinit(&b->data);
    ppdb_block_builder_deinit(&b->index);
    ppdb_bloom_builder_deinit(&b->bloom);
    ppdb_buf_deinit(&b->last_key);
    ppdb_buf_deinit(&b->scratch);
    ppdb_buf_deinit(&b->wbuf);
    ppdb_table_props_deinit(&b->props);
    ppdb_free(b);
}

uint64_t ppdb_table_builder_file_size(const struct ppdb_table_builder *b)
{
    return b->offset;
}

uint64_t ppdb_table_builder_entries(const struct ppdb_table_builder *b)
{
    return b->props.entries;
}

static int flush_wbuf(struct ppdb_table_builder *b)
{
    if (b->wbuf.len == 0)
        return 0;
    int rc = b->fs->ops->append(b->fs, b->file, b->wbuf.data, b->wbuf.len);
    ppdb_buf_reset(&b->wbuf);
    return rc;
}

static int emit(struct ppdb_table_builder *b, const void *p, size_t n)
{
    int rc = ppdb_buf_append(&b->wbuf, p, n);
    if (rc)
        return rc;
    b->offset += n;
    return b->wbuf.len >= WRITE_BUFFER_BYTES ? flush_wbuf(b) : 0;
}

/* Appends payload | type | crc and reports where it went. */
static int write_raw_block(struct ppdb_table_builder *b, const uint8_t *p, size_t n, int type,
                           struct ppdb_block_handle *h)
{
    uint8_t trailer[PPDB_SST_BLOCK_TRAILER];
    trailer[0] = (uint8_t)type;
    uint32_t crc = ppdb_crc32c_extend(ppdb_crc32c(p, n), trailer, 1);
    ppdb_store_u32le(trailer + 1, ppdb_crc32c_mask(crc));
    h->offset = b->offset;
    h->size = n;
    int rc = emit(b, p, n);
    return rc ? rc : emit(b, trailer, sizeof(trailer));
}

/* Compresses when configured and worth it (saves at least 1/8). */
static int write_block(struct ppdb_table_builder *b, const uint8_t *p, size_t n,
                       struct ppdb_block_handle *h)
{
    if (b->o.compression != PPDB_COMPRESS_NONE) {
        ppdb_buf_reset(&b->scratch);
        int rc = ppdb_compress(b->o.compression, b->o.zstd_level, p, n, &b->scratch);
        if (rc == 0 && b->scratch.len < n - n / 8)
            return write_raw_block(b, b->scratch.data, b->scratch.len, b->o.compression, h);
        if (rc && rc != PPDB_EIO)
            return rc;
    }
    return write_raw_block(b, p, n, PPDB_COMPRESS_NONE, h);
}

static int flush_data_block(struct ppdb_table_builder *b)
{
    if (ppdb_block_builder_empty(&b->data))
        return 0;
    PPDB_ASSERT(!b->pending_index);
    int rc = ppdb_block_builder_finish(&b->data);
    if (rc)
        return rc;
    uint64_t start = b->offset;
    rc = write_block(b, b->data.buf.data, b->data.buf.len, &b->pending);
    if (rc)
        return rc;
    b->props.data_blocks++;
    b->props.data_bytes += b->offset - start;
    b->pending_index = true;
    ppdb_block_builder_reset(&b->data);
    return 0;
}

/* Index key for the pending block: a short user key s with
 * last_ukey < s < next_ukey followed by the all-zero trailer (the smallest
 * internal key of s), or the last key itself when no such s is shorter.
 * next == NULL: any s > last_ukey will do (the table's last block). */
static int add_index_entry(struct ppdb_table_builder *b, const uint8_t *next, size_t nlen)
{
    const uint8_t *last = b->last_key.data;
    size_t ulen = b->last_key.len - PPDB_IKEY_TRAILER;
    size_t cut = SIZE_MAX; /* keep last[0..cut) and increment last[cut] */
    if (next) {
        size_t nulen = nlen - PPDB_IKEY_TRAILER, i = 0, m = PPDB_MIN(ulen, nulen);
        while (i < m && last[i] == next[i])
            i++;
        if (i < m && last[i] < 0xff && last[i] + 1 < next[i])
            cut = i;
    } else {
        for (size_t i = 0; i < ulen; i++)
            if (last[i] != 0xff) {
                cut = i;
                break;
            }
    }
    ppdb_buf_reset(&b->scratch);
    int rc;
    if (cut != SIZE_MAX && cut + 1 < ulen) {
        rc = ppdb_buf_reserve(&b->scratch, cut + 1 + PPDB_IKEY_TRAILER);
        if (rc)
            return rc;
        b->scratch.len = ppdb_ikey_seek_key(b->scratch.data, last, cut + 1);
        b->scratch.data[cut]++;
    } else if ((rc = ppdb_buf_append(&b->scratch, last, b->last_key.len)) != 0) {
        return rc;
    }
    uint8_t v[20];
    size_t vn = ppdb_varint_put(v, b->pending.offset);
    vn += ppdb_varint_put(v + vn, b->pending.size);
    b->pending_index = false;
    return ppdb_block_builder_add(&b->index, b->scratch.data, b->scratch.len, v, vn);
}

static void note_props(struct ppdb_table_builder *b, const uint8_t *ikey, size_t klen, size_t vlen)
{
    struct ppdb_ikey k;
    PPDB_ASSERT(ppdb_ikey_decode(ikey, klen, &k) == 0);
    struct ppdb_table_props *p = &b->props;
    p->entries++;
    p->deletions += k.type == PPDB_VT_DEL;
    p->raw_key_bytes += klen;
    p->raw_value_bytes += vlen;
    p->min_version = PPDB_MIN(p->min_version, k.version);
    p->max_version = PPDB_MAX(p->max_version, k.version);
    p->min_seq = PPDB_MIN(p->min_seq, k.seq);
    p->max_seq = PPDB_MAX(p->max_seq, k.seq);
}

int ppdb_table_builder_add(struct ppdb_table_builder *b, const uint8_t *ikey, size_t klen,
                           const void *value, size_t vlen)
{
    PPDB_ASSERT(!b->finished);
    PPDB_ASSERT(klen >= PPDB_IKEY_TRAILER);
    PPDB_ASSERT(klen + vlen < PPDB_SST_MAX_BLOCK / 2);
    if (b->status)
        return b->status;
    bool first = b->props.entries == 0;
    PPDB_ASSERT(first || ppdb_ikey_cmp(b->last_key.data, b->last_key.len, ikey, klen) < 0);
    int rc = 0;
    if (b->pending_index)
        rc = add_index_entry(b, ikey, klen);
    size_t ulen = klen - PPDB_IKEY_TRAILER;
    if (!rc && b->o.bloom_bits_per_key &&
        (first || b->last_key.len != klen || memcmp(b->last_key.data, ikey, ulen) != 0))
        rc = ppdb_bloom_builder_add(&b->bloom, ikey, ulen);
    if (!rc)
        rc = ppdb_block_builder_add(&b->data, ikey, klen, value, vlen);
    if (!rc && first)
        rc = ppdb_buf_append(&b->props.smallest, ikey, klen);
    if (!rc) {
        ppdb_buf_reset(&b->last_key);
        rc = ppdb_buf_append(&b->last_key, ikey, klen);
    }
    if (!rc) {
        note_props(b, ikey, klen, vlen);
        if (ppdb_block_builder_size(&b->data) >= b->o.block_size)
            rc = flush_data_block(b);
    }
    return b->status = rc;
}

static int write_props(struct ppdb_table_builder *b, struct ppdb_block_handle *h)
{
    const struct ppdb_table_props *p = &b->props;
    uint64_t f[] = {p->entries,       p->deletions,       p->data_blocks, p->data_bytes,
                    p->raw_key_bytes, p->raw_value_bytes, p->min_version, p->max_version,
                    p->min_seq,       p->max_seq,         p->compression};
    struct ppdb_buf *s = &b->scratch;
    ppdb_buf_reset(s);
    int rc = ppdb_buf_append_u8(s, PPDB_SST_PROPS_VERSION);
    for (size_t i = 0; !rc && i < PPDB_ARRAY_LEN(f); i++)
        rc = ppdb_buf_append_varint(s, f[i]);
    if (!rc)
        rc = ppdb_buf_append_varint(s, p->smallest.len);
    if (!rc)
        rc = ppdb_buf_append(s, p->smallest.data, p->smallest.len);
    if (!rc)
        rc = ppdb_buf_append_varint(s, p->largest.len);
    if (!rc)
        rc = ppdb_buf_append(s, p->largest.data, p->largest.len);
    return rc ? rc : write_raw_block(b, s->data, s->len, PPDB_COMPRESS_NONE, h);
}

static int write_footer(struct ppdb_table_builder *b, const struct ppdb_block_handle hs[3])
{
    uint8_t f[PPDB_SST_FOOTER_SIZE];
    for (int i = 0; i < 3; i++) {
        ppdb_store_u64le(f + 16 * i, hs[i].offset);
        ppdb_store_u64le(f + 16 * i + 8, hs[i].size);
    }
    ppdb_store_u32le(f + 48, PPDB_SST_FORMAT_VERSION);
    ppdb_store_u32le(f + 52, ppdb_crc32c_mask(ppdb_crc32c(f, PPDB_SST_FOOTER_CRC_SPAN)));
    ppdb_store_u64le(f + 56, PPDB_SST_MAGIC);
    return emit(b, f, sizeof(f));
}

/* hs: index, filter, properties (the footer's order). */
static int write_meta(struct ppdb_table_builder *b, struct ppdb_block_handle hs[3])
{
    int rc = 0;
    uint64_t start = b->offset;
    if (b->o.bloom_bits_per_key && b->props.entries) {
        ppdb_buf_reset(&b->scratch);
        rc = ppdb_bloom_builder_finish(&b->bloom, &b->scratch);
        if (!rc)
            rc = write_raw_block(b, b->scratch.data, b->scratch.len, PPDB_COMPRESS_NONE, &hs[1]);
    }
    b->props.filter_bytes = b->offset - start;
    if (!rc)
        rc = ppdb_buf_append(&b->props.largest, b->last_key.data, b->last_key.len);
    if (!rc) {
        /* index_bytes is known only after the props block: leave it 0 there. */
        rc = write_props(b, &hs[2]);
    }
    if (!rc)
        rc = ppdb_block_builder_finish(&b->index);
    start = b->offset;
    if (!rc)
        rc = write_raw_block(b, b->index.buf.data, b->index.buf.len, PPDB_COMPRESS_NONE, &hs[0]);
    b->props.index_bytes = b->offset - start;
    return rc;
}

int ppdb_table_builder_finish(struct ppdb_table_builder *b, struct ppdb_table_props *props_out)
{
    PPDB_ASSERT(!b->finished);
    b->finished = true;
    if (b->status)
        return b->status;
    struct ppdb_block_handle hs[3] = {{0, 0}, {0, 0}, {0, 0}};
    int rc = flush_data_block(b);
    if (!rc && b->pending_index)
        rc = add_index_entry(b, NULL, 0);
    if (!rc)
        rc = write_meta(b, hs);
    if (!rc)
        rc = write_footer(b, hs);
    if (!rc)
        rc = flush_wbuf(b);
    if (rc)
        return b->status = rc;
    b->props.file_size = b->offset;
    if (props_out) {
        *props_out = b->props;
        ppdb_table_props_init(&b->props); /* ownership of the key buffers moved */
    }
    return 0;
}
