/*
 * main_peer.c - the `ppdb-peer` command: run a node, or talk to one.
 *
 *   ppdb-peer keygen [--out FILE]       new cluster key (file 0600, or stdout)
 *   ppdb-peer id --data-dir DIR         the node id of a data directory
 *   ppdb-peer run [flags]               start a node (src/peer_run.c)
 *   ppdb-peer status|members [flags]    query a running node (src/peer_query.c)
 *
 * Exit codes (docs/operations.md): 0 success; 1 runtime error; 2 usage
 * error; 3 node unreachable; 4 authentication failed (wrong cluster key);
 * 5 not found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "peer_cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: ppdb-peer <command> [flags]\n\n"
               "commands:\n"
               "  run       start a node (ppdb-peer run --help)\n"
               "  status    show a running node's state\n"
               "  members   list the mesh as a running node sees it\n"
               "  keygen    write a new cluster key (--out FILE, or stdout)\n"
               "  id        print the node id kept in a data directory (--data-dir DIR)\n"
               "  version   print the version\n\n"
               "exit codes: 0 ok, 1 error, 2 usage, 3 unreachable, 4 authentication failed,\n"
               "            5 not found\n");
}

/* Randomness for key generation comes from a throwaway libuv env, the same
 * source a node uses, so there is one way keys are drawn. */
static int cmd_keygen(int argc, char **argv)
{
    char out_path[4096] = "";
    bool force = false;
    struct ppdb_opt opts[] = {
        {"out", PPDB_OPT_STR, out_path, sizeof(out_path), 0, 0, "write the key to FILE (0600)"},
        {"force", PPDB_OPT_BOOL, &force, 0, 0, 0, "overwrite FILE if it exists"},
    };
    int rc = ppdb_cli_parse(opts, PPDB_ARRAY_LEN(opts), argc, argv, "keygen");
    if (rc)
        return rc;
    if (out_path[0] && !force && access(out_path, F_OK) == 0)
        return ppdb_cli_fail(PPDB_CLI_USAGE, "%s exists: a mesh's key is not replaced silently "
                                             "(--force to overwrite)", out_path);
    uv_loop_t loop;
    struct ppdb_env_uv *envu;
    uint8_t key[PPDB_CLUSTER_KEY_LEN];
    char text[PPDB_CLUSTER_KEY_STRLEN];
    uv_loop_init(&loop);
    if (ppdb_wire_init() != 0 || ppdb_env_uv_new(&loop, NULL, NULL, &envu) != 0)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot initialise libsodium/libuv");
    ppdb_cluster_key_generate(ppdb_env_uv_env(envu), key);
    ppdb_env_uv_free(envu);
    uv_loop_close(&loop);
    if (out_path[0]) {
        uint32_t id = ppdb_cluster_key_id(key);
        rc = ppdb_cluster_key_save(out_path, key);
        sodium_memzero(key, sizeof(key));
        if (rc)
            return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot write %s: %s", out_path,
                                 ppdb_strerror(rc));
        fprintf(stderr, "wrote cluster key id %08x to %s\n", id, out_path);
        return 0;
    }
    printf("%s\n", ppdb_cluster_key_format(key, text));
    sodium_memzero(key, sizeof(key));
    sodium_memzero(text, sizeof(text));
    return 0;
}

static int cmd_id(int argc, char **argv)
{
    char dir[4096] = "", path[4200], hex[PPDB_NODE_ID_HEXLEN];
    struct ppdb_opt opts[] = {
        {"data-dir", PPDB_OPT_STR, dir, sizeof(dir), 0, 0, "the node's data directory"},
    };
    int rc = ppdb_cli_parse(opts, PPDB_ARRAY_LEN(opts), argc, argv, "id");
    if (rc)
        return rc;
    if (!dir[0])
        return ppdb_cli_fail(PPDB_CLI_USAGE, "id: --data-dir is required");
    struct ppdb_identity idn;
    snprintf(path, sizeof(path), "%s/%s", dir, PPDB_IDENTITY_FILE);
    if (ppdb_wire_init() != 0)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot initialise libsodium");
    if ((rc = ppdb_identity_load(path, &idn)) != 0)
        return ppdb_cli_fail(rc == PPDB_ENOENT ? PPDB_CLI_NOTFOUND : PPDB_CLI_ERROR,
                             "cannot load %s: %s", path, ppdb_strerror(rc));
    printf("%s\n", ppdb_node_id_hex(&idn.id, hex));
    ppdb_identity_wipe(&idn);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? PPDB_CLI_USAGE : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ppdb-peer %s (wire protocol %d)\n", PPDB_VERSION_STRING, PPDB_WIRE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(argc - 2, argv + 2);
    if (strcmp(cmd, "id") == 0)
        return cmd_id(argc - 2, argv + 2);
    if (strcmp(cmd, "run") == 0)
        return ppdb_cli_run(argc - 2, argv + 2);
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "members") == 0)
        return ppdb_cli_query(cmd, argc - 2, argv + 2);
    fprintf(stderr, "ppdb-peer: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return PPDB_CLI_USAGE;
}
