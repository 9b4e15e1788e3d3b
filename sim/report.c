/*
 * report.c - ppdb-sim reports (see report.h): text, JSON, CSV, SVG.
 *
 * Built as plain printers over one struct: the runner fills it, every
 * format reads the same values, so the JSON, the text and the checks never
 * disagree. The SVG is drawn here (a polyline per series on a fixed
 * 800x400 canvas) so a plot needs no tool beyond a browser.
 *
 * Invariants: the series is in time order and never exceeds cap_points.
 */
#include "report.h"

#include <math.h>

int ppdb_simrep_add(struct ppdb_simrep *r, const struct ppdb_simrep_point *p)
{
    if (r->npoints == r->cap_points)
        return PPDB_ELIMIT;
    r->series[r->npoints++] = *p;
    return 0;
}

void ppdb_simrep_free(struct ppdb_simrep *r)
{
    ppdb_free(r->series);
    r->series = NULL;
    r->npoints = r->cap_points = 0;
}

/* The scalar values, by key: one table serves JSON and checks. */
struct kv {
    const char *key;
    double v;
    bool integer;
};

static uint32_t values(const struct ppdb_simrep *r, struct kv *out)
{
    const struct kv all[] = {
        {"nodes", r->nodes, true},
        {"sim_s", r->sim_s, false},
        {"wall_s", r->wall_s, false},
        {"converged_s", r->converged_s, false},
        {"final_convergence", r->final_convergence, false},
        {"detect_p50_s", r->detect_p50_s, false},
        {"detect_p99_s", r->detect_p99_s, false},
        {"detect_max_s", r->detect_max_s, false},
        {"detections", (double)r->detections, true},
        {"missing", (double)r->missing, true},
        {"false_suspect", (double)r->false_suspect, true},
        {"false_dead", (double)r->false_dead, true},
        {"msgs_per_node_s", r->msgs_per_node_s, false},
        {"bytes_per_node_s", r->bytes_per_node_s, false},
        {"peak_rss_bytes", (double)r->peak_rss_bytes, true},
        {"bytes_per_member_entry", (double)r->bytes_per_member_entry, true},
        {"live", r->live, true},
        {"crashed", r->crashed, true},
        {"left", r->left, true},
        {"restarted", r->restarted, true},
        {"events", (double)r->events, true},
        {"dropped_loss", (double)r->dropped_loss, true},
        {"dropped_partition", (double)r->dropped_partition, true},
        {"dropped_queue", (double)r->dropped_queue, true},
        {"duplicated", (double)r->duplicated, true},
        {"segments_stalled", (double)r->segments_stalled, true},
        {"stream_timeouts", (double)r->stream_timeouts, true},
        {"streams_opened", (double)r->streams_opened, true},
        {"overflow", (double)r->overflow, true},
    };
    memcpy(out, all, sizeof(all));
    return (uint32_t)PPDB_ARRAY_LEN(all);
}

#define MAX_KV 32

bool ppdb_simrep_value(const struct ppdb_simrep *r, const char *key, double *out)
{
    struct kv kv[MAX_KV];
    uint32_t n = values(r, kv);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0) {
            /* never converged is later than any bound, not -1 */
            *out = strcmp(key, "converged_s") == 0 && kv[i].v < 0 ? HUGE_VAL : kv[i].v;
            return true;
        }
    return false;
}

void ppdb_simrep_json(const struct ppdb_simrep *r, FILE *f)
{
    struct kv kv[MAX_KV];
    uint32_t n = values(r, kv);
    fprintf(f, "{\"seed\":%llu,\"trace_hash\":\"%016llx\",\"encryption\":%s",
            (unsigned long long)r->seed, (unsigned long long)r->trace_hash,
            r->encrypt ? "true" : "false");
    for (uint32_t i = 0; i < n; i++) {
        if (kv[i].integer)
            fprintf(f, ",\"%s\":%.0f", kv[i].key, kv[i].v);
        else
            fprintf(f, ",\"%s\":%.6g", kv[i].key, kv[i].v);
    }
    fprintf(f, ",\"checks_failed\":%u}", r->checks_failed);
}

