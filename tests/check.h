/*
 * check.h - assertions for PPDB tests.
 *
 * Every failing check prints file, line, the expression and both operands,
 * then exits 1 (ctest counts it as a failure). Randomized tests take their
 * seed from PPDB_SEED (or argv) through check_seed() and print it first, so
 * any failure can be rerun with the same seed. check_skip() exits with 77,
 * the SKIP_RETURN_CODE every PPDB test is registered with.
 */
#ifndef PPDB_TESTS_CHECK_H
#define PPDB_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppdb_base.h"

#define CHECK_SKIP_CODE 77

#define CHECK_FAIL_(fmt, ...)                                                  \
    do {                                                                       \
        fprintf(stderr, "%s:%d: check failed: " fmt "\n", __FILE__, __LINE__,  \
                __VA_ARGS__);                                                  \
        exit(1);                                                               \
    } while (0)

#define CHECK(expr)                                                            \
    do {                                                                       \
        if (!(expr))                                                           \
            CHECK_FAIL_("%s", #expr);                                          \
    } while (0)

/* Integer comparison printing both operands. */
#define CHECK_CMP(a, op, b)                                                    \
    do {                                                                       \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);        \
        if (!(check_a_ op check_b_))                                           \
            CHECK_FAIL_("%s %s %s (%lld vs %lld)", #a, #op, #b, check_a_,      \
                        check_b_);                                             \
    } while (0)
#define CHECK_EQ(a, b) CHECK_CMP(a, ==, b)
#define CHECK_NE(a, b) CHECK_CMP(a, !=, b)
#define CHECK_LT(a, b) CHECK_CMP(a, <, b)
#define CHECK_LE(a, b) CHECK_CMP(a, <=, b)
#define CHECK_GT(a, b) CHECK_CMP(a, >, b)
#define CHECK_GE(a, b) CHECK_CMP(a, >=, b)

/* Unsigned 64-bit comparison (hashes, sizes above LLONG_MAX). */
#define CHECK_EQ_U64(a, b)                                                     \
    do {                                                                       \
        uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);          \
        if (check_a_ != check_b_)                                              \
            CHECK_FAIL_("%s == %s (%" PRIu64 " vs %" PRIu64 ")", #a, #b,       \
                        check_a_, check_b_);                                   \
    } while (0)

/* A PPDB call that must succeed: prints the error's name and message. */
#define CHECK_OK(call)                                                         \
    do {                                                                       \
        int check_rc_ = (call);                                                \
        if (check_rc_ != 0)                                                    \
            CHECK_FAIL_("%s returned %d (%s: %s)", #call, check_rc_,           \
                        ppdb_errname(check_rc_), ppdb_strerror(check_rc_));    \
    } while (0)

/* A PPDB call that must fail with a given code. */
#define CHECK_ERR(call, code)                                                  \
    do {                                                                       \
        int check_rc_ = (call);                                                \
        if (check_rc_ != (code))                                               \
            CHECK_FAIL_("%s returned %d (%s), expected %d (%s)", #call,        \
                        check_rc_, ppdb_errname(check_rc_), (int)(code),       \
                        ppdb_errname(code));                                   \
    } while (0)

#define CHECK_STREQ(a, b)                                                      \
    do {                                                                       \
        const char *check_a_ = (a), *check_b_ = (b);                           \
        if (strcmp(check_a_, check_b_) != 0)                                   \
            CHECK_FAIL_("%s == %s (\"%s\" vs \"%s\")", #a, #b, check_a_,       \
                        check_b_);                                             \
    } while (0)

#define CHECK_MEMEQ(a, b, n)                                                   \
    do {                                                                       \
        if (memcmp((a), (b), (n)) != 0)                                        \
            CHECK_FAIL_("memcmp(%s, %s, %zu) != 0", #a, #b, (size_t)(n));      \
    } while (0)

static inline void check_skip(const char *why)
{
    fprintf(stderr, "SKIP: %s\n", why);
    exit(CHECK_SKIP_CODE);
}

/* Seed for a randomized test: argv[1] if given as a number, else PPDB_SEED,
 * else `fallback`. Printed so that a failure names its seed. */
static inline uint64_t check_seed(int argc, char **argv, uint64_t fallback)
{
    uint64_t seed = fallback;
    const char *env = getenv("PPDB_SEED");
    if (argc > 1 && argv[1][0] >= '0' && argv[1][0] <= '9')
        seed = strtoull(argv[1], NULL, 0);
    else if (env && *env)
        seed = strtoull(env, NULL, 0);
    fprintf(stderr, "seed=%" PRIu64 " (rerun: PPDB_SEED=%" PRIu64 " %s)\n", seed, seed,
            argv[0]);
    return seed;
}

/* Asserts that no counted allocation is live beyond `baseline`. */
static inline void check_no_leaks(const struct ppdb_alloc_stats *baseline)
{
    struct ppdb_alloc_stats now;
    ppdb_alloc_stats(&now);
    if (now.live_blocks != baseline->live_blocks || now.live_bytes != baseline->live_bytes) {
        fprintf(stderr, "leak: live blocks %lld -> %lld, bytes %lld -> %lld\n",
                (long long)baseline->live_blocks, (long long)now.live_blocks,
                (long long)baseline->live_bytes, (long long)now.live_bytes);
        exit(1);
    }
}

#endif /* PPDB_TESTS_CHECK_H */
