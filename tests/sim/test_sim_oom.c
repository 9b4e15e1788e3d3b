/*
 * test_sim_oom.c - out-of-memory at every allocation of a small world.
 *
 * A scenario touching every part of the world (datagrams, a stream with
 * writes and a reset, discovery, work, a crash, teardown) runs once for
 * each allocation it makes, with that allocation failing. Every run must
 * end without an assert, a sanitizer report or a leak; the world may lose
 * events (counted as overflow) and calls may fail, but never silently
 * corrupt its bookkeeping.
 */
#include "check.h"
#include "ppdb_sim.h"

struct scen {
    struct ppdb_sim *sim;
    struct ppdb_env *env[3];
    uint32_t nodes;
    struct ppdb_udp *u[3];
    struct ppdb_listener *l;
    struct ppdb_stream *cli, *srv;
    int callbacks;
};

static void udp_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from, const uint8_t *buf,
                   size_t len)
{
    ((struct scen *)data)->callbacks++;
}

static void read_cb(void *data, struct ppdb_stream *s, const uint8_t *buf, size_t len, int status)
{
    ((struct scen *)data)->callbacks++;
}

static void write_cb(void *data, struct ppdb_stream *s, int status)
{
    ((struct scen *)data)->callbacks++;
}

static void accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s)
{
    struct scen *sc = data;
    sc->srv = s;
    if (ppdb_env_stream_read_start(sc->env[1], s, read_cb, sc) != 0) {
        ppdb_env_stream_close(sc->env[1], s, NULL, NULL);
        sc->srv = NULL;
    }
}

static void connect_cb(void *data, struct ppdb_stream *s, int status)
{
    struct scen *sc = data;
    if (status)
        return;
    sc->cli = s;
    ppdb_env_stream_read_stop(sc->env[0], s);
    (void)ppdb_env_stream_write(sc->env[0], s, "hello", 5, write_cb, sc);
    (void)ppdb_env_stream_write(sc->env[0], s, "world", 5, write_cb, sc);
}

static void seen_cb(void *data, const struct ppdb_service *svc, bool up)
{
    ((struct scen *)data)->callbacks++;
}

static void work_fn(void *data)
{
    ((struct scen *)data)->callbacks++;
}

static void work_done_cb(void *data, int status)
{
    ((struct scen *)data)->callbacks++;
}

static void setup(struct scen *sc)
{
    for (uint32_t i = 0; i < 3; i++) {
        if (ppdb_sim_add_node(sc->sim, NULL, &sc->env[i], NULL) != 0)
            return;
        sc->nodes++;
        struct ppdb_addr a;
        ppdb_sim_node_addr(sc->sim, i, 7000, &a);
        (void)ppdb_env_udp_open(sc->env[i], &a, udp_cb, sc, &sc->u[i]);
    }
    struct ppdb_addr at;
    ppdb_sim_node_addr(sc->sim, 1, 7001, &at);
    if (ppdb_env_listen(sc->env[1], &at, accept_cb, sc, &sc->l) == 0)
        (void)ppdb_env_connect(sc->env[0], &at, connect_cb, sc);
    struct ppdb_service svc;
    memset(&svc, 0, sizeof(svc));
    strcpy(svc.name, "n2");
    (void)ppdb_env_browse(sc->env[0], "_ppdb._udp", seen_cb, sc);
    (void)ppdb_env_announce(sc->env[2], &svc);
    (void)ppdb_env_work_submit(sc->env[1], work_fn, work_done_cb, sc);
    for (uint32_t i = 0; i < 3; i++) {
        struct ppdb_addr to;
        ppdb_sim_node_addr(sc->sim, (i + 1) % 3, 7000, &to);
        if (sc->u[i])
            (void)ppdb_env_udp_send(sc->env[i], sc->u[i], &to, "x", 1);
    }
}

static void scenario(void)
{
    struct scen sc = {0};
    struct ppdb_sim_options o;
    ppdb_sim_options_default(&o);
    o.max_events = 256;
    o.max_timers = 64;
    if (ppdb_sim_new(&o, &sc.sim) != 0)
        return;
    setup(&sc);
    if (sc.nodes == 3) {
        (void)ppdb_sim_run_for(sc.sim, 20);
        if (sc.cli) { /* parked data, then read_start and an abortive close */
            (void)ppdb_env_stream_read_start(sc.env[0], sc.cli, read_cb, &sc);
            (void)ppdb_env_stream_write(sc.env[0], sc.cli, "bye", 3, write_cb, &sc);
            ppdb_env_stream_close(sc.env[0], sc.cli, NULL, NULL);
            sc.cli = NULL;
        }
        (void)ppdb_sim_node_crash(sc.sim, 1);
        (void)ppdb_sim_run_for(sc.sim, 50);
    }
    if (sc.cli)
        ppdb_env_stream_close(sc.env[0], sc.cli, NULL, NULL);
    if (sc.srv)
        ppdb_env_stream_close(sc.env[1], sc.srv, NULL, NULL);
    if (sc.l)
        ppdb_env_listener_close(sc.env[1], sc.l);
    for (uint32_t i = 0; i < sc.nodes; i++)
        if (sc.u[i])
            ppdb_env_udp_close(sc.env[i], sc.u[i]);
    ppdb_sim_free(sc.sim);
}

int main(void)
{
    struct ppdb_alloc_stats base, now;
    ppdb_alloc_stats(&base);
    scenario(); /* a clean run first: it must allocate and not leak */
    ppdb_alloc_stats(&now);
    int64_t allocs = now.total_allocs - base.total_allocs;
    check_no_leaks(&base);
    CHECK_GT(allocs, 10); /* world, queue, nodes, handles, pooled events */
    int64_t n;
    for (n = 1; n <= allocs + 5; n++) {
        ppdb_alloc_stats(&base);
        ppdb_alloc_fail_after(n);
        scenario();
        ppdb_alloc_fail_after(0);
        check_no_leaks(&base);
    }
    fprintf(stderr, "test_sim_oom: %lld allocations, each failed once: ok\n", (long long)allocs);
    return 0;
}
