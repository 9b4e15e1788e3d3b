/*
 * test_table_util.h - helpers shared by the table-layer tests: a table
 * written to an in-memory fs from a sorted model, and deterministic values.
 */
#ifndef PPDB_TEST_TABLE_UTIL_H
#define PPDB_TEST_TABLE_UTIL_H

#include "check.h"
#include "table.h"

/* A value derived from its key (so the model needs no value storage):
 * compressible text of length 0..max-1. Returns the length. */
static inline size_t tt_value(const uint8_t *ikey, size_t klen, uint8_t *out, size_t max)
{
    uint64_t h = ppdb_hash64(ikey, klen, 7);
    size_t n = (size_t)(h % max);
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)('a' + (h >> ((i % 8) * 8)) % 13 + (i % 3));
    return n;
}

/* Writes `n` sorted entries (keys[i], lens[i]) to `path`; values from
 * tt_value. Returns the file size through *size_out. */
static inline void tt_write(struct ppdb_fs *fs, const char *path,
                            const struct ppdb_table_options *o, uint8_t **keys, const size_t *lens,
                            size_t n, size_t vmax, struct ppdb_table_props *props,
                            uint64_t *size_out)
{
    struct ppdb_file *f;
    CHECK_OK(fs->ops->open(fs, path, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_TRUNC, &f));
    struct ppdb_table_builder *b;
    CHECK_OK(ppdb_table_builder_new(fs, f, o, &b));
    uint8_t *v = malloc(vmax);
    for (size_t i = 0; i < n; i++) {
        size_t vn = tt_value(keys[i], lens[i], v, vmax);
        CHECK_OK(ppdb_table_builder_add(b, keys[i], lens[i], v, vn));
    }
    free(v);
    CHECK_OK(ppdb_table_builder_finish(b, props));
    *size_out = ppdb_table_builder_file_size(b);
    ppdb_table_builder_free(b);
    uint64_t sz;
    CHECK_OK(fs->ops->size(fs, f, &sz));
    CHECK_EQ_U64(sz, *size_out);
    CHECK_OK(fs->ops->close(fs, f));
}

#endif /* PPDB_TEST_TABLE_UTIL_H */
