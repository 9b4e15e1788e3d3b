/*
 * test_env_uv.h - harness shared by the libuv env tests.
 *
 * One harness = one uv loop, one env on it, a logger that counts warnings,
 * and a guard timer (a raw, unreferenced uv timer, independent of the env's
 * timers) that fails the test if the loop is still running when it fires.
 * harness_close frees the env, closes the loop and asserts no leak.
 */
#ifndef PPDB_TEST_ENV_UV_H
#define PPDB_TEST_ENV_UV_H

#include <uv.h>

#include "check.h"
#include "ppdb_env.h"

struct harness {
    uv_loop_t loop;
    struct ppdb_env_uv *euv;
    struct ppdb_env *env;
    uv_timer_t guard;
    const char *name;
    struct ppdb_logger log;
    int warnings; /* WARN and ERROR lines logged */
    struct ppdb_alloc_stats base;
};

static void harness_sink_cb(void *arg, int level, const char *line, size_t len)
{
    struct harness *h = arg;
    if (level <= PPDB_LOG_WARN)
        h->warnings++;
    fprintf(stderr, "%.*s\n", (int)len, line);
}

static void harness_guard_cb(uv_timer_t *t)
{
    struct harness *h = t->data;
    fprintf(stderr, "%s: timed out (guard timer)\n", h->name);
    exit(1);
}

static inline void harness_open(struct harness *h, const char *name,
                                const struct ppdb_env_uv_options *o, uint64_t guard_ms)
{
    memset(h, 0, sizeof(*h));
    h->name = name;
    fprintf(stderr, "-- %s\n", name);
    ppdb_alloc_stats(&h->base);
    ppdb_logger_init(&h->log, PPDB_LOG_INFO, name);
    h->log.sink = harness_sink_cb;
    h->log.sink_arg = h;
    CHECK_EQ(uv_loop_init(&h->loop), 0);
    CHECK_OK(ppdb_env_uv_new(&h->loop, o, &h->log, &h->euv));
    h->env = ppdb_env_uv_env(h->euv);
    CHECK(h->env->log == &h->log);
    CHECK_EQ(uv_timer_init(&h->loop, &h->guard), 0);
    h->guard.data = h;
    CHECK_EQ(uv_timer_start(&h->guard, harness_guard_cb, guard_ms, 0), 0);
    uv_unref((uv_handle_t *)&h->guard); /* the guard alone does not keep the loop alive */
}

/* Runs the loop until nothing referenced is left. */
static inline void harness_run(struct harness *h)
{
    uv_run(&h->loop, UV_RUN_DEFAULT);
}

/* Frees the env and the loop; `warnings` is how many WARN lines the test
 * expected (bounds hit on purpose). */
static inline void harness_close(struct harness *h, int warnings)
{
    ppdb_env_uv_free(h->euv);
    uv_close((uv_handle_t *)&h->guard, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&h->loop), 0);
    CHECK_EQ(h->warnings, warnings);
    check_no_leaks(&h->base);
}

/* Deterministic test bytes: the byte at stream offset `off` of stream `id`. */
static inline uint8_t pattern_byte(uint64_t id, uint64_t off)
{
    return (uint8_t)(ppdb_mix64(id * 0x9e3779b97f4a7c15ull + (off >> 3)) >> ((off & 7) * 8));
}

static inline void loopback(struct ppdb_addr *a, uint16_t port)
{
    ppdb_addr_ipv4(a, 127, 0, 0, 1, port);
}

#endif /* PPDB_TEST_ENV_UV_H */