void ppdb_simrep_text(const struct ppdb_simrep *r, FILE *f)
{
    fprintf(f, "ppdb-sim: seed=%llu nodes=%u encryption=%s sim=%.0fs wall=%.1fs (x%.1f)\n",
            (unsigned long long)r->seed, r->nodes, r->encrypt ? "on" : "off", r->sim_s, r->wall_s,
            r->wall_s > 0 ? r->sim_s / r->wall_s : 0.0);
    fprintf(f, "  trace_hash      %016llx (%llu events)\n", (unsigned long long)r->trace_hash,
            (unsigned long long)r->events);
    if (r->converged_s >= 0)
        fprintf(f, "  converged       after %.1f s; at the end %.4f of live pairs\n",
                r->converged_s, r->final_convergence);
    else
        fprintf(f, "  converged       never; at the end %.4f of live pairs\n",
                r->final_convergence);
    fprintf(f, "  nodes           live=%u crashed=%u left=%u restarted=%u paused=%u\n", r->live,
            r->crashed, r->left, r->restarted, r->paused);
    fprintf(f,
            "  detection       p50=%.2f s p99=%.2f s max=%.2f s (%llu survivor/crash pairs, "
            "%llu missing)\n",
            r->detect_p50_s, r->detect_p99_s, r->detect_max_s, (unsigned long long)r->detections,
            (unsigned long long)r->missing);
    fprintf(f, "  false           suspicions=%llu deaths=%llu\n",
            (unsigned long long)r->false_suspect, (unsigned long long)r->false_dead);
    fprintf(f, "  traffic         %.2f msgs/node/s, %.0f bytes/node/s\n", r->msgs_per_node_s,
            r->bytes_per_node_s);
    fprintf(f,
            "  network         lost=%llu partitioned=%llu queue_drops=%llu duplicated=%llu "
            "stalled_segments=%llu stream_timeouts=%llu streams_opened=%llu\n",
            (unsigned long long)r->dropped_loss, (unsigned long long)r->dropped_partition,
            (unsigned long long)r->dropped_queue, (unsigned long long)r->duplicated,
            (unsigned long long)r->segments_stalled, (unsigned long long)r->stream_timeouts,
            (unsigned long long)r->streams_opened);
    fprintf(f, "  memory          peak RSS %.1f MiB, %llu bytes per member entry\n",
            (double)r->peak_rss_bytes / 1048576.0, (unsigned long long)r->bytes_per_member_entry);
}

void ppdb_simrep_csv(const struct ppdb_simrep *r, FILE *f)
{
    fprintf(f, "t_s,live,convergence,suspects,dead,msgs,bytes\n");
    for (uint32_t i = 0; i < r->npoints; i++) {
        const struct ppdb_simrep_point *p = &r->series[i];
        fprintf(f, "%u,%u,%.6f,%llu,%llu,%llu,%llu\n", p->t_s, p->live, p->convergence,
                (unsigned long long)p->suspects, (unsigned long long)p->dead,
                (unsigned long long)p->msgs, (unsigned long long)p->bytes);
    }
}

/* ------------------------------------------------------------------ SVG */

#define SVG_W 800.0
#define SVG_H 400.0
#define SVG_L 60.0 /* plot area margins */
#define SVG_R 20.0
#define SVG_T 30.0
#define SVG_B 40.0

static double px(double t, double tmax)
{
    return SVG_L + (tmax > 0 ? t / tmax : 0) * (SVG_W - SVG_L - SVG_R);
}

static double py(double v, double vmax)
{
    return SVG_H - SVG_B - (vmax > 0 ? v / vmax : 0) * (SVG_H - SVG_T - SVG_B);
}

static void svg_line(const struct ppdb_simrep *r, FILE *f, int which, double tmax, double vmax,
                     const char *color)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (uint32_t i = 0; i < r->npoints; i++) {
        const struct ppdb_simrep_point *p = &r->series[i];
        double v = which == 0 ? p->convergence : (double)(which == 1 ? p->suspects : p->dead);
        fprintf(f, "%.1f,%.1f ", px(p->t_s, tmax), py(v, vmax));
    }
    fprintf(f, "\"/>\n");
}

static void svg_axes(FILE *f, double tmax)
{
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", SVG_W,
            SVG_H);
    fprintf(f, "<g stroke=\"#999\" stroke-width=\"0.5\">\n");
    for (int k = 0; k <= 4; k++) {
        double y = py(k / 4.0, 1.0);
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\"/>\n", SVG_L, y,
                SVG_W - SVG_R, y);
    }
    fprintf(f, "</g>\n<g font-family=\"sans-serif\" font-size=\"11\">\n");
    for (int k = 0; k <= 4; k++)
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n", SVG_L - 5,
                py(k / 4.0, 1.0) + 4, k / 4.0);
    for (int k = 0; k <= 5; k++)
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.0f s</text>\n",
                px(tmax * k / 5.0, tmax), SVG_H - SVG_B + 16, tmax * k / 5.0);
}

void ppdb_simrep_svg(const struct ppdb_simrep *r, FILE *f)
{
    double tmax = r->npoints ? r->series[r->npoints - 1].t_s : 1;
    uint64_t smax = 1;
    for (uint32_t i = 0; i < r->npoints; i++) {
        if (r->series[i].suspects > smax)
            smax = r->series[i].suspects;
        if (r->series[i].dead > smax)
            smax = r->series[i].dead;
    }
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\">\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    svg_axes(f, tmax);
    fprintf(f,
            "<text x=\"%.0f\" y=\"18\">ppdb-sim seed=%llu nodes=%u: convergence (blue, left "
            "axis); suspect (orange) and dead (red) entries, scaled to max %llu</text>\n</g>\n",
            SVG_L, (unsigned long long)r->seed, r->nodes, (unsigned long long)smax);
    svg_line(r, f, 1, tmax, (double)smax, "#e08000");
    svg_line(r, f, 2, tmax, (double)smax, "#c00000");
    svg_line(r, f, 0, tmax, 1.0, "#1050c0");
    fprintf(f, "</svg>\n");
}
