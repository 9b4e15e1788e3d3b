/*
 * table_reader.c - opens an SSTable and serves point lookups and iterators.
 *
 * Open reads the footer, then the index, filter and properties blocks, and
 * keeps them in memory: the index is decoded once into a flat array of
 * (separator key, block handle), so finding a block is a binary search over
 * memory with no decoding. Data blocks are read through the block cache
 * keyed by (cache id, file number, block offset); a block's checksum is
 * verified and its payload decompressed once, when it is loaded.
 *
 * Validation: everything read from the file is checked before use. The
 * footer has a magic number and its own CRC; every block has a CRC over
 * payload and type; the index must describe contiguous data blocks in
 * ascending key order that end exactly where the meta blocks start.
 * Corruption is reported as PPDB_ECORRUPT with one ERROR log line naming
 * the file number and what was wrong; it never leads to a crash or to
 * wrong data being returned.
 *
 * Performance (perf, 1M entries, 124 MB table, 8 MiB cache): with pread,
 * a random get was dominated by the kernel copy, the block checksum,
 * malloc/free and cache churn of blocks read once; reading through the map
 * with uncompressed blocks used in place and checked once removed those
 * (3.8 -> ~1.6 us/get). What remains is memory latency: the bloom line,
 * the index search (8-byte key prefixes in the index array keep it off the
 * key bytes) and the restart search in the block.
 *
 * Compressed blocks (a cache smaller than the data: nearly every get loads
 * one) are decompressed from the map straight into the loaded block, which
 * is reused: a miss takes a spare of the cache's shard (a block the cache
 * evicted) to decompress into, and the loaded block goes into the cache
 * without a handle once the get or iterator is done with it. So a miss is
 * two trips through the shard lock and, in the steady state, allocates and
 * frees only the cache's small entry (it was three trips, and three
 * allocations and three frees, the block's two often into another
 * thread's malloc arena).
 *
 * Invariants: an open table is immutable, so gets and iterators on many
 * threads need no locks here (the cache locks its shards).
 */
#include <stdatomic.h>

#include "table.h"

#define SEEK_KEY_STACK 256u

struct index_entry {
    uint64_t prefix;  /* first 8 user key bytes, big-endian, zero-padded */
    uint64_t off;     /* data block offset */
    uint32_t size;    /* payload size (trailer excluded) */
    uint32_t key_len; /* separator key, in ppdb_table.index_keys */
    uint64_t key_off;
};

struct ppdb_table {
    struct ppdb_fs *fs;
    struct ppdb_file *file;
    uint64_t file_size;
    uint64_t file_number;
    struct ppdb_cache *cache;
    uint64_t cache_id;
    bool own_cache_id; /* erase our blocks on close */
    bool fill_cache;
    const struct ppdb_logger *lg;
    struct index_entry *idx;
    uint32_t n_blocks;
    uint8_t *index_keys;
    uint64_t data_end; /* end of the last data block */
    uint8_t *filter_mem;
    struct ppdb_bloom bloom;
    bool has_filter;
    struct ppdb_table_props props;
    const uint8_t *map; /* the whole file, or NULL */
    uint64_t map_len;
    _Atomic uint8_t *verified; /* per data block: checked in place (map only) */
};

/* A loaded block: `raw` holds payload + trailer of an uncompressed block,
 * or the decompressed payload of a compressed block of a mapped file;
 * `heap` holds the decompressed payload of a compressed block read with
 * pread. */
struct loaded_block {
    struct ppdb_block blk;
    uint8_t *heap;
    size_t cap; /* bytes allocated when it may become a cache spare, else 0 */
    uint8_t raw[];
};

/* Blocks decompressed from the map are allocated in steps of this many
 * bytes, so a spare of one fits the next of about the same size. */
#define SPARE_STEP 512u

/* A block pinned for use: through the cache, owned, or in the map. A
 * block loaded for the cache goes into it when released: inserted without
 * a handle, one trip through the shard lock instead of two. */
struct block_ref {
    struct ppdb_block *blk;
    struct loaded_block *lb;
    struct ppdb_cache_handle *h;
    bool insert; /* lb goes into the cache at offset off when released */
    uint64_t off;
    struct ppdb_block mapped; /* blk points here for in-place blocks */
};

void ppdb_table_read_options_default(struct ppdb_table_read_options *ro)
{
    memset(ro, 0, sizeof(*ro));
    ro->fill_cache = true;
}

static int corrupt(const struct ppdb_table *t, const char *what, uint64_t off)
{
    PPDB_LOG(t->lg, PPDB_LOG_ERROR, "sst", "corrupt table",
             "file=%llu what=\"%s\" offset=%llu size=%llu", (unsigned long long)t->file_number,
             what, (unsigned long long)off, (unsigned long long)t->file_size);
    return PPDB_ECORRUPT;
}

