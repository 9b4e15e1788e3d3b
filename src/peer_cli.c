/*
 * peer_cli.c - flag parsing, errors and key loading shared by the
 * `ppdb-peer` subcommands.
 */
#include <stdio.h>
#include <stdlib.h>

#include "peer_cli.h"

int ppdb_cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("ppdb-peer: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int ppdb_cli_parse(const struct ppdb_opt *opts, size_t n, int argc, char **argv, const char *cmd)
{
    char err[PPDB_CONFIG_ERR_MAX];
    const char *pos[1];
    size_t np;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: ppdb-peer %s [flags]\n\nflags (also valid as `key = value` lines of "
                   "--config FILE):\n",
                   cmd);
            ppdb_config_usage(opts, n, stdout);
            printf("  --%-22s %s\n", "config", "read flags from FILE first");
            exit(0);
        }
    }
    const char *cfg = ppdb_config_find_flag(argc, argv, "config");
    if (cfg && ppdb_config_load_file(opts, n, cfg, err, sizeof(err)) != 0)
        return ppdb_cli_fail(PPDB_CLI_USAGE, "%s", err);
    if (ppdb_config_parse_args(opts, n, argc, argv, pos, 0, &np, err, sizeof(err)) != 0)
        return ppdb_cli_fail(PPDB_CLI_USAGE, "%s: %s", cmd, err);
    return 0;
}

static int install_key(struct ppdb_keyring *kr, const uint8_t key[PPDB_CLUSTER_KEY_LEN],
                       bool primary)
{
    uint32_t id;
    int rc = ppdb_keyring_install(kr, key, &id);
    if (rc == 0 && primary)
        rc = ppdb_keyring_use(kr, id);
    return rc;
}

/* key_files is a comma list: the first key seals (primary), every key opens.
 * That is how a mesh rotates keys without downtime (docs/operations.md). */
int ppdb_cli_load_key(struct ppdb_keyring *kr, const char *key_files)
{
    uint8_t key[PPDB_CLUSTER_KEY_LEN];
    char list[4096];
    int rc = 0, n = 0;
    if (!key_files || !key_files[0]) {
        rc = ppdb_cluster_key_from_environ(key);
        if (rc == 0)
            rc = install_key(kr, key, true);
        sodium_memzero(key, sizeof(key));
        return rc == PPDB_ENOTFOUND ? PPDB_ENOKEY : rc;
    }
    snprintf(list, sizeof(list), "%s", key_files);
    for (char *save = NULL, *f = strtok_r(list, ",", &save); f && rc == 0;
         f = strtok_r(NULL, ",", &save), n++) {
        rc = ppdb_cluster_key_load(f, key);
        if (rc == 0)
            rc = install_key(kr, key, n == 0);
        if (rc)
            fprintf(stderr, "ppdb-peer: cluster key file %s: %s\n", f, ppdb_strerror(rc));
    }
    sodium_memzero(key, sizeof(key));
    return rc;
}
