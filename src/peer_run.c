/*
 * peer_run.c - `ppdb-peer run`: a node on the libuv loop.
 *
 * Start-up order: flags and config file; data directory (0700) and the
 * node's identity in it (made on first start); the cluster key (a node with
 * no key refuses to start unless --insecure is given, and then says so at
 * start and in status); the node with its admin queries; LAN discovery when
 * asked for. SIGINT/SIGTERM announce a graceful leave, wait for it to spread,
 * then exit 0; a second signal exits at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <uv.h>

#include "admin.h"
#include "peer_cli.h"
#include "peer_mdns.h"
#include "ppdb_peer.h"

struct run_cfg {
    char data_dir[2048];
    char listen[PPDB_ADDR_STRLEN];
    char seeds[PPDB_NODE_MAX_SEEDS * PPDB_ADDR_STRLEN];
    char key_file[2048];
    char log_level[16];
    char profile[32];
    char tags[PPDB_NODE_MAX_TAGS * PPDB_NODE_TAG_LEN];
    bool insecure;
    bool mdns;
};

struct run_state {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct ppdb_env_uv *envu;
    struct ppdb_env *env;
    struct ppdb_identity idn;
    struct ppdb_keyring kr;
    struct ppdb_node *node;
    struct ppdb_admin admin;
    struct ppdb_peer_mdns mdns;
    int signals;
    int exit_code;
};

static size_t run_opts(struct run_cfg *c, struct ppdb_opt *o)
{
    const struct ppdb_opt t[] = {
        {"data-dir", PPDB_OPT_STR, c->data_dir, sizeof(c->data_dir), 0, 0,
         "directory for the node's identity and data (default ./ppdb-data)"},
        {"listen", PPDB_OPT_STR, c->listen, sizeof(c->listen), 0, 0,
         "UDP and TCP address (default 127.0.0.1:7400)"},
        {"seed", PPDB_OPT_LIST, c->seeds, sizeof(c->seeds), 0, 0,
         "address of a node to join through (repeat, or comma-separate)"},
        {"cluster-key-file", PPDB_OPT_LIST, c->key_file, sizeof(c->key_file), 0, 0,
         "cluster key file; a comma list during rotation: the first seals, all open "
         "(else $PPDB_CLUSTER_KEY)"},
        {"insecure", PPDB_OPT_BOOL, &c->insecure, 0, 0, 0,
         "run with no cluster key (development only: anyone can join)"},
        {"mdns", PPDB_OPT_BOOL, &c->mdns, 0, 0, 0, "announce and browse on the LAN (default on)"},
        {"log-level", PPDB_OPT_STR, c->log_level, sizeof(c->log_level), 0, 0,
         "error, warn, info (default), debug or trace"},
        {"profile", PPDB_OPT_STR, c->profile, sizeof(c->profile), 0, 0,
         "membership parameter profile (default lan-default)"},
        {"tag", PPDB_OPT_LIST, c->tags, sizeof(c->tags), 0, 0, "key=value tag (repeatable)"},
    };
    memcpy(o, t, sizeof(t));
    return PPDB_ARRAY_LEN(t);
}

/* Splits a comma list into addresses. */
static int parse_seeds(const char *list, struct ppdb_node_config *nc)
{
    char buf[sizeof(((struct run_cfg *)0)->seeds)];
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *save = NULL, *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        if (nc->nseeds == PPDB_NODE_MAX_SEEDS)
            return ppdb_cli_fail(PPDB_CLI_USAGE, "at most %d seeds", PPDB_NODE_MAX_SEEDS);
        if (ppdb_addr_parse(s, &nc->seeds[nc->nseeds++]) != 0)
            return ppdb_cli_fail(PPDB_CLI_USAGE, "bad seed address '%s'", s);
    }
    return 0;
}

static int parse_tags(const char *list, struct ppdb_node_config *nc)
{
    char buf[sizeof(((struct run_cfg *)0)->tags)];
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *save = NULL, *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        if (nc->ntags == PPDB_NODE_MAX_TAGS || strlen(s) >= PPDB_NODE_TAG_LEN || !strchr(s, '='))
            return ppdb_cli_fail(PPDB_CLI_USAGE, "bad tag '%s' (key=value, at most %d)", s,
                                 PPDB_NODE_MAX_TAGS);
        snprintf(nc->tags[nc->ntags++], PPDB_NODE_TAG_LEN, "%s", s);
    }
    return 0;
}

