/*
 * table.h - the table layer of the LSM engine (internal to engine/).
 *
 * An SSTable is an immutable, sorted file of (internal key, value) entries.
 * This header holds everything the rest of the engine needs to write and
 * read one: the internal key encoding shared with the memtable and the WAL
 * replay code, the block format (prefix compression with restart points),
 * a cache-line-blocked bloom filter, block compression (LZ4, zstd), a
 * sharded LRU block cache with a byte budget, the table builder and the
 * table reader with point lookups and iterators.
 *
 * The byte layout is documented in docs/formats/sst.md; the constants below
 * are the same names. In short:
 *
 *   +---------------------+
 *   | data block 0        |  each block: payload | type u8 | crc32c u32le
 *   | ...                 |
 *   | data block N-1      |
 *   | filter block        |  (absent when bloom_bits_per_key == 0)
 *   | properties block    |
 *   | index block         |
 *   | footer (64 bytes)   |  3 block handles, format version, crc, magic
 *   +---------------------+
 *
 * Threading: a builder is used by one thread. An open table is immutable:
 * any number of threads may call ppdb_table_get and run their own iterators
 * on it at once. The block cache is thread-safe.
 */
#ifndef PPDB_ENGINE_TABLE_H
#define PPDB_ENGINE_TABLE_H

#include "ppdb_base.h"
#include "ppdb_fs.h"

/* ============================================================ internal keys
 *
 *   internal key = user_key | ~version (u64 big-endian) | ~tag (u64 big-endian)
 *   tag          = (seq << 8) | type
 *
 * Both trailer words are stored inverted so that, for one user key, plain
 * memcmp of the 16-byte trailer orders entries by version descending, then
 * seq descending (then type descending). User keys are not prefix-free, so
 * whole internal keys must be compared with ppdb_ikey_cmp, never memcmp.
 * Unversioned entries use version 0.
 */

#define PPDB_IKEY_TRAILER 16u /* bytes after the user key */
#define PPDB_SEQ_MAX      ((1ull << 56) - 1)
#define PPDB_VERSION_MAX  UINT64_MAX

enum ppdb_vtype {
    PPDB_VT_DEL = 0,   /* tombstone, empty value */
    PPDB_VT_VALUE = 1, /* a value */
    PPDB_VT_TTL = 2,   /* a value that expires: expiry prefix | value */
    /* 3..7 reserved (merge operand) */
    PPDB_VT_MAX = 7
};

/* A PPDB_VT_TTL entry's stored value (in the log, memtables and tables
 * alike) starts with its expiry: wall-clock ms since the epoch, u64
 * little-endian; the user's value follows. The entry is dead once
 * now_ms >= expiry. */
#define PPDB_TTL_PREFIX 8u

_Static_assert(PPDB_IKEY_TRAILER == 2 * sizeof(uint64_t), "trailer = version + tag");
_Static_assert(PPDB_VT_MAX < 256, "type fits in the tag's low byte");
_Static_assert(PPDB_VT_TTL > PPDB_VT_VALUE && PPDB_VT_TTL <= PPDB_VT_MAX, "TTL type in range");
_Static_assert(PPDB_TTL_PREFIX == sizeof(uint64_t), "expiry prefix is one u64le");

/* Whether an entry of `type` with stored value val reads as absent at
 * now_ms: a tombstone, or a TTL value whose expiry has passed (a TTL value
 * too short to hold its prefix counts as expired). */
static inline bool ppdb_entry_dead(unsigned type, const uint8_t *val, size_t vlen, int64_t now_ms)
{
    if (type == PPDB_VT_DEL)
        return true;
    if (type != PPDB_VT_TTL)
        return false;
    if (vlen < PPDB_TTL_PREFIX)
        return true;
    uint64_t exp = ppdb_load_u64le(val);
    return now_ms >= 0 && (uint64_t)now_ms >= exp;
}

/* The user's part of a stored value (skips a TTL prefix). */
static inline const uint8_t *ppdb_entry_user_value(unsigned type, const uint8_t *val, size_t vlen,
                                                   size_t *len_out)
{
    if (type == PPDB_VT_TTL && vlen >= PPDB_TTL_PREFIX) {
        *len_out = vlen - PPDB_TTL_PREFIX;
        return val + PPDB_TTL_PREFIX;
    }
    *len_out = vlen;
    return val;
}

