/*
 * ppdb_base.h - the base layer every PPDB module stands on.
 *
 * Errors (one X-macro table, negative codes, ppdb_strerror), always-on
 * asserts that print file, line and both operands, leveled key=value
 * logging through a caller-supplied logger, counted allocation (so tests
 * can assert that nothing leaked and inject out-of-memory), growable byte
 * buffers, a bounds-checked reader, varints, CRC32C and a fast 64-bit hash.
 *
 * Conventions (docs/architecture.md): functions that act return 0 or a
 * negative PPDB_E* code; results go through *_out parameters; buffers passed
 * in are borrowed for the duration of the call unless a name says otherwise.
 */
#ifndef PPDB_BASE_H
#define PPDB_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- errors */

/* X(name, value, message). Values are stable: they appear in logs and in
 * the CLI's JSON output. New codes are appended, never renumbered. */
#define PPDB_ERRORS(X)                                                         \
    X(EINVAL, -1, "invalid argument")                                          \
    X(ENOMEM, -2, "out of memory")                                             \
    X(EIO, -3, "input/output error")                                           \
    X(ECORRUPT, -4, "data corruption detected")                                \
    X(ENOTFOUND, -5, "not found")                                              \
    X(EEXIST, -6, "already exists")                                            \
    X(ENOSPC, -7, "no space left on device")                                   \
    X(EBUSY, -8, "resource busy or locked")                                    \
    X(ELIMIT, -9, "configured limit reached")                                  \
    X(ETIMEDOUT, -10, "timed out")                                             \
    X(ECLOSED, -11, "closed")                                                  \
    X(EPROTO, -12, "protocol error")                                           \
    X(EAUTH, -13, "authentication failed")                                     \
    X(EREPLAY, -14, "replayed or stale message")                               \
    X(ENOTSUP, -15, "not supported")                                           \
    X(ETRUNC, -16, "truncated input")                                          \
    X(ETYPE, -17, "wrong type")                                                \
    X(ERANGE, -18, "value out of range")                                       \
    X(EAGAIN, -19, "resource temporarily unavailable")                         \
    X(ECANCELED, -20, "operation canceled")                                    \
    X(ECONNREFUSED, -21, "connection refused")                                 \
    X(ECONNRESET, -22, "connection reset")                                     \
    X(EADDRINUSE, -23, "address in use")                                       \
    X(EREADONLY, -24, "database is read-only")                                 \
    X(ECLOCK, -25, "timestamp outside the allowed clock offset")               \
    X(EUNAVAIL, -26, "service unavailable")                                    \
    X(ENOKEY, -27, "no usable key")                                            \
    X(EVERSION, -28, "unsupported format or protocol version")                 \
    X(ENOENT, -29, "no such file or directory")                                \
    X(EPERM, -30, "permission denied")

enum ppdb_error {
#define PPDB_ERR_ENUM(name, value, msg) PPDB_##name = (value),
    PPDB_ERRORS(PPDB_ERR_ENUM)
#undef PPDB_ERR_ENUM
    PPDB_OK = 0
};

/* Message for a PPDB_E* code (or "unknown error N"); never NULL. The string
 * is static except for unknown codes, where it lives in thread-local storage
 * until the next call on the same thread. */
const char *ppdb_strerror(int err);
/* Symbolic name ("EIO") of a code, or "E?" */
const char *ppdb_errname(int err);
/* Map a positive errno value to a PPDB_E* code (EIO for anything unknown). */
int ppdb_err_from_errno(int errno_value);

/* ---------------------------------------------------------------- asserts */

/* Always on, also in release builds: a failed assert is a programmer error;
 * it logs file, line, the expression and (for the CMP forms) both operands,
 * then aborts. */
#if defined(__GNUC__)
#define PPDB_NORETURN __attribute__((noreturn))
#define PPDB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define PPDB_LIKELY(x) __builtin_expect(!!(x), 1)
#define PPDB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define PPDB_NORETURN
#define PPDB_PRINTF(a, b)
#define PPDB_LIKELY(x) (x)
#define PPDB_UNLIKELY(x) (x)
#endif

PPDB_NORETURN void ppdb_assert_fail(const char *file, int line, const char *expr);
PPDB_NORETURN void ppdb_assert_fail_cmp(const char *file, int line, const char *expr,
                                        long long a, long long b);

