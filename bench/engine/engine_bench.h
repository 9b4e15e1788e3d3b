/*
 * engine_bench.h - `ppdb-bench engine`: db_bench-style workloads run on
 * PPDB's storage engine and on LevelDB, RocksDB and LMDB, side by side.
 *
 * Layout. The parent (runner.c) forks and execs itself once per engine and
 * workload set, so every engine runs in a fresh process whose peak RSS and
 * /proc/self/io counters are its own; the child (workloads.c) opens the
 * engine through a small ops table (struct bench_kv_ops, one adapter file
 * per engine: kv_*.c), runs the set's workloads and writes one JSON line per
 * workload to a pipe. The parent interleaves engines (A, B, C, D, A, B, ...)
 * over the repetitions, takes medians and prints the table.
 *
 * An adapter leaves an op NULL when its engine lacks the API (PPDB's
 * iterators and compact-range are being written): the workload is then
 * reported as "n/a" and never as a number.
 */
#ifndef PPDB_ENGINE_BENCH_H
#define PPDB_ENGINE_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Settings every engine gets (the "identical settings"). */
struct bench_kv_config {
    const char *dir;           /* the database directory (created by open) */
    bool compression;          /* snappy for the peers, LZ4 for PPDB; or none */
    bool sync_writes;          /* database used for synced writes (LMDB: no MDB_NOSYNC) */
    size_t write_buffer_bytes; /* memtable size: 4 MiB */
    size_t table_file_bytes;   /* target table file size: 2 MiB (LevelDB's default) */
    size_t block_bytes;        /* 4 KiB */
    size_t block_cache_bytes;  /* 8 MiB */
    int bloom_bits_per_key;    /* 10 */
    uint64_t map_bytes;        /* LMDB map size */
};

/* One write of a batch handed to ops->write. */
struct bench_kv_op {
    const char *key;
    size_t klen;
    const char *val; /* NULL: delete */
    size_t vlen;
};

/* Counters an engine may export (PPDB's group commit). */
struct bench_kv_stats {
    uint64_t writes; /* synced writes acknowledged */
    uint64_t syncs;  /* log fsyncs */
};

struct bench_kv;        /* an open database, per adapter */
struct bench_kv_reader; /* per-thread read state (LMDB: a read txn), per adapter */

struct bench_kv_ops {
    const char *name;
    const char *compression_name; /* what "compression on" means for it */
    /* Ops return 0 or a negative PPDB_E* code (peers: PPDB_EIO, with the
     * engine's message on stderr); *kv_out is closed by close. */
    int (*open)(const struct bench_kv_config *cfg, struct bench_kv **kv_out);
    void (*close)(struct bench_kv *kv);
    /* Applies n ops; n == 1 is a single put/delete (not a batch), n > 1 is
     * one atomic batch (LMDB: one write txn). */
    int (*write)(struct bench_kv *kv, const struct bench_kv_op *ops, size_t n, bool sync);
    int (*reader_open)(struct bench_kv *kv, struct bench_kv_reader **r_out);
    void (*reader_close)(struct bench_kv_reader *r);
    /* *found_out tells whether key is present; the value is read in full. */
    int (*get)(struct bench_kv_reader *r, const char *key, size_t klen, bool *found_out);
    /* Optional. Visits up to max entries from the first: *count_out. */
    int (*scan_all)(struct bench_kv_reader *r, uint64_t max, uint64_t *count_out);
    /* Optional. Seeks to key and reads up to nexts entries from there. */
    int (*seek)(struct bench_kv_reader *r, const char *key, size_t klen, int nexts,
                uint64_t *count_out);
    /* Optional. Compacts the whole key range and waits for it (LMDB: env sync). */
    int (*compact)(struct bench_kv *kv);
    /* Optional. Makes the memtable a table file (untimed, before reads). */
    int (*flush)(struct bench_kv *kv);
    /* Optional. */
    int (*stats)(struct bench_kv *kv, struct bench_kv_stats *out);
};

extern const struct bench_kv_ops bench_kv_ppdb;
#ifdef PPDB_BENCH_HAVE_LEVELDB
extern const struct bench_kv_ops bench_kv_leveldb;
#endif
#ifdef PPDB_BENCH_HAVE_ROCKSDB
extern const struct bench_kv_ops bench_kv_rocksdb;
#endif
#ifdef PPDB_BENCH_HAVE_LMDB
extern const struct bench_kv_ops bench_kv_lmdb;
#endif

/* Options of one run, parsed by the runner and passed to children. */
struct bench_opts {
    uint64_t num;        /* N: keys in the fills, gets in the reads */
    uint64_t seeks;      /* seekrandom operations */
    uint64_t sync_num;   /* synced writes in each fillsync */
    uint64_t seed;       /* the key stream's seed */
    int reps;            /* interleaved repetitions */
    int max_seconds;     /* per workload; a workload stops there (truncated) */
    int lmdb_txn_ops;    /* LMDB puts per write txn in fills and deletes */
    bool compression;    /* on or off for all engines */
    bool json;           /* JSON lines on stdout (table on stderr) */
    char engines[128];   /* comma-separated */
    char workloads[256]; /* comma-separated filter, "" = all */
    char dir[512];       /* base directory for the databases */
};

/* One JSON line of a child, parsed by the runner. Numbers are -1 when the
 * line had none (null). */
struct bench_record {
    char engine[16];
    char workload[24];
    char status[16]; /* ok | truncated | n/a | error */
    char note[96];
    int threads;
    double ops_per_s, ops_per_s_compacted, write_amp, writes_per_sync;
    double peak_rss_bytes, disk_bytes, ops, found;
};

#define BENCH_MAX_RECORDS 2048
#define BENCH_MAX_REPS    9

struct bench_results {
    struct bench_record rec[BENCH_MAX_RECORDS];
    int count;
    int dropped;  /* records beyond BENCH_MAX_RECORDS */
    int failures; /* children that failed, unparsable lines */
};

/* Prints medians over the repetitions: a Markdown table on stdout, or with
 * o->json one JSON object per engine and workload on stdout and the table on
 * stderr. */
void bench_report(const struct bench_opts *o, const struct bench_results *c);

/* Runs one workload set of one engine in this process (the child side),
 * writing JSON lines to fd. Returns a process exit code. */
int bench_engine_child(const struct bench_opts *o, const char *engine, const char *set, int fd,
                       int rep);
/* Looks an engine up by name (NULL if not built). */
const struct bench_kv_ops *bench_kv_find(const char *name);
/* Returns true when name is in the comma-separated list (an empty list
 * holds everything). */
bool bench_list_has(const char *list, const char *name);

/* The `engine` subcommand. */
int ppdb_bench_engine_main(int argc, char **argv);

#endif /* PPDB_ENGINE_BENCH_H */
