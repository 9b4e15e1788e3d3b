/*
 * workloads.c - the child side of `ppdb-bench engine`: one engine, one
 * workload set, one process; one JSON line per workload on a pipe.
 *
 * Keys are 16 decimal digits (as db_bench's). Key number 2*i is key i of
 * the database and 2*i+1 is a missing key that sorts between two present
 * ones, so readmissing is answered by filters and indexes, not by a range
 * check. The key streams are generated here from the seed with the same
 * generator in every child, so every engine sees the same keys in the same
 * order: `perm` is a permutation of 0..N-1 (fillrandom, fillsync: every key
 * present afterwards) and `rnd` is N uniform draws (overwrite, reads,
 * seeks, deletes). Values are 100 bytes taken from a pool of 50 random bytes
 * each followed by their copy, so they compress to about half (db_bench's
 * scheme).
 *
 * Profiling one workload: with PPDB_BENCH_PERF_CTL naming the control FIFO
 * of `perf record --control=fifo:... -D -1` and PPDB_BENCH_PERF_WORKLOAD a
 * workload name, the child enables perf just around that workload's ops.
 *
 * Every op loop checks a deadline every 256 ops (--max-seconds); a workload
 * cut short reports what it did with status "truncated".
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine_bench.h"
#include "ppdb_base.h"

#define KEY_BYTES       16
#define VALUE_BYTES     100
#define VALUE_POOL      10000 /* values in the pool (1 MB) */
#define MAX_THREADS     8
#define MAX_TXN_OPS     10000
#define SEEK_NEXTS      100
#define CHECK_EVERY_OPS 256

enum op_kind { OP_PUT, OP_DEL, OP_GET, OP_GET_MISSING, OP_SEEK };

struct run {
    const struct bench_opts *o;
    const struct bench_kv_ops *ops;
    struct bench_kv *kv;
    const char *engine;
    const char *set;
    int fd;
    int rep;
    uint32_t *perm;
    uint32_t *rnd;
    char *values;
    char dir[600];
};

/* One thread's share of a workload: ops [begin, end) of `order`. */
struct worker {
    struct run *run;
    enum op_kind kind;
    const uint32_t *order; /* NULL: identity (fillseq) */
    uint64_t begin, end;
    uint64_t deadline_ns;
    int group; /* writes per write call */
    bool sync;
    uint64_t done, found;
    int rc;
    bool truncated;
};

struct result {
    const char *workload;
    int threads;
    uint64_t ops, found;
    double seconds;
    double compact_seconds; /* < 0: no figure */
    const char *status;
    const char *note;
    uint64_t write_bytes;
    double writes_per_sync; /* < 0: no figure */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void format_key(uint64_t num, char *out)
{
    for (int i = KEY_BYTES - 1; i >= 0; i--) {
        out[i] = (char)('0' + num % 10);
        num /= 10;
    }
}

/* Bytes the process caused to be written to storage (/proc/self/io). */
static uint64_t io_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    unsigned long long v = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "write_bytes: %llu", &v) == 1)
            break;
    }
    if (f)
        fclose(f);
    return v;
}

static uint64_t peak_rss_bytes(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss * 1024u;
}

static uint64_t du_total; /* nftw has no argument pointer: one walk at a time */
static int du_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (type == FTW_F)
        du_total += (uint64_t)st->st_size;
    return 0;
}

/* Sum of the sizes of the files under dir (single-threaded use only). */
static uint64_t dir_bytes(const char *dir)
{
    du_total = 0;
    nftw(dir, du_cb, 16, FTW_PHYS);
    return du_total;
}