#define PPDB_ASSERT(expr)                                                      \
    do {                                                                       \
        if (PPDB_UNLIKELY(!(expr)))                                            \
            ppdb_assert_fail(__FILE__, __LINE__, #expr);                       \
    } while (0)

/* PPDB_ASSERT_CMP(a, <=, b): prints both values when it fails. */
#define PPDB_ASSERT_CMP(a, op, b)                                              \
    do {                                                                       \
        long long ppdb_a_ = (long long)(a), ppdb_b_ = (long long)(b);          \
        if (PPDB_UNLIKELY(!(ppdb_a_ op ppdb_b_)))                              \
            ppdb_assert_fail_cmp(__FILE__, __LINE__, #a " " #op " " #b,        \
                                 ppdb_a_, ppdb_b_);                            \
    } while (0)

#define PPDB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PPDB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PPDB_MAX(a, b) ((a) > (b) ? (a) : (b))
#define PPDB_CONTAINER_OF(ptr, type, member)                                   \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---------------------------------------------------------------- logging */

enum ppdb_log_level {
    PPDB_LOG_ERROR = 0,
    PPDB_LOG_WARN = 1,
    PPDB_LOG_INFO = 2,
    PPDB_LOG_DEBUG = 3,
    PPDB_LOG_TRACE = 4
};

/* Receives one finished line (no trailing newline). */
typedef void (*ppdb_log_sink_cb)(void *arg, int level, const char *line, size_t len);
/* Supplies the timestamp printed on each line (wall or virtual ms). */
typedef int64_t (*ppdb_log_clock_cb)(void *arg);

/* A logger is plain caller-owned data: one per process for the daemons, one
 * per simulated node in the simulator (its clock is the virtual clock).
 * Lines read: `ts=<ms> level=<lvl> node=<name> comp=<component> msg="<msg>" k=v ...` */
struct ppdb_logger {
    int level;                  /* lines above this level are dropped */
    ppdb_log_sink_cb sink;      /* NULL: write to stderr */
    void *sink_arg;
    ppdb_log_clock_cb clock;    /* NULL: real wall clock */
    void *clock_arg;
    char name[40];              /* node name or id prefix; may be empty */
};

void ppdb_logger_init(struct ppdb_logger *lg, int level, const char *name);
/* The process-wide stderr logger used by main()s and by code with no logger
 * of its own. Its level can be changed; nothing else about it is shared. */
struct ppdb_logger *ppdb_logger_default(void);
/* Parse "error|warn|info|debug|trace"; returns PPDB_EINVAL otherwise. */
int ppdb_log_level_parse(const char *s, int *level_out);
const char *ppdb_log_level_name(int level);

/* fields_fmt is printf-style text of space-separated key=value pairs, or NULL. */
void ppdb_logf(const struct ppdb_logger *lg, int level, const char *comp, const char *msg,
               const char *fields_fmt, ...) PPDB_PRINTF(5, 6);

#define PPDB_LOG(lg, lvl, comp, msg, ...)                                      \
    do {                                                                       \
        const struct ppdb_logger *ppdb_lg_ = (lg);                             \
        if ((lvl) <= ppdb_lg_->level)                                          \
            ppdb_logf(ppdb_lg_, (lvl), (comp), (msg), __VA_ARGS__);            \
    } while (0)

/* ------------------------------------------------------------- allocation */

/* Counted allocation. Every PPDB allocation goes through these so tests can
 * assert that the live count returns to its starting value, and can make the
 * Nth allocation from now fail (SQLite-style out-of-memory testing). The
 * counters are process-wide atomics: the one piece of shared state in the
 * base layer, deliberately, since a leak is a property of the process
 * (spread over cache lines by thread index, so threads do not contend on
 * them; summed by ppdb_alloc_stats). */
void *ppdb_malloc(size_t n);
void *ppdb_calloc(size_t count, size_t size);
void *ppdb_realloc(void *p, size_t n);
void ppdb_free(void *p);
char *ppdb_strdup(const char *s);

struct ppdb_alloc_stats {
    int64_t live_blocks;
    int64_t live_bytes;
    int64_t total_allocs;
    int64_t failed_allocs;
};
void ppdb_alloc_stats(struct ppdb_alloc_stats *out);
/* Make the allocation `n` calls from now fail (0 disarms). Test use only. */
void ppdb_alloc_fail_after(int64_t n);

/* A small number naming the calling thread: 0, 1, 2, ... in the order
 * threads first call it, never reused. For spreading per-thread state over
 * a fixed number of slots (index modulo slots); never for a result. */
unsigned ppdb_thread_index(void);

/* ---------------------------------------------------------------- buffers */

/* A growable byte buffer. Owns `data`; ppdb_buf_deinit frees it. */
struct ppdb_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

void ppdb_buf_init(struct ppdb_buf *b);
void ppdb_buf_deinit(struct ppdb_buf *b);
void ppdb_buf_reset(struct ppdb_buf *b); /* len = 0, keeps capacity */
int ppdb_buf_reserve(struct ppdb_buf *b, size_t extra);
int ppdb_buf_append(struct ppdb_buf *b, const void *p, size_t n);
int ppdb_buf_append_u8(struct ppdb_buf *b, uint8_t v);
int ppdb_buf_append_u16be(struct ppdb_buf *b, uint16_t v);
int ppdb_buf_append_u32be(struct ppdb_buf *b, uint32_t v);
int ppdb_buf_append_u64be(struct ppdb_buf *b, uint64_t v);
int ppdb_buf_append_u32le(struct ppdb_buf *b, uint32_t v);
int ppdb_buf_append_u64le(struct ppdb_buf *b, uint64_t v);
int ppdb_buf_append_varint(struct ppdb_buf *b, uint64_t v);
/* Hand the bytes to the caller (who frees them with ppdb_free); b is reset. */
uint8_t *ppdb_buf_steal(struct ppdb_buf *b, size_t *len_out);

/* A bounds-checked reader over borrowed bytes. Every get returns PPDB_ETRUNC
 * instead of reading past `end`, and then leaves the reader unchanged. */
struct ppdb_rd {
    const uint8_t *p;
    const uint8_t *end;
};

static inline void ppdb_rd_init(struct ppdb_rd *r, const void *p, size_t n)
{
    r->p = (const uint8_t *)p;
    r->end = r->p + n;
}
static inline size_t ppdb_rd_left(const struct ppdb_rd *r)
{
    return (size_t)(r->end - r->p);
}
int ppdb_rd_bytes(struct ppdb_rd *r, size_t n, const uint8_t **p_out);
int ppdb_rd_u8(struct ppdb_rd *r, uint8_t *out);
int ppdb_rd_u16be(struct ppdb_rd *r, uint16_t *out);
int ppdb_rd_u32be(struct ppdb_rd *r, uint32_t *out);
int ppdb_rd_u64be(struct ppdb_rd *r, uint64_t *out);
int ppdb_rd_u32le(struct ppdb_rd *r, uint32_t *out);
int ppdb_rd_u64le(struct ppdb_rd *r, uint64_t *out);
int ppdb_rd_varint(struct ppdb_rd *r, uint64_t *out); /* ECORRUPT if > 10 bytes */

/* Fixed-width little/big-endian load/store on raw memory. */
static inline void ppdb_store_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t ppdb_load_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void ppdb_store_u64le(uint8_t *p, uint64_t v)
{
    ppdb_store_u32le(p, (uint32_t)v);
    ppdb_store_u32le(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t ppdb_load_u64le(const uint8_t *p)
{
    return (uint64_t)ppdb_load_u32le(p) | (uint64_t)ppdb_load_u32le(p + 4) << 32;
}
static inline void ppdb_store_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t ppdb_load_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline void ppdb_store_u64be(uint8_t *p, uint64_t v)
{
    ppdb_store_u32be(p, (uint32_t)(v >> 32));
    ppdb_store_u32be(p + 4, (uint32_t)v);
}
static inline uint64_t ppdb_load_u64be(const uint8_t *p)
{
    return (uint64_t)ppdb_load_u32be(p) << 32 | (uint64_t)ppdb_load_u32be(p + 4);
}

/* Encode v as LEB128 into p (room for 10 bytes); returns bytes written. */
size_t ppdb_varint_put(uint8_t *p, uint64_t v);
size_t ppdb_varint_len(uint64_t v);

/* ---------------------------------------------------------------- hashing */

/* CRC-32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2.
 * `crc` is the running value (0 to start). */
uint32_t ppdb_crc32c_extend(uint32_t crc, const void *p, size_t n);
static inline uint32_t ppdb_crc32c(const void *p, size_t n)
{
    return ppdb_crc32c_extend(0, p, n);
}
/* Masked CRC for CRCs stored next to the data they cover (LevelDB's trick:
 * a CRC of a string that contains a CRC is otherwise weak). */
static inline uint32_t ppdb_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
static inline uint32_t ppdb_crc32c_unmask(uint32_t m)
{
    uint32_t rot = m - 0xa282ead8u;
    return (rot >> 17) | (rot << 15);
}

/* Fast non-cryptographic 64-bit hash (bloom filters, tables, trace hashes).
 * Stable across platforms and versions: it is part of on-disk formats. */
uint64_t ppdb_hash64(const void *p, size_t n, uint64_t seed);
static inline uint64_t ppdb_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* ------------------------------------------------------------------ rng */

/* xoshiro256** seeded through splitmix64: deterministic per seed, used by the
 * simulator and by tests. Real nodes draw randomness from the env instead. */
struct ppdb_rng {
    uint64_t s[4];
};
void ppdb_rng_seed(struct ppdb_rng *r, uint64_t seed);
uint64_t ppdb_rng_next(struct ppdb_rng *r);
/* Uniform in [0, bound) without modulo bias; bound > 0. */
uint64_t ppdb_rng_below(struct ppdb_rng *r, uint64_t bound);
/* Uniform double in [0, 1). */
double ppdb_rng_double(struct ppdb_rng *r);
void ppdb_rng_bytes(struct ppdb_rng *r, void *buf, size_t n);

/* ------------------------------------------------------------------ misc */

/* Lowercase hex of n bytes into out (room for 2n+1). Returns out. */
char *ppdb_hex(const void *p, size_t n, char *out);
/* Parse exactly 2n hex digits into n bytes. */
int ppdb_unhex(const char *s, void *out, size_t n);

#endif /* PPDB_BASE_H */