/* A decoded internal key; ukey points into the encoded bytes. */
struct ppdb_ikey {
    const uint8_t *ukey;
    size_t ulen;
    uint64_t version;
    uint64_t seq;
    unsigned type;
};

/* Writes the 16-byte trailer at p. */
static inline void ppdb_ikey_put_trailer(uint8_t *p, uint64_t version, uint64_t seq, unsigned type)
{
    PPDB_ASSERT(seq <= PPDB_SEQ_MAX);
    PPDB_ASSERT(type <= PPDB_VT_MAX);
    ppdb_store_u64be(p, ~version);
    ppdb_store_u64be(p + 8, ~((seq << 8) | type));
}

/* Encodes user_key | trailer into out (room for ulen + 16); returns the length. */
static inline size_t ppdb_ikey_encode(uint8_t *out, const void *ukey, size_t ulen, uint64_t version,
                                      uint64_t seq, unsigned type)
{
    if (ulen)
        memcpy(out, ukey, ulen);
    ppdb_ikey_put_trailer(out + ulen, version, seq, type);
    return ulen + PPDB_IKEY_TRAILER;
}

/* Appends an encoded internal key to b. */
static inline int ppdb_ikey_append(struct ppdb_buf *b, const void *ukey, size_t ulen,
                                   uint64_t version, uint64_t seq, unsigned type)
{
    uint8_t t[PPDB_IKEY_TRAILER];
    ppdb_ikey_put_trailer(t, version, seq, type);
    int rc = ppdb_buf_reserve(b, ulen + sizeof(t));
    if (rc)
        return rc;
    ppdb_buf_append(b, ukey, ulen);
    return ppdb_buf_append(b, t, sizeof(t));
}

/* Decodes; PPDB_ECORRUPT when n < 16 or the type is above PPDB_VT_MAX. */
static inline int ppdb_ikey_decode(const uint8_t *p, size_t n, struct ppdb_ikey *out)
{
    if (n < PPDB_IKEY_TRAILER)
        return PPDB_ECORRUPT;
    size_t ulen = n - PPDB_IKEY_TRAILER;
    uint64_t tag = ~ppdb_load_u64be(p + ulen + 8);
    if ((tag & 0xff) > PPDB_VT_MAX)
        return PPDB_ECORRUPT;
    out->ukey = p;
    out->ulen = ulen;
    out->version = ~ppdb_load_u64be(p + ulen);
    out->seq = tag >> 8;
    out->type = (unsigned)(tag & 0xff);
    return 0;
}

/* User key of an encoded internal key (n >= 16). */
static inline size_t ppdb_ikey_ulen(size_t n)
{
    PPDB_ASSERT(n >= PPDB_IKEY_TRAILER);
    return n - PPDB_IKEY_TRAILER;
}

/* Bytewise user-key comparison (shorter prefix first). Up to the first 16
 * bytes are compared as big-endian words, inline: typical keys (16 bytes,
 * often sharing a first word) never reach memcmp. */
static inline int ppdb_ukey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    for (int w = 0; w < 2 && alen >= 8 && blen >= 8; w++) {
        uint64_t x = ppdb_load_u64be(a), y = ppdb_load_u64be(b);
        if (x != y)
            return x < y ? -1 : 1;
        a += 8, b += 8, alen -= 8, blen -= 8;
    }
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* The engine's one order: user key ascending, then version descending, then
 * seq descending. Both keys are encoded internal keys (length >= 16). The
 * trailers compare as two big-endian words (equal to memcmp of the bytes). */
static inline int ppdb_ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = ppdb_ukey_cmp(a, alen - PPDB_IKEY_TRAILER, b, blen - PPDB_IKEY_TRAILER);
    if (c)
        return c;
    const uint8_t *ta = a + alen - PPDB_IKEY_TRAILER, *tb = b + blen - PPDB_IKEY_TRAILER;
    uint64_t x = ppdb_load_u64be(ta), y = ppdb_load_u64be(tb);
    if (x == y) {
        x = ppdb_load_u64be(ta + 8);
        y = ppdb_load_u64be(tb + 8);
    }
    return x < y ? -1 : x > y;
}