/* pread, or a copy from the map. */
static int read_at(const struct ppdb_table *t, void *buf, size_t n, uint64_t off, size_t *got)
{
    if (t->map) {
        *got = off >= t->map_len ? 0 : (size_t)PPDB_MIN((uint64_t)n, t->map_len - off);
        memcpy(buf, t->map + off, *got);
        return 0;
    }
    return t->fs->ops->pread(t->fs, t->file, buf, n, off, got);
}

/* Orders user keys like ppdb_ukey_cmp whenever two prefixes differ (a
 * zero pad only meets a zero byte or the end of the other key's prefix),
 * so most index comparisons touch no key bytes. */
static uint64_t key_prefix(const uint8_t *ikey, size_t klen)
{
    size_t ulen = klen - PPDB_IKEY_TRAILER;
    if (ulen >= 8)
        return ppdb_load_u64be(ikey);
    uint8_t b[8] = {0};
    memcpy(b, ikey, ulen);
    return ppdb_load_u64be(b);
}

static void free_loaded(struct loaded_block *lb)
{
    if (lb) {
        ppdb_free(lb->heap);
        ppdb_free(lb);
    }
}

static void free_loaded_cb(void *value, size_t charge)
{
    free_loaded(value);
}

/* Points lb->blk at its payload: parsed as a block of entries (kv), or
 * taken raw (filter, properties). */
static int set_block(const struct ppdb_table *t, struct loaded_block *lb, const uint8_t *data,
                     size_t size, const char *what, bool kv, uint64_t off)
{
    if (kv)
        return ppdb_block_parse(&lb->blk, data, size) != 0 ? corrupt(t, what, off) : 0;
    lb->blk.data = data;
    lb->blk.size = (uint32_t)size;
    lb->blk.restarts_off = 0;
    lb->blk.n_restarts = 0;
    return 0;
}

/* A compressed block of a mapped file, checked (unless verified says it
 * was) and decompressed straight from the map into the loaded block: no
 * pread, no staging copy, one allocation, or none when `spare` (a block
 * the cache evicted; taken over, may be NULL) is large enough. */
static int load_mapped(const struct ppdb_table *t, const struct ppdb_block_handle *h,
                       const char *what, bool kv, _Atomic uint8_t *verified, const uint8_t *src,
                       struct loaded_block *spare, struct loaded_block **out)
{
    size_t n = (size_t)h->size, raw;
    bool trusted = verified && atomic_load_explicit(verified, memory_order_acquire);
    int rc = 0;
    if (!trusted && ppdb_crc32c_unmask(ppdb_load_u32le(src + n + 1)) != ppdb_crc32c(src, n + 1))
        rc = corrupt(t, "block checksum mismatch", h->offset);
    if (rc == 0 && ppdb_decompress_size(src, n, &raw) != 0)
        rc = corrupt(t, "bad compressed block", h->offset);
    size_t need = rc ? 0 : sizeof(struct loaded_block) + raw;
    struct loaded_block *lb = spare;
    if (lb && (rc || lb->cap < need)) {
        free_loaded(lb);
        lb = NULL;
    }
    if (rc)
        return rc;
    if (!lb) {
        size_t cap = (need + SPARE_STEP - 1) / SPARE_STEP * SPARE_STEP;
        if ((lb = ppdb_malloc(cap)) == NULL)
            return PPDB_ENOMEM;
        lb->cap = cap;
    }
    PPDB_ASSERT(lb->cap >= need);
    lb->heap = NULL;
    rc = ppdb_decompress_into(src[n], src, n, lb->raw, raw);
    if (rc == PPDB_ECORRUPT)
        rc = corrupt(t, "bad compressed block", h->offset);
    if (rc == 0)
        rc = set_block(t, lb, lb->raw, raw, what, kv, h->offset);
    if (rc) {
        free_loaded(lb);
        return rc;
    }
    if (verified && !trusted)
        atomic_store_explicit(verified, 1, memory_order_release);
    *out = lb;
    return 0;
}

