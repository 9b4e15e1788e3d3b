/*
 * addr.c - node addresses: parse, format, compare.
 *
 * Addresses are plain values (family, port, 16 address bytes) so they can be
 * hashed, compared and carried in member records without pointers. Parsing
 * accepts numeric forms only (and "localhost"): PPDB never resolves names,
 * so a node cannot be steered to an unexpected host by DNS.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include "ppdb_env.h"

static int parse_port(const char *s, uint16_t *out)
{
    char *end;
    if (!*s)
        return PPDB_EINVAL;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > 65535 || (s[0] < '0' || s[0] > '9'))
        return PPDB_EINVAL;
    *out = (uint16_t)v;
    return 0;
}

int ppdb_addr_parse(const char *s, struct ppdb_addr *out)
{
    char host[64];
    const char *port;
    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            return PPDB_EINVAL;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
        if (inet_pton(AF_INET6, host, out->ip) != 1)
            return PPDB_EINVAL;
        out->family = 6;
        return parse_port(port, &out->port);
    }
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return PPDB_EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, out->ip) != 1)
        return PPDB_EINVAL;
    out->family = 4;
    return parse_port(colon + 1, &out->port);
}

char *ppdb_addr_format(const struct ppdb_addr *a, char *out)
{
    char host[INET6_ADDRSTRLEN];
    if (a->family == 6) {
        inet_ntop(AF_INET6, a->ip, host, sizeof(host));
        snprintf(out, PPDB_ADDR_STRLEN, "[%s]:%u", host, a->port);
    } else if (a->family == 4) {
        inet_ntop(AF_INET, a->ip, host, sizeof(host));
        snprintf(out, PPDB_ADDR_STRLEN, "%s:%u", host, a->port);
    } else {
        snprintf(out, PPDB_ADDR_STRLEN, "(unset)");
    }
    return out;
}

static size_t ip_len(const struct ppdb_addr *a)
{
    return a->family == 6 ? 16 : 4;
}

bool ppdb_addr_equal(const struct ppdb_addr *a, const struct ppdb_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, ip_len(a)) == 0;
}

int ppdb_addr_cmp(const struct ppdb_addr *a, const struct ppdb_addr *b)
{
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    int c = memcmp(a->ip, b->ip, ip_len(a));
    if (c)
        return c < 0 ? -1 : 1;
    if (a->port != b->port)
        return a->port < b->port ? -1 : 1;
    return 0;
}

void ppdb_addr_ipv4(struct ppdb_addr *out, uint8_t a, uint8_t b, uint8_t c, uint8_t d,
                    uint16_t port)
{
    memset(out, 0, sizeof(*out));
    out->family = 4;
    out->ip[0] = a;
    out->ip[1] = b;
    out->ip[2] = c;
    out->ip[3] = d;
    out->port = port;
}

bool ppdb_addr_is_loopback(const struct ppdb_addr *a)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    if (a->family == 4)
        return a->ip[0] == 127;
    return a->family == 6 && memcmp(a->ip, v6_loopback, 16) == 0;
}

uint64_t ppdb_env_random_below(struct ppdb_env *e, uint64_t bound)
{
    PPDB_ASSERT(bound > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    for (;;) {
        uint64_t v = ppdb_env_random_u64(e);
        if (v < limit)
            return v % bound;
    }
}
