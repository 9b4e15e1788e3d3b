/*
 * runner.c - the parent side of `ppdb-bench engine`: option parsing, one
 * child process per engine x workload set x repetition (fork + exec of
 * /proc/self/exe, so each starts with a fresh heap, RSS peak and I/O
 * counters), collection of the children's JSON lines over a pipe, medians,
 * and the report (a Markdown table, or JSON lines with --json).
 *
 * Repetitions are interleaved (A, B, C, D, then A, B, C, D again) so that
 * noise from the shared machine spreads over all engines alike.
 *
 * Bounds: every child is killed when it runs longer than its workloads'
 * --max-seconds allow plus a margin; a line is at most LINE_MAX_BYTES; at
 * most BENCH_MAX_RECORDS results are kept (beyond: counted and reported).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine_bench.h"
#include "ppdb_base.h"

#define LINE_MAX_BYTES 2048
#define TMPFS_MAGIC_ID 0x01021994
#define CHILD_SLACK_S  120

static const char *const all_engines = "ppdb,leveldb,rocksdb,lmdb";
static const char *const sets[] = {"fillseq", "random", "sync"};
/* Workloads per set, for the child's time bound. */
static const int set_workloads[] = {1, 8, 2};

const struct bench_kv_ops *bench_kv_find(const char *name)
{
    static const struct bench_kv_ops *const table[] = {
        &bench_kv_ppdb,
#ifdef PPDB_BENCH_HAVE_LEVELDB
        &bench_kv_leveldb,
#endif
#ifdef PPDB_BENCH_HAVE_ROCKSDB
        &bench_kv_rocksdb,
#endif
#ifdef PPDB_BENCH_HAVE_LMDB
        &bench_kv_lmdb,
#endif
    };
    for (size_t i = 0; i < PPDB_ARRAY_LEN(table); i++) {
        if (strcmp(table[i]->name, name) == 0)
            return table[i];
    }
    return NULL;
}

bool bench_list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    if (!*list)
        return true;
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
            return true;
    }
    return false;
}

/* Value of "key": in a flat JSON object; false when absent or null. */
static bool json_num(const char *line, const char *key, double *out)
{
    char pat[48];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p || strncmp(p + strlen(pat), "null", 4) == 0)
        return false;
    char *end;
    *out = strtod(p + strlen(pat), &end);
    return end != p + strlen(pat);
}

