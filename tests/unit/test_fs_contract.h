/*
 * test_fs_contract.h - the ppdb_fs contract suite, run against every
 * implementation (test_fs_posix.c, test_fs_mem.c) with the same checks.
 */
#ifndef PPDB_TEST_FS_CONTRACT_H
#define PPDB_TEST_FS_CONTRACT_H

#include "ppdb_fs.h"

struct fs_contract {
    const char *name;                     /* "posix", "mem" */
    int (*make)(struct ppdb_fs **fs_out); /* a fresh fs for one test */
    const char *root;                     /* existing directory each test works under */
};

/* Runs every contract test; exits non-zero on the first failure. */
void fs_contract_run(const struct fs_contract *c);

/* dir/name into out (PPDB_FS path rules); asserts it fits. */
char *fs_path(char *out, size_t cap, const char *dir, const char *name);

/* Writes n bytes of p to path (create/trunc), optionally synced. */
void fs_put(struct ppdb_fs *fs, const char *path, const void *p, size_t n, int sync);

/* Checks that path holds exactly the NUL-terminated string `want`. */
void fs_expect(struct ppdb_fs *fs, const char *path, const char *want);

/* The test content of a log at offset off: never zero, so that zero fill
 * after it stands out; fs_log_fill writes n bytes of it from off. */
uint8_t fs_log_byte(uint64_t off);
void fs_log_fill(uint8_t *p, uint64_t off, size_t n);

#endif
