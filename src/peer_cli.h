/*
 * peer_cli.h - pieces shared by the `ppdb-peer` subcommands (src/main_peer.c,
 * src/peer_run.c, src/peer_query.c). Private to the binary.
 */
#ifndef PPDB_PEER_CLI_H
#define PPDB_PEER_CLI_H

#include <sodium.h>

#include "ppdb_base.h"
#include "ppdb_config.h"
#include "ppdb_env.h"
#include "ppdb_wire.h"

#define PPDB_VERSION_STRING "0.1.0"

/* Exit codes, documented in docs/operations.md and `ppdb-peer --help`. */
enum ppdb_cli_exit {
    PPDB_CLI_OK = 0,
    PPDB_CLI_ERROR = 1,
    PPDB_CLI_USAGE = 2,
    PPDB_CLI_UNREACHABLE = 3,
    PPDB_CLI_AUTH = 4,
    PPDB_CLI_NOTFOUND = 5
};

/* Parses flags (and `--config FILE` first, so flags win over the file);
 * prints usage for --help. Returns 0, or an exit code to return with
 * (-1 after --help means "exit 0"). */
int ppdb_cli_parse(const struct ppdb_opt *opts, size_t n, int argc, char **argv,
                   const char *cmd);
/* Prints "ppdb-peer: <message>" to stderr and returns code. */
int ppdb_cli_fail(int code, const char *fmt, ...) PPDB_PRINTF(2, 3);

/* Loads cluster keys into kr from key_files (a comma list: the first is the
 * primary, which seals; all open), else from $PPDB_CLUSTER_KEY. PPDB_ENOKEY
 * when neither is given. */
int ppdb_cli_load_key(struct ppdb_keyring *kr, const char *key_files);

int ppdb_cli_run(int argc, char **argv);
int ppdb_cli_query(const char *cmd, int argc, char **argv);

#endif /* PPDB_PEER_CLI_H */