static bool json_str(const char *line, const char *key, char *out, size_t cap)
{
    char pat[48];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (!p)
        return false;
    p += strlen(pat);
    const char *q = strchr(p, '"');
    if (!q || (size_t)(q - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = 0;
    return true;
}

static bool parse_record(const char *line, struct bench_record *r)
{
    double threads = 0;
    memset(r, 0, sizeof(*r));
    r->ops_per_s = r->ops_per_s_compacted = r->write_amp = r->writes_per_sync = -1;
    if (!json_str(line, "engine", r->engine, sizeof(r->engine)) ||
        !json_str(line, "workload", r->workload, sizeof(r->workload)) ||
        !json_str(line, "status", r->status, sizeof(r->status)) ||
        !json_num(line, "threads", &threads))
        return false;
    json_str(line, "note", r->note, sizeof(r->note));
    r->threads = (int)threads;
    json_num(line, "ops_per_s", &r->ops_per_s);
    json_num(line, "ops_per_s_compacted", &r->ops_per_s_compacted);
    json_num(line, "write_amp", &r->write_amp);
    json_num(line, "writes_per_sync", &r->writes_per_sync);
    json_num(line, "peak_rss_bytes", &r->peak_rss_bytes);
    json_num(line, "disk_bytes", &r->disk_bytes);
    json_num(line, "ops", &r->ops);
    json_num(line, "found", &r->found);
    return true;
}

/* Splits buffered child output into lines and records them. */
static void take_lines(struct bench_results *c, char *buf, size_t *len)
{
    char *start = buf, *nl;
    while ((nl = memchr(start, '\n', *len - (size_t)(start - buf))) != NULL) {
        *nl = 0;
        struct bench_record r;
        if (!parse_record(start, &r)) {
            fprintf(stderr, "ppdb-bench: unparsable child line: %s\n", start);
            c->failures++;
        } else if (c->count < BENCH_MAX_RECORDS) {
            c->rec[c->count++] = r;
        } else {
            c->dropped++;
        }
        start = nl + 1;
    }
    *len -= (size_t)(start - buf);
    memmove(buf, start, *len);
}

static void child_args(const struct bench_opts *o, const char *engine, const char *set, int rep,
                       char store[][600], char **argv)
{
    int n = 0;
#define ARG(...) (snprintf(store[n], 600, __VA_ARGS__), argv[n] = store[n], n++)
    ARG("ppdb-bench");
    ARG("engine");
    ARG("--child=%s", engine);
    ARG("--set=%s", set);
    ARG("--rep=%d", rep);
    ARG("--num=%" PRIu64, o->num);
    ARG("--seeks=%" PRIu64, o->seeks);
    ARG("--sync-num=%" PRIu64, o->sync_num);
    ARG("--seed=%" PRIu64, o->seed);
    ARG("--max-seconds=%d", o->max_seconds);
    ARG("--lmdb-txn-ops=%d", o->lmdb_txn_ops);
    ARG("--compression=%s", o->compression ? "on" : "off");
    ARG("--workloads=%s", o->workloads);
    ARG("--dir=%s", o->dir);
#undef ARG
    argv[n] = NULL;
}

/* Reads the child's output until EOF or its deadline; then reaps it. */
static int collect_child(struct bench_results *c, pid_t pid, int fd, int limit_s)
{
    char buf[LINE_MAX_BYTES];
    size_t len = 0;
    time_t deadline = time(NULL) + limit_s;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left_ms = (int)(deadline - time(NULL)) * 1000;
        if (left_ms <= 0 || poll(&p, 1, left_ms) == 0) {
            fprintf(stderr, "ppdb-bench: child %d over its time bound, killed\n", (int)pid);
            kill(pid, SIGKILL);
            break;
        }
        ssize_t got = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        take_lines(c, buf, &len);
        if (len == sizeof(buf) - 1) {
            fprintf(stderr, "ppdb-bench: child line over %d bytes\n", LINE_MAX_BYTES);
            len = 0;
            c->failures++;
        }
    }
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int spawn_child(const struct bench_opts *o, const char *engine, int set, int rep,
                       struct bench_results *c)
{
    char store[16][600];
    char *argv[17];
    int fds[2];
    child_args(o, engine, sets[set], rep, store, argv);
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    int limit_s = o->max_seconds * (set_workloads[set] * 2 + 2) + CHILD_SLACK_S;
    int code = collect_child(c, pid, fds[0], limit_s);
    if (code != 0) {
        fprintf(stderr, "ppdb-bench: %s/%s rep %d exited with %d\n", engine, sets[set], rep, code);
        c->failures++;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ppdb-bench engine [options]\n"
            "  --num=N            keys per fill and gets per read workload (1000000)\n"
            "  --compression=on|off  snappy (peers) / lz4 (ppdb), or none for all (on)\n"
            "  --engines=LIST     comma-separated, of %s (all built)\n"
            "  --workloads=LIST   fillseq,fillrandom,overwrite,fillsync,readrandom,\n"
            "                     readmissing,seekrandom,readseq,deleterandom (all)\n"
            "  --reps=R           interleaved repetitions, median reported (3)\n"
            "  --sync-num=N       synced writes per fillsync run (10000)\n"
            "  --seeks=N          seekrandom operations, each a seek + 100 nexts (N/10)\n"
            "  --max-seconds=S    bound of each workload (120)\n"
            "  --lmdb-txn-ops=K   LMDB puts per write txn in fills/deletes (1000)\n"
            "  --seed=S           key stream seed (301)\n"
            "  --dir=DIR          database directory, not tmpfs (/var/tmp/ppdb-bench)\n"
            "  --json             JSON lines on stdout, the table on stderr\n",
            all_engines);
}

static bool opt_val(const char *arg, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || arg[n] != '=')
        return false;
    *val = arg + n + 1;
    return true;
}

static void copy_opt(char *dst, size_t cap, const char *v)
{
    snprintf(dst, cap, "%s", v);
}

/* Parses one option into o (child-only options into the others). */
static int parse_opt(struct bench_opts *o, const char *a, const char **child, const char **set,
                     int *rep, bool *seeks_set)
{
    const char *v;
    if (strcmp(a, "--json") == 0)
        o->json = true;
    else if (opt_val(a, "--num", &v))
        o->num = strtoull(v, NULL, 10);
    else if (opt_val(a, "--seeks", &v))
        o->seeks = strtoull(v, NULL, 10), *seeks_set = true;
    else if (opt_val(a, "--sync-num", &v))
        o->sync_num = strtoull(v, NULL, 10);
    else if (opt_val(a, "--seed", &v))
        o->seed = strtoull(v, NULL, 10);
    else if (opt_val(a, "--reps", &v))
        o->reps = atoi(v);
    else if (opt_val(a, "--max-seconds", &v))
        o->max_seconds = atoi(v);
    else if (opt_val(a, "--lmdb-txn-ops", &v))
        o->lmdb_txn_ops = atoi(v);
    else if (opt_val(a, "--compression", &v) && (!strcmp(v, "on") || !strcmp(v, "off")))
        o->compression = strcmp(v, "on") == 0;
    else if (opt_val(a, "--engines", &v))
        copy_opt(o->engines, sizeof(o->engines), v);
    else if (opt_val(a, "--workloads", &v))
        copy_opt(o->workloads, sizeof(o->workloads), v);
    else if (opt_val(a, "--dir", &v))
        copy_opt(o->dir, sizeof(o->dir), v);
    else if (opt_val(a, "--child", &v))
        *child = v;
    else if (opt_val(a, "--set", &v))
        *set = v;
    else if (opt_val(a, "--rep", &v))
        *rep = atoi(v);
    else
        return -1;
    return 0;
}

static bool opts_valid(const struct bench_opts *o)
{
    return o->num >= 1 && o->num <= 100000000 && o->reps >= 1 && o->reps <= BENCH_MAX_REPS &&
           o->max_seconds >= 1 && o->lmdb_txn_ops >= 1 && o->lmdb_txn_ops <= 10000 &&
           o->sync_num >= 1;
}

/* The database directory must exist and be on a real disk (fillsync). */
static int check_dir(const char *dir)
{
    struct statfs sf;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "ppdb-bench: mkdir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (statfs(dir, &sf) != 0) {
        fprintf(stderr, "ppdb-bench: statfs %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if ((unsigned long)sf.f_type == TMPFS_MAGIC_ID) {
        fprintf(stderr, "ppdb-bench: %s is on tmpfs; use a directory on a disk\n", dir);
        return -1;
    }
    return 0;
}

static int run_all(const struct bench_opts *o, struct bench_results *c)
{
    char list[128];
    copy_opt(list, sizeof(list), o->engines);
    for (int rep = 1; rep <= o->reps; rep++) {
        for (int s = 0; s < (int)PPDB_ARRAY_LEN(sets); s++) {
            for (char *save = NULL, *e = strtok_r(list, ",", &save); e;
                 e = strtok_r(NULL, ",", &save)) {
                if (spawn_child(o, e, s, rep, c) != 0) {
                    fprintf(stderr, "ppdb-bench: spawn: %s\n", strerror(errno));
                    return 1;
                }
            }
            copy_opt(list, sizeof(list), o->engines);
        }
    }
    return 0;
}

/* Keeps the engines of the list that are built in; warns about the rest. */
static void filter_engines(struct bench_opts *o, bool explicit_list)
{
    char in[128], out[128] = "";
    copy_opt(in, sizeof(in), o->engines);
    for (char *save = NULL, *e = strtok_r(in, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        if (!bench_kv_find(e)) {
            if (explicit_list)
                fprintf(stderr, "ppdb-bench: engine %s not built in, skipped\n", e);
            continue;
        }
        size_t l = strlen(out);
        snprintf(out + l, sizeof(out) - l, "%s%s", l ? "," : "", e);
    }
    copy_opt(o->engines, sizeof(o->engines), out);
}

int ppdb_bench_engine_main(int argc, char **argv)
{
    static struct bench_results c; /* large; one per process */
    struct bench_opts o = {.num = 1000000,
                           .sync_num = 10000,
                           .seed = 301,
                           .reps = 3,
                           .max_seconds = 120,
                           .lmdb_txn_ops = 1000,
                           .compression = true};
    const char *child = NULL, *set = NULL;
    int rep = 1;
    bool seeks_set = false;
    copy_opt(o.engines, sizeof(o.engines), all_engines);
    copy_opt(o.dir, sizeof(o.dir), "/var/tmp/ppdb-bench");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (parse_opt(&o, argv[i], &child, &set, &rep, &seeks_set) != 0) {
            fprintf(stderr, "ppdb-bench engine: bad option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!seeks_set)
        o.seeks = o.num / 10 ? o.num / 10 : 1;
    if (!opts_valid(&o)) {
        fprintf(stderr, "ppdb-bench engine: option out of range\n");
        return 2;
    }
    if (child)
        return bench_engine_child(&o, child, set ? set : "", STDOUT_FILENO, rep);
    filter_engines(&o, strcmp(o.engines, all_engines) != 0);
    if (!o.engines[0] || check_dir(o.dir) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    if (run_all(&o, &c) != 0)
        return 1;
    bench_report(&o, &c);
    return c.failures || c.dropped ? 1 : 0;
}