/* A seek key that sorts before every entry of user key ukey: ukey followed
 * by 16 zero bytes (no valid trailer is smaller: even version MAX, seq MAX
 * has a non-zero inverted type byte). Decoding it fails; it is for seeks
 * and index separators only. out has room for ulen + 16. */
static inline size_t ppdb_ikey_seek_key(uint8_t *out, const void *ukey, size_t ulen)
{
    if (ulen)
        memcpy(out, ukey, ulen);
    memset(out + ulen, 0, PPDB_IKEY_TRAILER);
    return ulen + PPDB_IKEY_TRAILER;
}

/* ========================================================== format constants */

#define PPDB_SST_MAGIC           0x3174737362647070ull /* bytes on disk (u64le): "ppdbsst1" */
#define PPDB_SST_FORMAT_VERSION  1u
#define PPDB_SST_FOOTER_SIZE     64u /* 3 handles (48) + version (4) + crc (4) + magic (8) */
#define PPDB_SST_HANDLE_SIZE     16u /* offset u64le + size u64le */
#define PPDB_SST_BLOCK_TRAILER   5u  /* type u8 + masked crc32c u32le */
#define PPDB_SST_FOOTER_CRC_SPAN 52u /* bytes of the footer the footer crc covers */
#define PPDB_SST_MAX_BLOCK       (64u << 20) /* a block (raw or stored) larger than this is corrupt */
#define PPDB_SST_PROPS_VERSION   1u
#define PPDB_BLOOM_LINE          64u           /* bytes per bloom cache line */
#define PPDB_BLOOM_TRAILER       8u            /* n_lines u32le, probes u8, 3 reserved zero bytes */
#define PPDB_BLOOM_SEED          0x5050444242u /* ppdb_hash64 seed for bloom keys */

_Static_assert(PPDB_SST_FOOTER_SIZE == 3 * PPDB_SST_HANDLE_SIZE + 4 + 4 + 8, "footer layout");
_Static_assert(PPDB_SST_FOOTER_CRC_SPAN == 3 * PPDB_SST_HANDLE_SIZE + 4, "crc covers handles+ver");
_Static_assert(PPDB_SST_BLOCK_TRAILER == 1 + 4, "block trailer layout");
_Static_assert(PPDB_BLOOM_LINE * 8 == 512, "a bloom line is one 64-byte cache line");

/* Block type byte in the block trailer = how the payload is compressed. */
enum ppdb_compression { PPDB_COMPRESS_NONE = 0, PPDB_COMPRESS_LZ4 = 1, PPDB_COMPRESS_ZSTD = 2 };

/* (offset, size) of a block in the file; size excludes the 5-byte trailer. */
struct ppdb_block_handle {
    uint64_t offset;
    uint64_t size;
};

/* ============================================================ compression */

/* Compresses src into out (appending) as a stored payload for `type`:
 * raw length varint | compressed bytes. PPDB_ENOTSUP for unknown types. */
int ppdb_compress(int type, int zstd_level, const uint8_t *src, size_t n, struct ppdb_buf *out);
/* Decompresses a stored payload into a new ppdb_malloc'ed buffer of *n_out
 * bytes (caller frees with ppdb_free). PPDB_ECORRUPT on any malformed input,
 * including a raw length above PPDB_SST_MAX_BLOCK. */
int ppdb_decompress(int type, const uint8_t *src, size_t n, uint8_t **out, size_t *n_out);
/* The same in two steps, for a caller that places the output: the raw
 * length a stored payload declares (PPDB_ECORRUPT above
 * PPDB_SST_MAX_BLOCK), then the payload decompressed into dst (raw bytes
 * of room), PPDB_ECORRUPT unless it yields exactly raw bytes. */
int ppdb_decompress_size(const uint8_t *src, size_t n, size_t *raw_out);
int ppdb_decompress_into(int type, const uint8_t *src, size_t n, uint8_t *dst, size_t raw);