static int rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_streams(struct run *r)
{
    uint64_t n = r->o->num;
    r->perm = malloc(n * sizeof(uint32_t));
    r->rnd = malloc(n * sizeof(uint32_t));
    r->values = malloc(VALUE_POOL * VALUE_BYTES);
    if (!r->perm || !r->rnd || !r->values)
        return PPDB_ENOMEM;
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, r->o->seed);
    for (uint64_t i = 0; i < n; i++)
        r->perm[i] = (uint32_t)i;
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = ppdb_rng_below(&rng, i);
        uint32_t t = r->perm[i - 1];
        r->perm[i - 1] = r->perm[j];
        r->perm[j] = t;
    }
    for (uint64_t i = 0; i < n; i++)
        r->rnd[i] = (uint32_t)ppdb_rng_below(&rng, n);
    for (size_t off = 0; off < VALUE_POOL * VALUE_BYTES; off += VALUE_BYTES) {
        ppdb_rng_bytes(&rng, r->values + off, VALUE_BYTES / 2);
        memcpy(r->values + off + VALUE_BYTES / 2, r->values + off, VALUE_BYTES / 2);
    }
    return 0;
}

static const char *value_at(struct run *r, uint64_t i)
{
    return r->values + (i % VALUE_POOL) * VALUE_BYTES;
}

/* Writes ops [begin, end) in calls of w->group ops. */
static void run_writes(struct worker *w, char (*keys)[KEY_BYTES], struct bench_kv_op *batch)
{
    struct run *r = w->run;
    size_t n = 0;
    for (uint64_t i = w->begin; i < w->end && w->rc == 0; i++) {
        uint64_t idx = w->order ? w->order[i] : i;
        format_key(2 * idx, keys[n]);
        batch[n] = (struct bench_kv_op){.key = keys[n], .klen = KEY_BYTES};
        if (w->kind == OP_PUT) {
            batch[n].val = value_at(r, i);
            batch[n].vlen = VALUE_BYTES;
        }
        if (++n < (size_t)w->group && i + 1 < w->end)
            continue;
        w->rc = r->ops->write(r->kv, batch, n, w->sync);
        w->done += n;
        n = 0;
        if (w->done % CHECK_EVERY_OPS < (uint64_t)w->group && now_ns() > w->deadline_ns) {
            w->truncated = true;
            break;
        }
    }
}

static int read_one(struct worker *w, struct bench_kv_reader *rd, uint64_t idx)
{
    const struct bench_kv_ops *ops = w->run->ops;
    char key[KEY_BYTES];
    bool found = false;
    uint64_t count = 0;
    int rc;
    format_key(2 * idx + (w->kind == OP_GET_MISSING), key);
    if (w->kind == OP_SEEK) {
        rc = ops->seek(rd, key, KEY_BYTES, SEEK_NEXTS, &count);
        found = count > 0;
    } else {
        rc = ops->get(rd, key, KEY_BYTES, &found);
    }
    w->found += found;
    return rc;
}

static void run_reads(struct worker *w)
{
    struct bench_kv_reader *rd;
    w->rc = w->run->ops->reader_open(w->run->kv, &rd);
    if (w->rc)
        return;
    for (uint64_t i = w->begin; i < w->end && w->rc == 0; i++) {
        w->rc = read_one(w, rd, w->order[i]);
        w->done++;
        if (w->done % CHECK_EVERY_OPS == 0 && now_ns() > w->deadline_ns) {
            w->truncated = true;
            break;
        }
    }
    w->run->ops->reader_close(rd);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (w->kind == OP_PUT || w->kind == OP_DEL) {
        char(*keys)[KEY_BYTES] = malloc((size_t)w->group * KEY_BYTES);
        struct bench_kv_op *batch = malloc((size_t)w->group * sizeof(*batch));
        if (keys && batch)
            run_writes(w, keys, batch);
        else
            w->rc = PPDB_ENOMEM;
        free(keys);
        free(batch);
    } else {
        run_reads(w);
    }
    return NULL;
}

/* Sends cmd ("enable", "disable") to perf's control FIFO when this is the
 * workload to profile (see the top of the file). */
static void perf_ctl(const char *workload, const char *cmd)
{
    const char *fifo = getenv("PPDB_BENCH_PERF_CTL");
    const char *want = getenv("PPDB_BENCH_PERF_WORKLOAD");
    if (!fifo || !want || strcmp(want, workload) != 0)
        return;
    FILE *f = fopen(fifo, "w");
    if (f) {
        fprintf(f, "%s\n", cmd);
        fclose(f);
    }
}