static int node_config(const struct run_cfg *c, struct ppdb_node_config *nc)
{
    ppdb_node_config_default(nc);
    if (ppdb_addr_parse(c->listen, &nc->listen) != 0)
        return ppdb_cli_fail(PPDB_CLI_USAGE, "bad listen address '%s'", c->listen);
    snprintf(nc->profile, sizeof(nc->profile), "%s", c->profile);
    int rc = parse_seeds(c->seeds, nc);
    return rc ? rc : parse_tags(c->tags, nc);
}

static void left_cb(void *data, int status)
{
    struct run_state *rs = data;
    PPDB_LOG(ppdb_logger_default(), PPDB_LOG_INFO, "run", "left the mesh", "status=%d", status);
    uv_stop(&rs->loop);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct run_state *rs = h->data;
    if (rs->signals++ > 0 || ppdb_node_leave(rs->node, left_cb, rs) != 0) {
        uv_stop(&rs->loop);
        return;
    }
    PPDB_LOG(ppdb_logger_default(), PPDB_LOG_INFO, "run", "signal: leaving the mesh",
             "signal=%d", signum);
}

static int open_keys(struct run_state *rs, const struct run_cfg *c)
{
    ppdb_keyring_init(&rs->kr);
    int rc = ppdb_cli_load_key(&rs->kr, c->key_file);
    if (rc == PPDB_ENOKEY && c->insecure) {
        ppdb_keyring_set_insecure(&rs->kr, true, ppdb_logger_default());
        fprintf(stderr, "ppdb-peer: WARNING: running INSECURE: no cluster key, any host that "
                        "can reach this port can join and read the mesh\n");
        return 0;
    }
    if (rc == PPDB_ENOKEY)
        return ppdb_cli_fail(PPDB_CLI_USAGE,
                             "no cluster key: give --cluster-key-file FILE or set %s (make one "
                             "with `ppdb-peer keygen`), or --insecure for development",
                             PPDB_CLUSTER_KEY_ENV);
    if (rc)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot load the cluster key: %s",
                             ppdb_strerror(rc));
    return 0;
}

static int open_identity(struct run_state *rs, const struct run_cfg *c)
{
    bool created = false;
    char hex[PPDB_NODE_ID_HEXLEN];
    if (mkdir(c->data_dir, 0700) != 0 && errno != EEXIST)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot create %s: %s", c->data_dir,
                             strerror(errno));
    int rc = ppdb_identity_load_or_create(c->data_dir, rs->env, &rs->idn, &created);
    if (rc)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "identity in %s: %s", c->data_dir,
                             ppdb_strerror(rc));
    PPDB_LOG(ppdb_logger_default(), PPDB_LOG_INFO, "run",
             created ? "new identity" : "identity loaded", "id=%s dir=%s",
             ppdb_node_id_hex(&rs->idn.id, hex), c->data_dir);
    return 0;
}

static int start_node(struct run_state *rs, const struct run_cfg *c)
{
    struct ppdb_node_config nc;
    struct ppdb_addr bound;
    char hex[PPDB_NODE_ID_HEXLEN], text[PPDB_ADDR_STRLEN];
    int rc = node_config(c, &nc);
    if (rc)
        return rc;
    if ((rc = ppdb_node_new(rs->env, &rs->idn, &rs->kr, &nc, &rs->node)) != 0)
        return ppdb_cli_fail(rc == PPDB_EADDRINUSE ? PPDB_CLI_ERROR : PPDB_CLI_USAGE,
                             "cannot start the node on %s: %s", c->listen, ppdb_strerror(rc));
    const struct ppdb_wire_key *primary = ppdb_keyring_primary(&rs->kr);
    struct ppdb_admin_info info = {
        .version = PPDB_VERSION_STRING,
        .discovery = c->mdns ? rs->mdns.status : "off",
        .key_id = primary ? primary->id : 0,
        .insecure = ppdb_keyring_insecure(&rs->kr),
    };
    if ((rc = ppdb_admin_attach(&rs->admin, rs->node, &info)) != 0 ||
        (rc = ppdb_node_start(rs->node)) != 0)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot start the node: %s", ppdb_strerror(rc));
    if (c->mdns && (rc = ppdb_peer_mdns_start(&rs->mdns, rs->envu, rs->node,
                                              primary ? primary->id : PPDB_KEY_ID_NONE)) != 0)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot start LAN discovery: %s",
                             ppdb_strerror(rc));
    ppdb_node_local_addr(rs->node, &bound);
    printf("ppdb-peer: node %s listening on %s (%s), %u seed(s)\n",
           ppdb_node_id_hex(&rs->idn.id, hex), ppdb_addr_format(&bound, text),
           info.insecure ? "INSECURE" : "cluster key", nc.nseeds);
    fflush(stdout);
    return 0;
}