/* Reads, verifies and decompresses the block at h into a new loaded_block. */
static int load_block(const struct ppdb_table *t, const struct ppdb_block_handle *h,
                      const char *what, bool kv, _Atomic uint8_t *verified,
                      struct loaded_block *spare, struct loaded_block **out)
{
    size_t n = (size_t)h->size;
    bool bad = h->size > PPDB_SST_MAX_BLOCK || h->offset > t->file_size ||
               h->size + PPDB_SST_BLOCK_TRAILER > t->file_size - h->offset;
    if (!bad && t->map && h->offset + n + PPDB_SST_BLOCK_TRAILER <= t->map_len &&
        t->map[h->offset + n] != PPDB_COMPRESS_NONE)
        return load_mapped(t, h, what, kv, verified, t->map + h->offset, spare, out);
    free_loaded(spare); /* only a block decompressed from the map reuses one */
    if (bad)
        return corrupt(t, what, h->offset);
    /* Otherwise a copy, always checked: raw blocks are kept whole (the
     * loaded block owns them). */
    size_t room = n + PPDB_SST_BLOCK_TRAILER;
    struct loaded_block *lb = ppdb_malloc(sizeof(*lb) + room);
    if (!lb)
        return PPDB_ENOMEM;
    lb->heap = NULL;
    lb->cap = 0;
    size_t got = 0;
    int rc = t->fs->ops->pread(t->fs, t->file, lb->raw, room, h->offset, &got);
    if (rc == 0 && got != room)
        rc = corrupt(t, "short read", h->offset);
    const uint8_t *src = lb->raw;
    uint8_t type = rc == 0 ? src[n] : PPDB_COMPRESS_NONE;
    if (rc == 0 && ppdb_crc32c_unmask(ppdb_load_u32le(src + n + 1)) != ppdb_crc32c(src, n + 1))
        rc = corrupt(t, "block checksum mismatch", h->offset);
    const uint8_t *data = src;
    size_t size = n;
    if (rc == 0 && type != PPDB_COMPRESS_NONE) {
        rc = ppdb_decompress(type, src, n, &lb->heap, &size);
        if (rc == PPDB_ECORRUPT)
            rc = corrupt(t, "bad compressed block", h->offset);
        data = lb->heap;
    }
    if (rc == 0)
        rc = set_block(t, lb, data, size, what, kv, h->offset);
    if (rc) {
        free_loaded(lb);
        return rc;
    }
    if (type != PPDB_COMPRESS_NONE) { /* drop the compressed copy */
        struct loaded_block *small = ppdb_realloc(lb, sizeof(*lb));
        if (small)
            lb = small;
    }
    *out = lb;
    return 0;
}

/* An uncompressed data block used in place in the map. Its checksum and
 * structure are checked on first use; later uses trust the flag (the map
 * of an immutable file does not change). Returns 1 when the block is
 * compressed (the caller loads it), 0 when ref is set, or an error. */
static int map_data_block(struct ppdb_table *t, uint32_t i, struct block_ref *ref)
{
    const struct index_entry *e = &t->idx[i];
    const uint8_t *p = t->map + e->off; /* inside the file: checked at open */
    if (p[e->size] != PPDB_COMPRESS_NONE)
        return 1;
    ref->blk = &ref->mapped;
    if (PPDB_LIKELY(atomic_load_explicit(&t->verified[i], memory_order_acquire))) {
        struct ppdb_block *b = &ref->mapped;
        b->data = p;
        b->size = e->size;
        b->n_restarts = ppdb_load_u32le(p + e->size - 4);
        b->restarts_off = e->size - 4 - 4 * b->n_restarts;
        return 0;
    }
    uint32_t crc = ppdb_crc32c(p, (size_t)e->size + 1);
    if (ppdb_crc32c_unmask(ppdb_load_u32le(p + e->size + 1)) != crc)
        return corrupt(t, "block checksum mismatch", e->off);
    if (ppdb_block_parse(&ref->mapped, p, e->size) != 0)
        return corrupt(t, "data block", e->off);
    atomic_store_explicit(&t->verified[i], 1, memory_order_release);
    return 0;
}

/* Pins data block i: in the map, or through the cache when there is one. */
static int read_data_block(struct ppdb_table *t, uint32_t i, bool fill, struct block_ref *ref)
{
    const struct index_entry *e = &t->idx[i];
    ref->h = NULL;
    ref->lb = NULL;
    ref->insert = false;
    bool mapped = false;
    if (t->map) {
        int rc = map_data_block(t, i, ref);
        if (rc <= 0)
            return rc;
        mapped = true; /* compressed: decompressed from the map on a miss */
    }
    struct ppdb_cache_key k = {t->cache_id, t->file_number, e->off};
    void *spare = NULL;
    size_t spare_charge;
    if (t->cache && mapped && fill)
        ref->h = ppdb_cache_lookup_or_spare(t->cache, &k, free_loaded_cb, &spare, &spare_charge);
    else if (t->cache)
        ref->h = ppdb_cache_lookup(t->cache, &k);
    if (ref->h) {
        ref->lb = ppdb_cache_value(ref->h);
        ref->blk = &ref->lb->blk;
        return 0;
    }
    struct ppdb_block_handle h = {e->off, e->size};
    /* A compressed block in the map is checksummed on its first load only
     * (the map of an immutable file does not change), like raw ones. */
    int rc =
        load_block(t, &h, "data block", true, t->map ? &t->verified[i] : NULL, spare, &ref->lb);
    if (rc)
        return rc;
    ref->blk = &ref->lb->blk;
    ref->insert = t->cache && fill;
    ref->off = e->off;
    return 0;
}