/* ================================================================= blocks
 *
 * entry    = shared varint | unshared varint | value_len varint
 *            | key[shared..] (unshared bytes) | value
 * block    = entry* | restart u32le * n | n u32le      (n >= 1)
 * Every restart_interval-th entry has shared = 0 and its offset in the
 * restart array, so a seek binary-searches restarts and scans at most
 * restart_interval entries. Keys are internal keys in ppdb_ikey_cmp order.
 */

struct ppdb_block_builder {
    struct ppdb_buf buf; /* entries so far, then the restart array on finish */
    uint32_t *restarts;  /* offsets of restart entries */
    size_t n_restarts, cap_restarts;
    uint32_t interval;        /* entries per restart */
    uint32_t counter;         /* entries since the last restart */
    struct ppdb_buf last_key; /* previous key (for prefix compression and order) */
    uint64_t entries;
    bool finished;
};

void ppdb_block_builder_init(struct ppdb_block_builder *bb, uint32_t restart_interval);
void ppdb_block_builder_deinit(struct ppdb_block_builder *bb);
/* Back to empty, keeping memory. */
void ppdb_block_builder_reset(struct ppdb_block_builder *bb);
/* key > the previous key (ppdb_ikey_cmp) is asserted. */
int ppdb_block_builder_add(struct ppdb_block_builder *bb, const uint8_t *key, size_t klen,
                           const uint8_t *value, size_t vlen);
/* Size of the block if finished now. */
size_t ppdb_block_builder_size(const struct ppdb_block_builder *bb);
/* Appends the restart array; the block is bb->buf (valid until reset/deinit). */
int ppdb_block_builder_finish(struct ppdb_block_builder *bb);
static inline bool ppdb_block_builder_empty(const struct ppdb_block_builder *bb)
{
    return bb->entries == 0;
}

/* A parsed block over borrowed bytes (or the cache's copy). */
struct ppdb_block {
    const uint8_t *data;
    uint32_t size;         /* bytes of entries + restart array */
    uint32_t restarts_off; /* where the restart array starts = end of entries */
    uint32_t n_restarts;
};

/* Validates the restart array (PPDB_ECORRUPT when malformed). Entries are
 * validated lazily by the iterator. */
int ppdb_block_parse(struct ppdb_block *blk, const uint8_t *data, size_t size);

/* Iterator over one block. key bytes live in `key` (owned, reused). */
struct ppdb_block_iter {
    const struct ppdb_block *blk;
    uint32_t cur;      /* offset of the current entry; == restarts_off when invalid */
    uint32_t next_off; /* offset of the entry after the current one */
    uint32_t restart;  /* index of the restart block containing cur */
    struct ppdb_buf key;
    const uint8_t *value;
    uint32_t vlen;
    int status; /* 0 or PPDB_ECORRUPT; once set the iterator is invalid */
};

void ppdb_block_iter_init(struct ppdb_block_iter *it, const struct ppdb_block *blk);
void ppdb_block_iter_deinit(struct ppdb_block_iter *it);
void ppdb_block_iter_seek_first(struct ppdb_block_iter *it);
void ppdb_block_iter_seek_last(struct ppdb_block_iter *it);
/* First entry with key >= target (ppdb_ikey_cmp; target length >= 16). */
void ppdb_block_iter_seek(struct ppdb_block_iter *it, const uint8_t *target, size_t tlen);
void ppdb_block_iter_next(struct ppdb_block_iter *it);
void ppdb_block_iter_prev(struct ppdb_block_iter *it);
static inline bool ppdb_block_iter_valid(const struct ppdb_block_iter *it)
{
    return it->status == 0 && it->cur < it->blk->restarts_off;
}

/* ================================================================== bloom
 *
 * One filter per table over USER keys. Cache-line blocked: a key's hash
 * picks one 64-byte line and sets/tests `probes` bits inside it, so a
 * lookup touches one cache line. Layout: lines | n_lines u32le | probes u8
 * | 3 zero bytes.
 */

struct ppdb_bloom_builder {
    uint64_t *hashes; /* ppdb_hash64 of each added user key */
    size_t n, cap;
    uint32_t bits_per_key;
};

