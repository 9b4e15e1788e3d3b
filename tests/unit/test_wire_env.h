/*
 * test_wire_env.h - a minimal env for the wire unit tests: settable wall
 * and monotonic clocks and a seeded generator. The wire code uses nothing
 * else of the env, so every other operation is left NULL (a call would
 * crash the test, which is what it should do).
 */
#ifndef PPDB_TEST_WIRE_ENV_H
#define PPDB_TEST_WIRE_ENV_H

#include "ppdb_env.h"

struct test_env {
    struct ppdb_env env;
    int64_t wall_ms;
    uint64_t mono_ms;
    struct ppdb_rng rng;
};

static uint64_t test_env_mono_ms(struct ppdb_env *e)
{
    return ((struct test_env *)(void *)e)->mono_ms;
}

static int64_t test_env_wall_ms(struct ppdb_env *e)
{
    return ((struct test_env *)(void *)e)->wall_ms;
}

static void test_env_random(struct ppdb_env *e, void *buf, size_t len)
{
    ppdb_rng_bytes(&((struct test_env *)(void *)e)->rng, buf, len);
}

static const struct ppdb_env_ops test_env_ops = {
    .mono_ms = test_env_mono_ms,
    .wall_ms = test_env_wall_ms,
    .random = test_env_random,
};

static inline void test_env_init(struct test_env *t, uint64_t seed, int64_t wall_ms)
{
    memset(t, 0, sizeof(*t));
    t->env.ops = &test_env_ops;
    t->env.log = ppdb_logger_default();
    t->wall_ms = wall_ms;
    t->mono_ms = 1000;
    ppdb_rng_seed(&t->rng, seed);
}

static inline void test_env_advance(struct test_env *t, int64_t ms)
{
    t->wall_ms += ms;
    t->mono_ms += (uint64_t)ms;
}

#endif /* PPDB_TEST_WIRE_ENV_H */