static void release_block(struct ppdb_table *t, struct block_ref *ref)
{
    struct loaded_block *lb = ref->lb;
    if (ref->h) {
        ppdb_cache_release(t->cache, ref->h);
    } else if (ref->insert) {
        /* Best effort: on failure the cache frees it, a later read loads
         * it again. A block decompressed from the map becomes a spare once
         * evicted. */
        struct ppdb_cache_key k = {t->cache_id, t->file_number, ref->off};
        if (lb->cap)
            (void)ppdb_cache_insert_reusable(t->cache, &k, lb, lb->cap, free_loaded_cb, NULL);
        else
            (void)ppdb_cache_insert(t->cache, &k, lb, sizeof(*lb) + lb->blk.size, free_loaded_cb,
                                    NULL);
    } else {
        free_loaded(lb);
    }
    ref->h = NULL;
    ref->lb = NULL;
    ref->blk = NULL;
    ref->insert = false;
}

/* ------------------------------------------------------------------- open */

static void read_handle(const uint8_t *p, struct ppdb_block_handle *h)
{
    h->offset = ppdb_load_u64le(p);
    h->size = ppdb_load_u64le(p + 8);
}

/* hs: index, filter, properties. */
static int read_footer(struct ppdb_table *t, struct ppdb_block_handle hs[3])
{
    uint8_t f[PPDB_SST_FOOTER_SIZE];
    size_t got = 0;
    if (t->file_size < PPDB_SST_FOOTER_SIZE)
        return corrupt(t, "file shorter than the footer", 0);
    uint64_t off = t->file_size - PPDB_SST_FOOTER_SIZE;
    int rc = read_at(t, f, sizeof(f), off, &got);
    if (rc)
        return rc;
    if (got != sizeof(f))
        return corrupt(t, "short footer read", off);
    if (ppdb_load_u64le(f + 56) != PPDB_SST_MAGIC)
        return corrupt(t, "bad magic number", off);
    uint32_t crc = ppdb_crc32c(f, PPDB_SST_FOOTER_CRC_SPAN);
    if (ppdb_crc32c_unmask(ppdb_load_u32le(f + 52)) != crc)
        return corrupt(t, "footer checksum mismatch", off);
    uint32_t version = ppdb_load_u32le(f + 48);
    if (version != PPDB_SST_FORMAT_VERSION) {
        PPDB_LOG(t->lg, PPDB_LOG_ERROR, "sst", "unsupported table format", "file=%llu version=%u",
                 (unsigned long long)t->file_number, version);
        return PPDB_EVERSION;
    }
    for (int i = 0; i < 3; i++)
        read_handle(f + 16 * i, &hs[i]);
    return 0;
}

/* Decodes one index entry's value (varint offset, varint size). */
static bool decode_handle(const uint8_t *p, size_t n, struct ppdb_block_handle *h)
{
    struct ppdb_rd rd;
    ppdb_rd_init(&rd, p, n);
    return ppdb_rd_varint(&rd, &h->offset) == 0 && ppdb_rd_varint(&rd, &h->size) == 0 &&
           ppdb_rd_left(&rd) == 0 && h->size <= PPDB_SST_MAX_BLOCK;
}

static int grow_index(struct ppdb_table *t, uint32_t *cap)
{
    uint32_t nc = *cap ? *cap * 2 : 256;
    struct index_entry *x = ppdb_realloc(t->idx, (size_t)nc * sizeof(*x));
    if (!x)
        return PPDB_ENOMEM;
    t->idx = x;
    *cap = nc;
    return 0;
}

/* Walks the index block into t->idx and t->index_keys; the blocks must be
 * contiguous from offset 0 and the keys strictly ascending. */
