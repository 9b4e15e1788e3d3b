/*
 * report.c - medians over the repetitions and the printed report of
 * `ppdb-bench engine`: a Markdown table of ops/s per engine and workload
 * with PPDB's ratio to each peer, a table of write amplification, peak RSS
 * and disk use of the fills, and (with --json) one JSON object per engine
 * and workload.
 *
 * A workload an engine cannot run (PPDB's pending iterator and
 * compact-range APIs) reads "n/a (API pending)", never a number; a figure
 * from a run cut short by --max-seconds carries a '*'.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_bench.h"
#include "ppdb_base.h"

/* A row of the table: a workload at a thread count, one of its figures. */
struct row {
    const char *workload;
    int threads;
    size_t field; /* offset of the double in struct bench_record */
    const char *label;
};

#define F(name) offsetof(struct bench_record, name)
static const struct row rows[] = {
    {"fillseq", 1, F(ops_per_s), "fillseq"},
    {"fillseq", 1, F(ops_per_s_compacted), "fillseq, to end of compaction"},
    {"fillrandom", 1, F(ops_per_s), "fillrandom"},
    {"fillrandom", 1, F(ops_per_s_compacted), "fillrandom, to end of compaction"},
    {"overwrite", 1, F(ops_per_s), "overwrite"},
    {"overwrite", 1, F(ops_per_s_compacted), "overwrite, to end of compaction"},
    {"fillsync", 1, F(ops_per_s), "fillsync, 1 writer"},
    {"fillsync", 8, F(ops_per_s), "fillsync, 8 writers"},
    {"readrandom", 1, F(ops_per_s), "readrandom"},
    {"readmissing", 1, F(ops_per_s), "readmissing"},
    {"seekrandom", 1, F(ops_per_s), "seekrandom + 100 nexts"},
    {"readseq", 1, F(ops_per_s), "readseq"},
    {"readrandom", 2, F(ops_per_s), "readrandom, 2 threads"},
    {"deleterandom", 1, F(ops_per_s), "deleterandom"},
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool same_row(const struct bench_record *r, const char *engine, const char *workload,
                     int threads)
{
    return strcmp(r->engine, engine) == 0 && strcmp(r->workload, workload) == 0 &&
           r->threads == threads;
}

/* Median of a field over an engine's repetitions of one workload; false
 * when no repetition has the figure. *truncated: one was cut short. */
static bool median(const struct bench_results *c, const char *engine, const char *workload,
                   int threads, size_t field, double *out, bool *truncated)
{
    double v[BENCH_MAX_REPS];
    int n = 0;
    *truncated = false;
    for (int i = 0; i < c->count && n < BENCH_MAX_REPS; i++) {
        const struct bench_record *r = &c->rec[i];
        double x;
        memcpy(&x, (const char *)r + field, sizeof(x));
        if (!same_row(r, engine, workload, threads) || x < 0 || !strcmp(r->status, "error"))
            continue;
        v[n++] = x;
        *truncated |= strcmp(r->status, "truncated") == 0;
    }
    if (n == 0)
        return false;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    *out = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return true;
}

static const struct bench_record *first(const struct bench_results *c, const char *engine,
                                        const char *workload, int threads)
{
    for (int i = 0; i < c->count; i++) {
        if (same_row(&c->rec[i], engine, workload, threads))
            return &c->rec[i];
    }
    return NULL;
}

static void format_rate(double v, char *out, size_t cap)
{
    if (v >= 1e6)
        snprintf(out, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(out, cap, "%.0fK", v / 1e3);
    else if (v >= 1e3)
        snprintf(out, cap, "%.2fK", v / 1e3);
    else
        snprintf(out, cap, "%.0f", v);
}

/* Text of one cell: the median, "n/a (API pending)", or "-" (not run). */
static void cell(const struct bench_results *c, const char *engine, const struct row *rw, char *out,
                 size_t cap)
{
    double v;
    bool trunc;
    const struct bench_record *r = first(c, engine, rw->workload, rw->threads);
    if (median(c, engine, rw->workload, rw->threads, rw->field, &v, &trunc)) {
        format_rate(v, out, cap);
        if (trunc)
            strncat(out, "*", cap - strlen(out) - 1);
    } else if (r && strstr(r->note, "API pending") &&
               (rw->field == F(ops_per_s_compacted) || !strcmp(r->status, "n/a"))) {
        snprintf(out, cap, "n/a (API pending)");
    } else if (r && !strcmp(r->status, "error")) {
        snprintf(out, cap, "error");
    } else {
        snprintf(out, cap, "-");
    }
}

static int split_engines(const struct bench_opts *o, char names[][16], int max)
{
    char list[128];
    int n = 0;
    snprintf(list, sizeof(list), "%s", o->engines);
    for (char *save = NULL, *e = strtok_r(list, ",", &save); e && n < max;
         e = strtok_r(NULL, ",", &save))
        snprintf(names[n++], 16, "%s", e);
    return n;
}

static void ratio_cell(const struct bench_results *c, const char *peer, const struct row *rw,
                       char *out, size_t cap)
{
    double a, b;
    bool t;
    if (median(c, "ppdb", rw->workload, rw->threads, rw->field, &a, &t) &&
        median(c, peer, rw->workload, rw->threads, rw->field, &b, &t) && b > 0)
        snprintf(out, cap, "%.2fx", a / b);
    else
        snprintf(out, cap, "n/a");
}

static void print_rates(FILE *f, const struct bench_results *c, char names[][16], int ne)
{
    bool has_ppdb = false;
    fprintf(f, "| workload (ops/s) |");
    for (int e = 0; e < ne; e++) {
        fprintf(f, " %s |", names[e]);
        has_ppdb |= strcmp(names[e], "ppdb") == 0;
    }
    for (int e = 0; has_ppdb && e < ne; e++) {
        if (strcmp(names[e], "ppdb") != 0)
            fprintf(f, " ppdb / %s |", names[e]);
    }
    fprintf(f, "\n|---|");
    for (int e = 0; e < ne + (has_ppdb ? ne - 1 : 0); e++)
        fprintf(f, "---|");
    fprintf(f, "\n");
    for (size_t i = 0; i < PPDB_ARRAY_LEN(rows); i++) {
        char txt[48];
        fprintf(f, "| %s |", rows[i].label);
        for (int e = 0; e < ne; e++) {
            cell(c, names[e], &rows[i], txt, sizeof(txt));
            fprintf(f, " %s |", txt);
        }
        for (int e = 0; has_ppdb && e < ne; e++) {
            if (strcmp(names[e], "ppdb") == 0)
                continue;
            ratio_cell(c, names[e], &rows[i], txt, sizeof(txt));
            fprintf(f, " %s |", txt);
        }
        fprintf(f, "\n");
    }
}

/* Write amplification, peak RSS and disk use of the fills. */
static void print_costs(FILE *f, const struct bench_results *c, char names[][16], int ne)
{
    static const int fill_rows[] = {0, 2, 4, 6, 7};
    fprintf(f, "\n| fill: write amp. / peak RSS / disk after fill |");
    for (int e = 0; e < ne; e++)
        fprintf(f, " %s |", names[e]);
    fprintf(f, "\n|---|");
    for (int e = 0; e < ne; e++)
        fprintf(f, "---|");
    fprintf(f, "\n");
    for (size_t i = 0; i < PPDB_ARRAY_LEN(fill_rows); i++) {
        const struct row *rw = &rows[fill_rows[i]];
        fprintf(f, "| %s |", rw->label);
        for (int e = 0; e < ne; e++) {
            double wa = -1, rss = 0, disk = 0;
            bool t;
            median(c, names[e], rw->workload, rw->threads, F(write_amp), &wa, &t);
            median(c, names[e], rw->workload, rw->threads, F(peak_rss_bytes), &rss, &t);
            median(c, names[e], rw->workload, rw->threads, F(disk_bytes), &disk, &t);
            if (wa >= 0)
                fprintf(f, " %.2f / %.0f MiB / %.0f MiB |", wa, rss / 1048576, disk / 1048576);
            else
                fprintf(f, " - |");
        }
        fprintf(f, "\n");
    }
    double wps;
    bool t;
    if (median(c, "ppdb", "fillsync", 8, F(writes_per_sync), &wps, &t))
        fprintf(f, "\nppdb, fillsync with 8 writers: %.2f writes per fsync (engine stats)\n", wps);
    else if (first(c, "ppdb", "fillsync", 8))
        fprintf(f, "\nppdb, fillsync with 8 writers: writes per fsync not reported\n");
}

static void print_json(const struct bench_opts *o, const struct bench_results *c, char names[][16],
                       int ne)
{
    for (int e = 0; e < ne; e++) {
        for (size_t i = 0; i < PPDB_ARRAY_LEN(rows); i++) {
            const struct row *rw = &rows[i];
            const struct bench_record *r = first(c, names[e], rw->workload, rw->threads);
            if (rw->field != F(ops_per_s) || !r)
                continue;
            double v[8];
            bool have[8], t;
            size_t fields[8] = {
                F(ops_per_s),      F(ops_per_s_compacted), F(write_amp), F(writes_per_sync),
                F(peak_rss_bytes), F(disk_bytes),          F(ops),       F(found)};
            char txt[8][32];
            for (int k = 0; k < 8; k++) {
                have[k] = median(c, names[e], rw->workload, rw->threads, fields[k], &v[k], &t);
                snprintf(txt[k], sizeof(txt[k]), !have[k] ? "null" : k < 4 ? "%.3f" : "%.0f", v[k]);
            }
            printf("{\"engine\":\"%s\",\"workload\":\"%s\",\"n\":%" PRIu64
                   ",\"threads\":%d,\"compression\":\"%s\",\"status\":\"%s\",\"ops_per_s\":%s,"
                   "\"ops_per_s_compacted\":%s,\"write_amp\":%s,\"writes_per_sync\":%s,"
                   "\"peak_rss_bytes\":%s,\"disk_bytes\":%s,\"ops\":%s,\"found\":%s,"
                   "\"note\":\"%s\"}\n",
                   names[e], rw->workload, o->num, rw->threads, o->compression ? "on" : "off",
                   have[0] ? (strcmp(r->status, "n/a") ? r->status : "ok") : r->status, txt[0],
                   txt[1], txt[2], txt[3], txt[4], txt[5], txt[6], txt[7], r->note);
        }
    }
    fflush(stdout);
}

void bench_report(const struct bench_opts *o, const struct bench_results *c)
{
    char names[8][16];
    int ne = split_engines(o, names, 8);
    FILE *f = o->json ? stderr : stdout;
    if (o->json)
        print_json(o, c, names, ne);
    fprintf(f,
            "\nN = %" PRIu64 ", compression %s, %d repetitions (median), key stream seed %" PRIu64
            "\n\n",
            o->num, o->compression ? "on" : "off", o->reps, o->seed);
    print_rates(f, c, names, ne);
    print_costs(f, c, names, ne);
    if (c->failures || c->dropped)
        fprintf(f, "\n%d failures, %d results dropped (see stderr)\n", c->failures, c->dropped);
    fflush(f);
}