/* Runs `total` ops of one kind split over `threads` threads; fills res. */
static int run_phase(struct run *r, struct worker *proto, int threads, uint64_t total,
                     struct result *res)
{
    struct worker w[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    PPDB_ASSERT(threads >= 1 && threads <= MAX_THREADS);
    proto->run = r;
    perf_ctl(res->workload, "enable");
    proto->deadline_ns = now_ns() + (uint64_t)r->o->max_seconds * 1000000000u;
    uint64_t t0 = now_ns();
    for (int t = 0; t < threads; t++) {
        w[t] = *proto;
        w[t].begin = total * (uint64_t)t / (uint64_t)threads;
        w[t].end = total * (uint64_t)(t + 1) / (uint64_t)threads;
        if (threads == 1)
            worker_main(&w[0]);
        else if (pthread_create(&tid[t], NULL, worker_main, &w[t]) != 0)
            PPDB_ASSERT(!"pthread_create failed");
    }
    int rc = 0;
    res->ops = res->found = 0;
    for (int t = 0; t < threads; t++) {
        if (threads > 1)
            pthread_join(tid[t], NULL);
        res->ops += w[t].done;
        res->found += w[t].found;
        rc = rc ? rc : w[t].rc;
        if (w[t].truncated)
            res->status = "truncated";
    }
    res->seconds = (double)(now_ns() - t0) / 1e9;
    res->threads = threads;
    perf_ctl(res->workload, "disable");
    return rc;
}

static void emit(struct run *r, const struct result *res)
{
    char buf[1024];
    double ops_s = res->seconds > 0 ? (double)res->ops / res->seconds : 0;
    bool na = strcmp(res->status, "n/a") == 0;
    char compacted[32] = "null", wps[32] = "null", amp[32] = "null";
    if (res->compact_seconds >= 0)
        snprintf(compacted, sizeof(compacted), "%.1f",
                 (double)res->ops / (res->seconds + res->compact_seconds));
    if (res->writes_per_sync >= 0)
        snprintf(wps, sizeof(wps), "%.2f", res->writes_per_sync);
    if (res->write_bytes && res->ops)
        snprintf(amp, sizeof(amp), "%.3f",
                 (double)res->write_bytes / ((double)res->ops * (KEY_BYTES + VALUE_BYTES)));
    char ops_txt[32] = "null";
    if (!na)
        snprintf(ops_txt, sizeof(ops_txt), "%.1f", ops_s);
    int len = snprintf(
        buf, sizeof(buf),
        "{\"engine\":\"%s\",\"workload\":\"%s\",\"rep\":%d,\"n\":%" PRIu64
        ",\"threads\":%d,\"compression\":\"%s\",\"compressor\":\"%s\",\"status\":\"%s\","
        "\"ops\":%" PRIu64 ",\"found\":%" PRIu64 ",\"seconds\":%.4f,\"ops_per_s\":%s,"
        "\"ops_per_s_compacted\":%s,\"write_bytes\":%" PRIu64 ",\"write_amp\":%s,"
        "\"writes_per_sync\":%s,\"peak_rss_bytes\":%" PRIu64 ",\"disk_bytes\":%" PRIu64
        ",\"note\":\"%s\"}\n",
        r->engine, res->workload, r->rep, r->o->num, res->threads, r->o->compression ? "on" : "off",
        r->o->compression ? r->ops->compression_name : "none", res->status, res->ops, res->found,
        res->seconds, ops_txt, compacted, res->write_bytes, amp, wps, peak_rss_bytes(),
        dir_bytes(r->dir), res->note ? res->note : "");
    PPDB_ASSERT(len > 0 && (size_t)len < sizeof(buf));
    if (write(r->fd, buf, (size_t)len) != len)
        fprintf(stderr, "ppdb-bench: lost a result line: %s\n", strerror(errno));
}

static bool wanted(struct run *r, const char *workload)
{
    return bench_list_has(r->o->workloads, workload);
}

static void result_init(struct result *res, const char *workload, int threads)
{
    *res = (struct result){.workload = workload,
                           .threads = threads,
                           .status = "ok",
                           .compact_seconds = -1,
                           .writes_per_sync = -1};
}

/* A fill or overwrite: the writes, then compact-range (timed separately) or,
 * without one, an untimed flush so that later reads find tables. */
static int fill(struct run *r, const char *name, enum op_kind kind, const uint32_t *order)
{
    struct result res;
    result_init(&res, name, 1);
    struct worker w = {.kind = kind, .order = order, .group = 1};
    if (strcmp(r->engine, "lmdb") == 0)
        w.group = r->o->lmdb_txn_ops;
    uint64_t io0 = io_write_bytes();
    int rc = run_phase(r, &w, 1, r->o->num, &res);
    if (rc == 0 && r->ops->compact) {
        uint64_t t0 = now_ns();
        rc = r->ops->compact(r->kv);
        res.compact_seconds = (double)(now_ns() - t0) / 1e9;
    } else if (rc == 0) {
        res.note = "to end of compaction: n/a (API pending)";
        if (r->ops->flush)
            rc = r->ops->flush(r->kv);
    }
    res.write_bytes = io_write_bytes() - io0;
    if (rc)
        res.status = "error";
    if (wanted(r, name))
        emit(r, &res);
    return rc;
}

static int read_workload(struct run *r, const char *name, enum op_kind kind, int threads,
                         uint64_t total)
{
    struct result res;
    result_init(&res, name, threads);
    if (!wanted(r, name))
        return 0;
    bool have = kind != OP_SEEK || r->ops->seek;
    if (!have) {
        res.status = "n/a";
        res.note = "iterator: n/a (API pending)";
        emit(r, &res);
        return 0;
    }
    struct worker w = {.kind = kind, .order = r->rnd};
    int rc = run_phase(r, &w, threads, total, &res);
    if (rc)
        res.status = "error";
    emit(r, &res);
    return rc;
}

static int readseq(struct run *r)
{
    struct result res;
    result_init(&res, "readseq", 1);
    if (!wanted(r, "readseq"))
        return 0;
    if (!r->ops->scan_all) {
        res.status = "n/a";
        res.note = "iterator: n/a (API pending)";
        emit(r, &res);
        return 0;
    }
    struct bench_kv_reader *rd;
    int rc = r->ops->reader_open(r->kv, &rd);
    uint64_t t0 = now_ns();
    if (rc == 0) {
        rc = r->ops->scan_all(rd, r->o->num, &res.ops);
        r->ops->reader_close(rd);
    }
    res.seconds = (double)(now_ns() - t0) / 1e9;
    res.found = res.ops;
    if (rc)
        res.status = "error";
    emit(r, &res);
    return rc;
}

static int open_db(struct run *r, const char *suffix, bool sync_writes)
{
    snprintf(r->dir, sizeof(r->dir), "%s/%s-%s-%d", r->o->dir, r->engine, suffix, (int)getpid());
    remove_tree(r->dir);
    struct bench_kv_config cfg = {
        .dir = r->dir,
        .compression = r->o->compression,
        .sync_writes = sync_writes,
        .write_buffer_bytes = 4u << 20,
        .table_file_bytes = 2u << 20,
        .block_bytes = 4096,
        .block_cache_bytes = 8u << 20,
        .bloom_bits_per_key = 10,
        .map_bytes = (1ull << 30) + r->o->num * 1024u,
    };
    int rc = r->ops->open(&cfg, &r->kv);
    if (rc)
        fprintf(stderr, "ppdb-bench: %s: open %s: %s\n", r->engine, r->dir, ppdb_strerror(rc));
    return rc;
}

static void close_db(struct run *r)
{
    r->ops->close(r->kv);
    r->kv = NULL;
    remove_tree(r->dir);
}

static int set_random(struct run *r)
{
    uint64_t n = r->o->num;
    int rc = fill(r, "fillrandom", OP_PUT, r->perm);
    if (rc == 0)
        rc = fill(r, "overwrite", OP_PUT, r->rnd);
    if (rc == 0)
        rc = read_workload(r, "readrandom", OP_GET, 1, n);
    if (rc == 0)
        rc = read_workload(r, "readmissing", OP_GET_MISSING, 1, n);
    if (rc == 0)
        rc = read_workload(r, "seekrandom", OP_SEEK, 1, PPDB_MIN(n, r->o->seeks));
    if (rc == 0)
        rc = readseq(r);
    if (rc == 0)
        rc = read_workload(r, "readrandom", OP_GET, 2, n);
    if (rc == 0 && wanted(r, "deleterandom")) {
        struct result res;
        result_init(&res, "deleterandom", 1);
        struct worker w = {.kind = OP_DEL, .order = r->rnd, .group = 1};
        if (strcmp(r->engine, "lmdb") == 0)
            w.group = r->o->lmdb_txn_ops;
        rc = run_phase(r, &w, 1, n, &res);
        res.status = rc ? "error" : res.status;
        emit(r, &res);
    }
    return rc;
}

static int fillsync(struct run *r, int threads)
{
    struct result res;
    result_init(&res, "fillsync", threads);
    int rc = open_db(r, threads == 1 ? "sync1" : "syncN", true);
    if (rc)
        return rc;
    struct bench_kv_stats s0 = {0}, s1 = {0};
    if (r->ops->stats)
        r->ops->stats(r->kv, &s0);
    struct worker w = {.kind = OP_PUT, .order = r->perm, .group = 1, .sync = true};
    uint64_t io0 = io_write_bytes();
    rc = run_phase(r, &w, threads, PPDB_MIN(r->o->sync_num, r->o->num), &res);
    res.write_bytes = io_write_bytes() - io0;
    if (r->ops->stats) {
        r->ops->stats(r->kv, &s1);
        if (s1.syncs > s0.syncs)
            res.writes_per_sync = (double)(s1.writes - s0.writes) / (double)(s1.syncs - s0.syncs);
    } else {
        res.note = "writes per fsync: not exported by this engine";
    }
    res.status = rc ? "error" : res.status;
    emit(r, &res);
    close_db(r);
    return rc;
}

static int run_set(struct run *r)
{
    int rc = 0;
    if (strcmp(r->set, "fillseq") == 0) {
        rc = open_db(r, "seq", false);
        if (rc == 0) {
            rc = fill(r, "fillseq", OP_PUT, NULL);
            close_db(r);
        }
    } else if (strcmp(r->set, "random") == 0) {
        rc = open_db(r, "random", false);
        if (rc == 0) {
            rc = set_random(r);
            close_db(r);
        }
    } else if (strcmp(r->set, "sync") == 0) {
        if (wanted(r, "fillsync"))
            rc = fillsync(r, 1);
        if (rc == 0 && wanted(r, "fillsync"))
            rc = fillsync(r, MAX_THREADS);
    } else {
        fprintf(stderr, "ppdb-bench: unknown workload set %s\n", r->set);
        return 2;
    }
    return rc ? 1 : 0;
}

int bench_engine_child(const struct bench_opts *o, const char *engine, const char *set, int fd,
                       int rep)
{
    struct run r = {.o = o, .engine = engine, .set = set, .fd = fd, .rep = rep};
    r.ops = bench_kv_find(engine);
    if (!r.ops) {
        fprintf(stderr, "ppdb-bench: engine %s is not built in\n", engine);
        return 2;
    }
    PPDB_ASSERT(o->lmdb_txn_ops >= 1 && o->lmdb_txn_ops <= MAX_TXN_OPS);
    int code = make_streams(&r) ? 1 : run_set(&r);
    free(r.perm);
    free(r.rnd);
    free(r.values);
    return code;
}