void ppdb_bloom_builder_init(struct ppdb_bloom_builder *bb, uint32_t bits_per_key);
void ppdb_bloom_builder_deinit(struct ppdb_bloom_builder *bb);
/* Adds a user key (consecutive duplicates are skipped by the caller). */
int ppdb_bloom_builder_add(struct ppdb_bloom_builder *bb, const void *ukey, size_t len);
/* Appends the filter bytes to out and resets the builder. */
int ppdb_bloom_builder_finish(struct ppdb_bloom_builder *bb, struct ppdb_buf *out);

/* A filter over borrowed bytes. */
struct ppdb_bloom {
    const uint8_t *lines;
    uint32_t n_lines;
    uint32_t probes;
};
/* PPDB_ECORRUPT when the layout is inconsistent. */
int ppdb_bloom_parse(struct ppdb_bloom *f, const uint8_t *p, size_t n);
/* false: the key is certainly absent; true: it may be present. */
bool ppdb_bloom_may_contain(const struct ppdb_bloom *f, const void *ukey, size_t len);
bool ppdb_bloom_may_contain_hash(const struct ppdb_bloom *f, uint64_t h);
static inline uint64_t ppdb_bloom_hash(const void *ukey, size_t len)
{
    return ppdb_hash64(ukey, len, PPDB_BLOOM_SEED);
}

/* ============================================================ block cache
 *
 * A sharded LRU cache with a byte budget. Entries are keyed by
 * (cache id, file number, offset); values are opaque, freed by the
 * caller-supplied free_cb once evicted (or erased) AND released by every
 * holder: a handle pins its entry. Thread-safe.
 */

struct ppdb_cache;
struct ppdb_cache_handle;

struct ppdb_cache_key {
    uint64_t id;   /* from ppdb_cache_new_id: one per table (or other user) */
    uint64_t file; /* file number */
    uint64_t off;  /* block offset */
};

typedef void (*ppdb_cache_free_cb)(void *value, size_t charge);

struct ppdb_cache_stats {
    uint64_t hits, misses, inserts, evictions;
    uint64_t usage_bytes; /* charge of all entries held (pinned or not) */
    uint64_t capacity_bytes;
    uint64_t entries;
};

/* shard_bits: 0 = default (4, i.e. 16 shards). capacity_bytes > 0. */
int ppdb_cache_new(size_t capacity_bytes, unsigned shard_bits, struct ppdb_cache **c_out);
/* All handles must have been released. */
void ppdb_cache_free(struct ppdb_cache *c);
/* A fresh id, unique within this cache. */
uint64_t ppdb_cache_new_id(struct ppdb_cache *c);
/* A pinned handle or NULL (counted as a miss). */
struct ppdb_cache_handle *ppdb_cache_lookup(struct ppdb_cache *c, const struct ppdb_cache_key *k);
/* Inserts (replacing an entry with the same key) and returns a pinned
 * handle in *h_out (or releases it when h_out is NULL). The cache owns
 * value from now on, even on error (it is then freed at once). */
int ppdb_cache_insert(struct ppdb_cache *c, const struct ppdb_cache_key *k, void *value,
                      size_t charge, ppdb_cache_free_cb free_cb, struct ppdb_cache_handle **h_out);
/* As ppdb_cache_insert, unless an entry with key k is there: then that one
 * is pinned in *h_out (counted as a hit) and value is freed with free_cb.
 * So two threads that opened the same thing at once keep one of them. */
int ppdb_cache_insert_if_absent(struct ppdb_cache *c, const struct ppdb_cache_key *k, void *value,
                                size_t charge, ppdb_cache_free_cb free_cb,
                                struct ppdb_cache_handle **h_out);
/* As ppdb_cache_insert, but once evicted and released the value may be
 * kept by the cache as a spare (a few per shard, beyond the budget) instead
 * of freed, for ppdb_cache_lookup_or_spare. free_cb is required. */
int ppdb_cache_insert_reusable(struct ppdb_cache *c, const struct ppdb_cache_key *k, void *value,
                               size_t charge, ppdb_cache_free_cb free_cb,
                               struct ppdb_cache_handle **h_out);
