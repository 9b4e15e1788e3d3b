/*
 * log.c - leveled, key=value structured logging.
 *
 * A line is formatted into a stack buffer and handed whole to the logger's
 * sink (stderr by default), so lines from several threads never interleave
 * mid-line. Loggers are caller-owned values: the simulator gives each node
 * its own, stamped with virtual time.
 */
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ppdb_base.h"

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void ppdb_logger_init(struct ppdb_logger *lg, int level, const char *name)
{
    memset(lg, 0, sizeof(*lg));
    lg->level = level;
    if (name)
        snprintf(lg->name, sizeof(lg->name), "%s", name);
}

struct ppdb_logger *ppdb_logger_default(void)
{
    static struct ppdb_logger def = {.level = PPDB_LOG_INFO};
    return &def;
}

int ppdb_log_level_parse(const char *s, int *level_out)
{
    for (size_t i = 0; i < PPDB_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *level_out = (int)i;
            return 0;
        }
    }
    return PPDB_EINVAL;
}

const char *ppdb_log_level_name(int level)
{
    if (level < 0 || level >= (int)PPDB_ARRAY_LEN(level_names))
        return "?";
    return level_names[level];
}

static int64_t real_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_stderr(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, line, len);
        if (n <= 0)
            return;
        line += n;
        len -= (size_t)n;
    }
}

void ppdb_logf(const struct ppdb_logger *lg, int level, const char *comp, const char *msg,
               const char *fields_fmt, ...)
{
    char line[1024];
    int64_t ts = lg->clock ? lg->clock(lg->clock_arg) : real_wall_ms();
    int n = snprintf(line, sizeof(line), "ts=%lld level=%s%s%s comp=%s msg=\"%s\"",
                     (long long)ts, ppdb_log_level_name(level), lg->name[0] ? " node=" : "",
                     lg->name, comp, msg);
    if (n < 0)
        return;
    size_t len = PPDB_MIN((size_t)n, sizeof(line) - 2);
    if (fields_fmt && fields_fmt[0]) {
        va_list ap;
        line[len++] = ' ';
        va_start(ap, fields_fmt);
        n = vsnprintf(line + len, sizeof(line) - len - 1, fields_fmt, ap);
        va_end(ap);
        if (n > 0)
            len = PPDB_MIN(len + (size_t)n, sizeof(line) - 2);
    }
    if (lg->sink) {
        line[len] = '\0';
        lg->sink(lg->sink_arg, level, line, len);
        return;
    }
    line[len++] = '\n';
    write_stderr(line, len);
}
