/*
 * err.c - the error table, errno mapping and always-on asserts.
 *
 * Error codes come from the single PPDB_ERRORS X-macro in ppdb_base.h so the
 * enum, the names and the messages can never drift apart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "ppdb_base.h"

const char *ppdb_strerror(int err)
{
    static _Thread_local char unknown[32];

    switch (err) {
    case PPDB_OK:
        return "ok";
#define PPDB_ERR_MSG(name, value, msg)                                         \
    case PPDB_##name:                                                          \
        return msg;
        PPDB_ERRORS(PPDB_ERR_MSG)
#undef PPDB_ERR_MSG
    default:
        snprintf(unknown, sizeof(unknown), "unknown error %d", err);
        return unknown;
    }
}

const char *ppdb_errname(int err)
{
    switch (err) {
    case PPDB_OK:
        return "OK";
#define PPDB_ERR_NAME(name, value, msg)                                        \
    case PPDB_##name:                                                          \
        return #name;
        PPDB_ERRORS(PPDB_ERR_NAME)
#undef PPDB_ERR_NAME
    default:
        return "E?";
    }
}

int ppdb_err_from_errno(int e)
{
    switch (e) {
    case 0:
        return PPDB_OK;
    case ENOENT:
        return PPDB_ENOENT;
    case EEXIST:
        return PPDB_EEXIST;
    case ENOSPC:
    case EDQUOT:
        return PPDB_ENOSPC;
    case ENOMEM:
        return PPDB_ENOMEM;
    case EINVAL:
        return PPDB_EINVAL;
    case EACCES:
    case EPERM:
        return PPDB_EPERM;
    case EAGAIN:
        return PPDB_EAGAIN;
    case EBUSY:
        return PPDB_EBUSY;
    case ETIMEDOUT:
        return PPDB_ETIMEDOUT;
    case ECONNREFUSED:
        return PPDB_ECONNREFUSED;
    case ECONNRESET:
    case EPIPE:
        return PPDB_ECONNRESET;
    case EADDRINUSE:
        return PPDB_EADDRINUSE;
    case ECANCELED:
        return PPDB_ECANCELED;
    case EROFS:
        return PPDB_EREADONLY;
    default:
        return PPDB_EIO;
    }
}

void ppdb_assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

void ppdb_assert_fail_cmp(const char *file, int line, const char *expr, long long a, long long b)
{
    fprintf(stderr, "%s:%d: assertion failed: %s (%lld vs %lld)\n", file, line, expr, a, b);
    fflush(stderr);
    abort();
}