static void drain_guard_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* The node closes its streams asynchronously: run the loop until nothing but
 * the env's own handles is left (bounded by a 2 s guard), then free the env. */
static void stop_all(struct run_state *rs)
{
    uv_timer_t guard;
    ppdb_peer_mdns_stop(&rs->mdns);
    if (rs->node)
        ppdb_node_free(rs->node);
    uv_close((uv_handle_t *)&rs->sigint, NULL);
    uv_close((uv_handle_t *)&rs->sigterm, NULL);
    uv_timer_init(&rs->loop, &guard);
    uv_timer_start(&guard, drain_guard_cb, 2000, 0);
    uv_unref((uv_handle_t *)&guard);
    uv_run(&rs->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    if (rs->envu)
        ppdb_env_uv_free(rs->envu);
    uv_run(&rs->loop, UV_RUN_DEFAULT);
    uv_loop_close(&rs->loop);
    ppdb_keyring_deinit(&rs->kr);
    ppdb_identity_wipe(&rs->idn);
}

int ppdb_cli_run(int argc, char **argv)
{
    struct run_cfg c = {.data_dir = "./ppdb-data", .listen = "127.0.0.1:7400",
                        .log_level = "info", .profile = "lan-default", .mdns = true};
    struct ppdb_opt opts[16];
    size_t n = run_opts(&c, opts);
    int rc = ppdb_cli_parse(opts, n, argc, argv, "run");
    if (rc)
        return rc;
    if (ppdb_log_level_parse(c.log_level, &ppdb_logger_default()->level) != 0)
        return ppdb_cli_fail(PPDB_CLI_USAGE, "bad --log-level '%s'", c.log_level);
    if (ppdb_wire_init() != 0)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot initialise libsodium");

    struct run_state rs = {0};
    uv_loop_init(&rs.loop);
    uv_signal_init(&rs.loop, &rs.sigint);
    uv_signal_init(&rs.loop, &rs.sigterm);
    rs.sigint.data = rs.sigterm.data = &rs;
    /* Keys first: discovery filters the LAN on the cluster key id. */
    struct ppdb_env_uv_options eo;
    ppdb_env_uv_options_default(&eo);
    if ((rc = open_keys(&rs, &c)) != 0)
        goto out;
    if (c.mdns) {
        const struct ppdb_wire_key *primary = ppdb_keyring_primary(&rs.kr);
        ppdb_peer_mdns_options(&eo, primary ? primary->id : PPDB_KEY_ID_NONE);
    }
    if (ppdb_env_uv_new(&rs.loop, &eo, ppdb_logger_default(), &rs.envu) != 0) {
        rc = ppdb_cli_fail(PPDB_CLI_ERROR, "cannot create the event loop env");
        goto out;
    }
    rs.env = ppdb_env_uv_env(rs.envu);
    if ((rc = open_identity(&rs, &c)) != 0 ||
        (rc = start_node(&rs, &c)) != 0)
        goto out;
    uv_signal_start(&rs.sigint, signal_cb, SIGINT);
    uv_signal_start(&rs.sigterm, signal_cb, SIGTERM);
    uv_run(&rs.loop, UV_RUN_DEFAULT);
out:
    stop_all(&rs);
    return rc;
}