static int decode_index(struct ppdb_table *t, const struct ppdb_block *blk)
{
    struct ppdb_block_iter it;
    struct ppdb_buf keys;
    uint32_t cap = 0;
    uint64_t expect = 0;
    int rc = 0;
    ppdb_buf_init(&keys);
    ppdb_block_iter_init(&it, blk);
    for (ppdb_block_iter_seek_first(&it); ppdb_block_iter_valid(&it); ppdb_block_iter_next(&it)) {
        struct ppdb_block_handle h;
        if (!decode_handle(it.value, it.vlen, &h) || h.offset != expect) {
            rc = corrupt(t, "bad index entry", expect);
            break;
        }
        if (t->n_blocks > 0) {
            const struct index_entry *p = &t->idx[t->n_blocks - 1];
            if (ppdb_ikey_cmp(keys.data + p->key_off, p->key_len, it.key.data, it.key.len) >= 0) {
                rc = corrupt(t, "index keys out of order", h.offset);
                break;
            }
        }
        if (t->n_blocks == cap && (rc = grow_index(t, &cap)) != 0)
            break;
        struct index_entry *e = &t->idx[t->n_blocks++];
        e->off = h.offset;
        e->size = (uint32_t)h.size;
        e->key_off = keys.len;
        e->key_len = (uint32_t)it.key.len;
        e->prefix = key_prefix(it.key.data, it.key.len);
        if ((rc = ppdb_buf_append(&keys, it.key.data, it.key.len)) != 0)
            break;
        expect = h.offset + h.size + PPDB_SST_BLOCK_TRAILER;
    }
    if (rc == 0 && it.status)
        rc = corrupt(t, "malformed index block", 0);
    ppdb_block_iter_deinit(&it);
    size_t n;
    t->index_keys = ppdb_buf_steal(&keys, &n);
    t->data_end = expect;
    return rc;
}

static int parse_props(struct ppdb_table *t, const struct ppdb_block *blk)
{
    struct ppdb_table_props *p = &t->props;
    uint64_t *f[] = {&p->entries,       &p->deletions,       &p->data_blocks, &p->data_bytes,
                     &p->raw_key_bytes, &p->raw_value_bytes, &p->min_version, &p->max_version,
                     &p->min_seq,       &p->max_seq};
    struct ppdb_rd rd;
    uint8_t version;
    uint64_t comp, len;
    const uint8_t *b;
    ppdb_rd_init(&rd, blk->data, blk->size);
    if (ppdb_rd_u8(&rd, &version) != 0 || version != PPDB_SST_PROPS_VERSION)
        return corrupt(t, "bad properties version", 0);
    for (size_t i = 0; i < PPDB_ARRAY_LEN(f); i++)
        if (ppdb_rd_varint(&rd, f[i]) != 0)
            return corrupt(t, "bad properties", 0);
    if (ppdb_rd_varint(&rd, &comp) != 0 || comp > PPDB_COMPRESS_ZSTD)
        return corrupt(t, "bad properties", 0);
    p->compression = (uint32_t)comp;
    struct ppdb_buf *keys[2] = {&p->smallest, &p->largest};
    for (int i = 0; i < 2; i++) {
        if (ppdb_rd_varint(&rd, &len) != 0 || ppdb_rd_bytes(&rd, (size_t)len, &b) != 0 ||
            (len != 0 && len < PPDB_IKEY_TRAILER))
            return corrupt(t, "bad properties key", 0);
        int rc = ppdb_buf_append(keys[i], b, (size_t)len);
        if (rc)
            return rc;
    }
    if (ppdb_rd_left(&rd) != 0 || (p->entries == 0) != (t->n_blocks == 0) ||
        p->data_blocks != t->n_blocks)
        return corrupt(t, "properties disagree with the index", 0);
    p->file_size = t->file_size;
    return 0;
}

/* Loads a raw meta block (filter, properties; never cached) into *lb. */
static int load_meta(struct ppdb_table *t, const struct ppdb_block_handle *h, const char *what,
                     struct loaded_block **lb)
{
    if (h->offset < t->data_end || h->offset > t->file_size - PPDB_SST_FOOTER_SIZE)
        return corrupt(t, what, h->offset);
    return load_block(t, h, what, false, NULL, NULL, lb);
}

static int open_meta(struct ppdb_table *t, const struct ppdb_block_handle hs[3])
{
    struct loaded_block *lb = NULL;
    /* The index first: it fixes data_end, which the others must follow. */
    int rc = load_block(t, &hs[0], "index block", true, NULL, NULL, &lb);
    if (rc == 0)
        rc = decode_index(t, &lb->blk);
    if (rc == 0 && hs[0].offset < t->data_end)
        rc = corrupt(t, "index overlaps data blocks", hs[0].offset);
    free_loaded(lb);
    lb = NULL;
    if (rc == 0 && hs[1].size) {
        rc = load_meta(t, &hs[1], "filter block", &lb);
        if (rc == 0 && ppdb_bloom_parse(&t->bloom, lb->blk.data, lb->blk.size) != 0)
            rc = corrupt(t, "malformed filter", hs[1].offset);
        if (rc == 0) {
            t->filter_mem = (uint8_t *)lb; /* bloom.lines points into lb */
            t->has_filter = true;
            lb = NULL;
        }
    } else if (rc == 0 && hs[1].offset != 0) {
        rc = corrupt(t, "bad filter handle", hs[1].offset);
    }
    free_loaded(lb);
    lb = NULL;
    if (rc == 0)
        rc = load_meta(t, &hs[2], "properties block", &lb);
    if (rc == 0)
        rc = parse_props(t, &lb->blk);
    free_loaded(lb);
    return rc;
}

