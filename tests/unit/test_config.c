/*
 * test_config.c - flags and config files share one option table: values,
 * precedence (file, then flags), lists, booleans, and every error names the
 * key (and line).
 */
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "ppdb_config.h"

struct cfg {
    char listen[64];
    char seeds[256];
    uint64_t vnodes;
    bool mdns;
};

static size_t make_opts(struct cfg *c, struct ppdb_opt *o)
{
    struct ppdb_opt t[] = {
        {"listen", PPDB_OPT_STR, c->listen, sizeof(c->listen), 0, 0, "address"},
        {"seed", PPDB_OPT_LIST, c->seeds, sizeof(c->seeds), 0, 0, "seed addresses"},
        {"vnodes", PPDB_OPT_U64, &c->vnodes, 0, 1, 1024, "tokens per node"},
        {"mdns", PPDB_OPT_BOOL, &c->mdns, 0, 0, 0, "discovery"},
    };
    memcpy(o, t, sizeof(t));
    return PPDB_ARRAY_LEN(t);
}

int main(void)
{
    struct cfg c = {.vnodes = 16, .mdns = true};
    struct ppdb_opt opts[8];
    size_t n = make_opts(&c, opts);
    char err[PPDB_CONFIG_ERR_MAX];
    char path[] = "/tmp/ppdb-config-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# node config\n\nlisten = 127.0.0.1:7001  # comment\nvnodes=32\n"
          "mdns = off\nseed = \"127.0.0.1:7000\"\n", f);
    fclose(f);
    CHECK_OK(ppdb_config_load_file(opts, n, path, err, sizeof(err)));
    CHECK_STREQ(c.listen, "127.0.0.1:7001");
    CHECK_EQ(c.vnodes, 32);
    CHECK(!c.mdns);
    CHECK_STREQ(c.seeds, "127.0.0.1:7000");

    char *argv[] = {"run", "--vnodes=64", "--seed", "127.0.0.1:7002", "--mdns", "extra",
                    "--config", path};
    const char *pos[2];
    size_t np;
    CHECK_STREQ(ppdb_config_find_flag(8, argv, "config"), path);
    CHECK_OK(ppdb_config_parse_args(opts, n, 8, argv, pos, 2, &np, err, sizeof(err)));
    CHECK_EQ(np, 2);
    CHECK_STREQ(pos[0], "run");
    CHECK_STREQ(pos[1], "extra");
    CHECK_EQ(c.vnodes, 64);
    CHECK(c.mdns);
    CHECK_STREQ(c.seeds, "127.0.0.1:7000,127.0.0.1:7002");

    char *bools[] = {"--mdns", "off", "word", "--mdns", "--vnodes", "5"};
    CHECK_OK(ppdb_config_parse_args(opts, n, 6, bools, pos, 2, &np, err, sizeof(err)));
    CHECK(c.mdns); /* the second, bare --mdns wins */
    CHECK_EQ(np, 1);
    CHECK_STREQ(pos[0], "word");
    char *bools2[] = {"--mdns", "no"};
    CHECK_OK(ppdb_config_parse_args(opts, n, 2, bools2, pos, 2, &np, err, sizeof(err)));
    CHECK(!c.mdns);
    CHECK_EQ(np, 0);

    char *bad1[] = {"--vnodes", "0"};
    CHECK_ERR(ppdb_config_parse_args(opts, n, 2, bad1, pos, 2, &np, err, sizeof(err)),
              PPDB_ERANGE);
    CHECK(strstr(err, "vnodes") != NULL);
    char *bad2[] = {"--nosuch=1"};
    CHECK_ERR(ppdb_config_parse_args(opts, n, 1, bad2, pos, 2, &np, err, sizeof(err)),
              PPDB_EINVAL);
    CHECK(strstr(err, "nosuch") != NULL);
    char *bad3[] = {"--listen"};
    CHECK_ERR(ppdb_config_parse_args(opts, n, 1, bad3, pos, 2, &np, err, sizeof(err)),
              PPDB_EINVAL);
    char *bad4[] = {"--mdns=maybe"};
    CHECK_ERR(ppdb_config_parse_args(opts, n, 1, bad4, pos, 2, &np, err, sizeof(err)),
              PPDB_EINVAL);

    f = fopen(path, "w");
    fputs("listen = 1\nthis line is wrong\n", f);
    fclose(f);
    CHECK_ERR(ppdb_config_load_file(opts, n, path, err, sizeof(err)), PPDB_EINVAL);
    CHECK(strstr(err, ":2:") != NULL);
    unlink(path);
    CHECK_ERR(ppdb_config_load_file(opts, n, path, err, sizeof(err)), PPDB_ENOENT);
    printf("config: all checks passed\n");
    return 0;
}