/* As ppdb_cache_lookup; on a miss, also takes the newest spare of k's
 * shard if it was inserted with free_cb: *spare_out (else NULL) is then
 * the caller's, to reuse in place of a new allocation or free with free_cb,
 * and *charge_out its charge. */
struct ppdb_cache_handle *ppdb_cache_lookup_or_spare(struct ppdb_cache *c,
                                                     const struct ppdb_cache_key *k,
                                                     ppdb_cache_free_cb free_cb, void **spare_out,
                                                     size_t *charge_out);
void *ppdb_cache_value(const struct ppdb_cache_handle *h);
void ppdb_cache_release(struct ppdb_cache *c, struct ppdb_cache_handle *h);
/* Drops the entry (freed when its last handle is released). */
void ppdb_cache_erase(struct ppdb_cache *c, const struct ppdb_cache_key *k);
void ppdb_cache_stats(struct ppdb_cache *c, struct ppdb_cache_stats *out);

/* ========================================================= table builder */

struct ppdb_table_options {
    uint32_t block_size;              /* target uncompressed data block bytes (4096) */
    uint32_t restart_interval;        /* entries per restart point (16) */
    uint32_t bloom_bits_per_key;      /* 10; 0 = no filter */
    int compression;                  /* enum ppdb_compression (NONE) */
    int zstd_level;                   /* 0 = zstd's default (3) */
    const struct ppdb_logger *logger; /* NULL = ppdb_logger_default() */
};

void ppdb_table_options_default(struct ppdb_table_options *o);

/* What a finished table holds (also stored in its properties block). */
struct ppdb_table_props {
    uint64_t entries;
    uint64_t deletions; /* entries of type PPDB_VT_DEL */
    uint64_t data_blocks;
    uint64_t data_bytes; /* stored bytes of data blocks, trailers included */
    uint64_t index_bytes;
    uint64_t filter_bytes;
    uint64_t raw_key_bytes;
    uint64_t raw_value_bytes;
    uint64_t min_version, max_version;
    uint64_t min_seq, max_seq;
    uint64_t file_size;
    uint32_t compression;
    struct ppdb_buf smallest; /* smallest internal key (owned) */
    struct ppdb_buf largest;  /* largest internal key (owned) */
};

void ppdb_table_props_init(struct ppdb_table_props *p);
void ppdb_table_props_deinit(struct ppdb_table_props *p);

struct ppdb_table_builder;

/* file is opened for append and empty; the builder borrows fs and file
 * (the caller syncs and closes the file after finish). */
int ppdb_table_builder_new(struct ppdb_fs *fs, struct ppdb_file *file,
                           const struct ppdb_table_options *opts,
                           struct ppdb_table_builder **b_out);
/* Keys strictly ascending by ppdb_ikey_cmp (asserted). After an error the
 * builder only accepts ppdb_table_builder_free. */
int ppdb_table_builder_add(struct ppdb_table_builder *b, const uint8_t *ikey, size_t klen,
                           const void *value, size_t vlen);
/* Writes the last data block, filter, properties, index and footer. props_out
 * (may be NULL) is filled; deinit it with ppdb_table_props_deinit. */
int ppdb_table_builder_finish(struct ppdb_table_builder *b, struct ppdb_table_props *props_out);
/* Bytes appended to the file so far (the final size after finish). */
uint64_t ppdb_table_builder_file_size(const struct ppdb_table_builder *b);
uint64_t ppdb_table_builder_entries(const struct ppdb_table_builder *b);
/* Frees the builder; without a finish the file holds a partial table that
 * the caller removes (abandon). */
void ppdb_table_builder_free(struct ppdb_table_builder *b);

/* ========================================================== table reader */

struct ppdb_table;
struct ppdb_table_iter;