/* Maps the file when asked and possible; otherwise reads use pread. */
static void map_file(struct ppdb_table *t, const struct ppdb_table_read_options *ro)
{
    const uint8_t *p;
    uint64_t len;
    if (ro->no_mmap || !t->fs->ops->map || t->file_size == 0 ||
        t->fs->ops->map(t->fs, t->file, &p, &len) != 0)
        return;
    if (len < t->file_size) { /* the caller's size is wrong: use pread */
        t->fs->ops->unmap(t->fs, t->file, p, len);
        return;
    }
    t->map = p;
    t->map_len = len;
}

int ppdb_table_open(struct ppdb_fs *fs, struct ppdb_file *file, uint64_t file_size,
                    struct ppdb_cache *cache, uint64_t file_number,
                    const struct ppdb_table_read_options *ro, struct ppdb_table **t_out)
{
    struct ppdb_table_read_options dro;
    if (!ro) {
        ppdb_table_read_options_default(&dro);
        ro = &dro;
    }
    struct ppdb_table *t = ppdb_calloc(1, sizeof(*t));
    if (!t)
        return PPDB_ENOMEM;
    t->fs = fs;
    t->file = file;
    t->file_size = file_size;
    t->file_number = file_number;
    t->cache = cache;
    t->fill_cache = ro->fill_cache;
    t->lg = ro->logger ? ro->logger : ppdb_logger_default();
    ppdb_table_props_init(&t->props);
    if (cache) {
        t->own_cache_id = ro->cache_id == 0;
        t->cache_id = ro->cache_id ? ro->cache_id : ppdb_cache_new_id(cache);
    }
    map_file(t, ro);
    struct ppdb_block_handle hs[3];
    int rc = read_footer(t, hs);
    if (rc == 0)
        rc = open_meta(t, hs);
    if (rc == 0 && t->map && t->n_blocks &&
        (t->verified = ppdb_calloc(t->n_blocks, sizeof(*t->verified))) == NULL)
        rc = PPDB_ENOMEM;
    if (rc) {
        ppdb_table_close(t);
        return rc;
    }
    *t_out = t;
    return 0;
}

void ppdb_table_close(struct ppdb_table *t)
{
    if (!t)
        return;
    if (t->cache && t->own_cache_id) {
        for (uint32_t i = 0; i < t->n_blocks; i++) {
            struct ppdb_cache_key k = {t->cache_id, t->file_number, t->idx[i].off};
            ppdb_cache_erase(t->cache, &k);
        }
    }
    free_loaded((struct loaded_block *)t->filter_mem);
    if (t->map)
        t->fs->ops->unmap(t->fs, t->file, t->map, t->map_len);
    ppdb_free((void *)t->verified);
    ppdb_free(t->idx);
    ppdb_free(t->index_keys);
    ppdb_table_props_deinit(&t->props);
    ppdb_free(t);
}

const struct ppdb_table_props *ppdb_table_props(const struct ppdb_table *t)
{
    return &t->props;
}

/* ------------------------------------------------------------------ reads */

/* First block whose separator key >= ikey, or n_blocks. */
static uint32_t find_block(const struct ppdb_table *t, const uint8_t *ikey, size_t klen)
{
    uint64_t prefix = key_prefix(ikey, klen);
    uint32_t lo = 0, hi = t->n_blocks;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct index_entry *e = &t->idx[mid];
        bool less = e->prefix != prefix
                        ? e->prefix < prefix
                        : ppdb_ikey_cmp(t->index_keys + e->key_off, e->key_len, ikey, klen) < 0;
        if (less)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool ppdb_table_may_contain(const struct ppdb_table *t, const void *ukey, size_t ulen)
{
    return !t->has_filter || ppdb_bloom_may_contain(&t->bloom, ukey, ulen);
}

uint64_t ppdb_table_approx_offset(const struct ppdb_table *t, const uint8_t *ikey, size_t klen)
{
    PPDB_ASSERT(klen >= PPDB_IKEY_TRAILER);
    uint32_t i = find_block(t, ikey, klen);
    return i < t->n_blocks ? t->idx[i].off : t->data_end;
}

/* Feeds the entries of ukey in block `bi` from the iterator's position to
 * cb. Returns 1 when done (cb stopped or a different user key follows),
 * 0 when the block ended (the next block may continue), <0 on error. */
static int scan_block(struct ppdb_block_iter *bit, const uint8_t *ukey, size_t ulen,
                      ppdb_table_get_cb cb, void *arg, bool *found)
{
    for (; ppdb_block_iter_valid(bit); ppdb_block_iter_next(bit)) {
        struct ppdb_ikey k;
        if (ppdb_ikey_decode(bit->key.data, bit->key.len, &k) != 0)
            return PPDB_ECORRUPT;
        if (k.ulen != ulen || (ulen && memcmp(k.ukey, ukey, ulen) != 0))
            return 1;
        *found = true;
        if (cb(arg, &k, bit->value, bit->vlen))
            return 1;
    }
    return bit->status ? bit->status : 0;
}

static int get_from(struct ppdb_table *t, uint32_t bi, const uint8_t *seek, size_t slen,
                    ppdb_table_get_cb cb, void *arg, bool *found)
{
    struct ppdb_block_iter bit;
    int rc = 0;
    ppdb_buf_init(&bit.key);
    for (bool first = true; bi < t->n_blocks && rc == 0; bi++, first = false) {
        struct block_ref ref;
        if ((rc = read_data_block(t, bi, true, &ref)) != 0)
            break;
        struct ppdb_buf key = bit.key;
        ppdb_block_iter_init(&bit, ref.blk);
        bit.key = key;
        if (first)
            ppdb_block_iter_seek(&bit, seek, slen);
        else
            ppdb_block_iter_seek_first(&bit);
        rc = scan_block(&bit, seek, slen - PPDB_IKEY_TRAILER, cb, arg, found);
        release_block(t, &ref);
        if (rc == PPDB_ECORRUPT)
            rc = corrupt(t, "malformed data block", t->idx[bi].off);
    }
    ppdb_block_iter_deinit(&bit);
    return rc < 0 ? rc : 0;
}

int ppdb_table_get(struct ppdb_table *t, const void *ukey, size_t ulen, ppdb_table_get_cb cb,
                   void *arg)
{
    if (t->has_filter && !ppdb_bloom_may_contain(&t->bloom, ukey, ulen))
        return PPDB_ENOTFOUND;
    uint8_t stack[SEEK_KEY_STACK];
    uint8_t *seek = stack;
    if (ulen + PPDB_IKEY_TRAILER > sizeof(stack) &&
        (seek = ppdb_malloc(ulen + PPDB_IKEY_TRAILER)) == NULL)
        return PPDB_ENOMEM;
    size_t slen = ppdb_ikey_seek_key(seek, ukey, ulen);
    bool found = false;
    int rc = get_from(t, find_block(t, seek, slen), seek, slen, cb, arg, &found);
    if (seek != stack)
        ppdb_free(seek);
    if (rc)
        return rc;
    return found ? 0 : PPDB_ENOTFOUND;
}

struct first_ctx {
    struct ppdb_ikey *key;
    struct ppdb_buf *value;
    int rc;
};

static bool first_cb(void *arg, const struct ppdb_ikey *k, const uint8_t *value, size_t vlen)
{
    struct first_ctx *c = arg;
    *c->key = *k;
    c->key->ukey = NULL;
    ppdb_buf_reset(c->value);
    c->rc = ppdb_buf_append(c->value, value, vlen);
    return true;
}

int ppdb_table_get_first(struct ppdb_table *t, const void *ukey, size_t ulen,
                         struct ppdb_ikey *key_out, struct ppdb_buf *value_out)
{
    struct first_ctx c = {key_out, value_out, 0};
    int rc = ppdb_table_get(t, ukey, ulen, first_cb, &c);
    return rc ? rc : c.rc;
}

/* --------------------------------------------------------------- iterator */

struct ppdb_table_iter {
    struct ppdb_table *t;
    uint32_t bi; /* block of bit; n_blocks when none is loaded */
    struct block_ref ref;
    struct ppdb_block_iter bit;
    struct ppdb_block empty; /* bit's block while none is loaded */
    int status;
};

int ppdb_table_iter_new(struct ppdb_table *t, struct ppdb_table_iter **it_out)
{
    struct ppdb_table_iter *it = ppdb_calloc(1, sizeof(*it));
    if (!it)
        return PPDB_ENOMEM;
    it->t = t;
    it->bi = t->n_blocks;
    ppdb_block_iter_init(&it->bit, &it->empty);
    *it_out = it;
    return 0;
}

static void drop_block(struct ppdb_table_iter *it)
{
    if (it->ref.blk)
        release_block(it->t, &it->ref);
    it->bi = it->t->n_blocks;
    it->bit.blk = &it->empty;
    it->bit.cur = it->bit.next_off = 0;
}

void ppdb_table_iter_free(struct ppdb_table_iter *it)
{
    if (!it)
        return;
    drop_block(it);
    ppdb_block_iter_deinit(&it->bit);
    ppdb_free(it);
}

static void fail(struct ppdb_table_iter *it, int rc)
{
    drop_block(it);
    it->status = rc;
}

/* Loads block bi under the block iterator (keeping its key buffer). */
static bool enter_block(struct ppdb_table_iter *it, uint32_t bi)
{
    drop_block(it);
    int rc = read_data_block(it->t, bi, it->t->fill_cache, &it->ref);
    if (rc) {
        fail(it, rc);
        return false;
    }
    struct ppdb_buf key = it->bit.key;
    ppdb_block_iter_init(&it->bit, it->ref.blk);
    it->bit.key = key;
    it->bi = bi;
    return true;
}

/* After a block move: reports a block iterator error. */
static bool check_block(struct ppdb_table_iter *it)
{
    if (it->bit.status == 0)
        return true;
    fail(it, corrupt(it->t, "malformed data block", it->t->idx[it->bi].off));
    return false;
}

static void skip_forward(struct ppdb_table_iter *it)
{
    while (!ppdb_block_iter_valid(&it->bit) && it->status == 0) {
        uint32_t next = it->bi + 1;
        if (!check_block(it) || next >= it->t->n_blocks) {
            drop_block(it);
            return;
        }
        if (!enter_block(it, next))
            return;
        ppdb_block_iter_seek_first(&it->bit);
    }
    check_block(it);
}

static void skip_backward(struct ppdb_table_iter *it)
{
    while (!ppdb_block_iter_valid(&it->bit) && it->status == 0) {
        if (!check_block(it) || it->bi == 0 || it->bi >= it->t->n_blocks) {
            drop_block(it);
            return;
        }
        if (!enter_block(it, it->bi - 1))
            return;
        ppdb_block_iter_seek_last(&it->bit);
    }
    check_block(it);
}

void ppdb_table_iter_seek_first(struct ppdb_table_iter *it)
{
    it->status = 0;
    drop_block(it);
    if (it->t->n_blocks == 0 || !enter_block(it, 0))
        return;
    ppdb_block_iter_seek_first(&it->bit);
    skip_forward(it);
}

void ppdb_table_iter_seek_last(struct ppdb_table_iter *it)
{
    it->status = 0;
    drop_block(it);
    if (it->t->n_blocks == 0 || !enter_block(it, it->t->n_blocks - 1))
        return;
    ppdb_block_iter_seek_last(&it->bit);
    skip_backward(it);
}

void ppdb_table_iter_seek(struct ppdb_table_iter *it, const uint8_t *ikey, size_t klen)
{
    PPDB_ASSERT(klen >= PPDB_IKEY_TRAILER);
    it->status = 0;
    uint32_t bi = find_block(it->t, ikey, klen);
    if (bi >= it->t->n_blocks) {
        drop_block(it);
        return;
    }
    if (bi != it->bi && !enter_block(it, bi))
        return;
    ppdb_block_iter_seek(&it->bit, ikey, klen);
    skip_forward(it);
}

void ppdb_table_iter_next(struct ppdb_table_iter *it)
{
    PPDB_ASSERT(ppdb_table_iter_valid(it));
    ppdb_block_iter_next(&it->bit);
    skip_forward(it);
}

void ppdb_table_iter_prev(struct ppdb_table_iter *it)
{
    PPDB_ASSERT(ppdb_table_iter_valid(it));
    ppdb_block_iter_prev(&it->bit);
    skip_backward(it);
}

bool ppdb_table_iter_valid(const struct ppdb_table_iter *it)
{
    return it->status == 0 && it->bi < it->t->n_blocks && ppdb_block_iter_valid(&it->bit);
}

const uint8_t *ppdb_table_iter_key(const struct ppdb_table_iter *it, size_t *len_out)
{
    PPDB_ASSERT(ppdb_table_iter_valid(it));
    *len_out = it->bit.key.len;
    return it->bit.key.data;
}

const uint8_t *ppdb_table_iter_value(const struct ppdb_table_iter *it, size_t *len_out)
{
    PPDB_ASSERT(ppdb_table_iter_valid(it));
    *len_out = it->bit.vlen;
    return it->bit.value;
}

int ppdb_table_iter_status(const struct ppdb_table_iter *it)
{
    return it->status;
}