struct ppdb_table_read_options {
    const struct ppdb_logger *logger; /* NULL = ppdb_logger_default() */
    bool fill_cache;                  /* iterators insert blocks they load (true) */
    /* Block cache key space. 0: a fresh id from the cache; the table's
     * blocks are erased from the cache on close. Non-zero (e.g. one id per
     * DB from ppdb_cache_new_id): blocks stay cached after close and are
     * found again when the same file number is reopened. */
    uint64_t cache_id;
    /* false (the zero value): map the file when the fs supports it, so
     * reads become memory copies and uncompressed data blocks are used in
     * place, without the block cache, their checksum verified on first use
     * only. true: always pread. */
    bool no_mmap;
};

/* Defaults: default logger, fill_cache = true, cache_id = 0, no_mmap = false. */
void ppdb_table_read_options_default(struct ppdb_table_read_options *ro);

/* Reads and validates footer, index, filter and properties, which stay in
 * memory. fs and file are borrowed until ppdb_table_close (the caller closes
 * the file afterwards). cache may be NULL (every read goes to the file).
 * ro may be NULL (defaults). Corruption: PPDB_ECORRUPT, logged. */
int ppdb_table_open(struct ppdb_fs *fs, struct ppdb_file *file, uint64_t file_size,
                    struct ppdb_cache *cache, uint64_t file_number,
                    const struct ppdb_table_read_options *ro, struct ppdb_table **t_out);
/* All iterators must have been freed. Cached blocks of the table are erased. */
void ppdb_table_close(struct ppdb_table *t);

const struct ppdb_table_props *ppdb_table_props(const struct ppdb_table *t);

/* Point lookup. Calls cb for the entries with user key ukey in internal
 * order (highest version first, then highest seq) until cb returns true
 * (stop) or the entries end. key and value are valid only during the call.
 * Returns 0 when cb was called at least once, PPDB_ENOTFOUND when the table
 * holds no entry of ukey (a bloom negative touches no data block),
 * PPDB_ECORRUPT or PPDB_EIO. */
typedef bool (*ppdb_table_get_cb)(void *arg, const struct ppdb_ikey *key, const uint8_t *value,
                                  size_t vlen);
int ppdb_table_get(struct ppdb_table *t, const void *ukey, size_t ulen, ppdb_table_get_cb cb,
                   void *arg);

/* The first entry of ukey (highest version, then seq): key fields in
 * *key_out (key_out->ukey is NULL: the caller has the user key), value
 * copied into value_out (reset first). Tombstones are returned as such. */
int ppdb_table_get_first(struct ppdb_table *t, const void *ukey, size_t ulen,
                         struct ppdb_ikey *key_out, struct ppdb_buf *value_out);

/* Bloom check alone: false = ukey is certainly not in the table. */
bool ppdb_table_may_contain(const struct ppdb_table *t, const void *ukey, size_t ulen);

/* Approximate file offset where ikey would be (for size estimates):
 * the offset of the data block that would hold it, or the data end. */
uint64_t ppdb_table_approx_offset(const struct ppdb_table *t, const uint8_t *ikey, size_t klen);

/* Iterator. Starts invalid; position it with a seek. key/value pointers are
 * valid until the next move or free. Errors make it invalid with status. */
int ppdb_table_iter_new(struct ppdb_table *t, struct ppdb_table_iter **it_out);
void ppdb_table_iter_free(struct ppdb_table_iter *it);
void ppdb_table_iter_seek_first(struct ppdb_table_iter *it);
void ppdb_table_iter_seek_last(struct ppdb_table_iter *it);
/* First entry >= ikey (ppdb_ikey_cmp; klen >= 16). */
void ppdb_table_iter_seek(struct ppdb_table_iter *it, const uint8_t *ikey, size_t klen);
void ppdb_table_iter_next(struct ppdb_table_iter *it);
void ppdb_table_iter_prev(struct ppdb_table_iter *it);
bool ppdb_table_iter_valid(const struct ppdb_table_iter *it);
const uint8_t *ppdb_table_iter_key(const struct ppdb_table_iter *it, size_t *len_out);
const uint8_t *ppdb_table_iter_value(const struct ppdb_table_iter *it, size_t *len_out);
/* 0, or the error that stopped the iterator. */
int ppdb_table_iter_status(const struct ppdb_table_iter *it);

#endif /* PPDB_ENGINE_TABLE_H */
