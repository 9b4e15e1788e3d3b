/*
 * peer_query.c - `ppdb-peer status` and `ppdb-peer members`: ask a running
 * node over an encrypted stream, as a client.
 *
 * The CLI makes a throwaway identity for each run, proves the cluster key in
 * the Noise handshake (role "client": it never enters membership), sends
 * admin requests and prints the replies: a table by default, or with --json
 * one JSON document with a "schema" version. Members are fetched in pages.
 * Exit codes: 0 ok, 2 usage, 3 unreachable (refused, timed out), 4 the node
 * refused our cluster key, 1 anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "admin.h"
#include "peer_cli.h"
#include "ppdb_stream.h"

#define QUERY_JSON_SCHEMA 1
#define QUERY_MAX_PAGES 1000 /* 512,000 members: far above any table bound */

struct query_cfg {
    char node[PPDB_ADDR_STRLEN];
    char key_file[2048];
    uint64_t timeout_ms;
    bool json;
    bool insecure;
};

struct query {
    uv_loop_t loop;
    struct ppdb_env_uv *envu;
    struct ppdb_env *env;
    struct ppdb_identity idn;
    struct ppdb_keyring kr;
    struct ppdb_wire_registry reg;
    struct ppdb_stream_ep ep;
    bool ep_live;
    struct ppdb_addr addr;
    struct query_cfg cfg;
    bool members;      /* which command */
    uint64_t offset;   /* next members page */
    uint64_t total;
    uint32_t pages;
    uint32_t printed;
    int status;        /* PPDB_E* of the exchange */
    bool done;
};

static int exit_code_for(int status)
{
    switch (status) {
    case 0:
        return PPDB_CLI_OK;
    case PPDB_ECONNREFUSED:
    case PPDB_ETIMEDOUT:
    case PPDB_ECONNRESET:
        return PPDB_CLI_UNREACHABLE;
    case PPDB_EAUTH:
    case PPDB_ENOKEY:
        return PPDB_CLI_AUTH;
    default:
        return PPDB_CLI_ERROR;
    }
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_status(const struct query *q, const struct ppdb_admin_status *s)
{
    char hex[PPDB_NODE_ID_HEXLEN];
    ppdb_node_id_hex(&s->id, hex);
    if (q->cfg.json) {
        printf("{\"schema\":%d,\"id\":\"%s\",\"addr\":", QUERY_JSON_SCHEMA, hex);
        json_str(s->addr);
        printf(",\"state\":\"%s\",\"incarnation\":%llu,\"members\":{\"alive\":%llu,"
               "\"suspect\":%llu,\"dead\":%llu,\"left\":%llu},\"health\":%llu,\"profile\":",
               ppdb_member_state_name((int)s->state), (unsigned long long)s->incarnation,
               (unsigned long long)s->counts[0], (unsigned long long)s->counts[1],
               (unsigned long long)s->counts[2], (unsigned long long)s->counts[3],
               (unsigned long long)s->health);
        json_str(s->profile);
        printf(",\"insecure\":%s,\"key_id\":\"%08x\",\"uptime_ms\":%llu,\"version\":",
               s->insecure ? "true" : "false", s->key_id, (unsigned long long)s->uptime_ms);
        json_str(s->version);
        printf(",\"wire_version\":%u,\"discovery\":", s->wire_version);
        json_str(s->discovery);
        printf(",\"datagrams_rejected\":%llu,\"streams_rejected\":%llu,"
               "\"bytes_per_member\":%llu}\n",
               (unsigned long long)s->dgram_rejected, (unsigned long long)s->stream_rejected,
               (unsigned long long)s->bytes_per_member);
        return;
    }
    printf("node        %s\naddress     %s\nstate       %s (incarnation %llu)\n"
           "members     %llu alive, %llu suspect, %llu dead, %llu left\n"
           "health      %llu (0 = healthy)\nprofile     %s\nsecurity    %s",
           hex, s->addr, ppdb_member_state_name((int)s->state),
           (unsigned long long)s->incarnation, (unsigned long long)s->counts[0],
           (unsigned long long)s->counts[1], (unsigned long long)s->counts[2],
           (unsigned long long)s->counts[3], (unsigned long long)s->health, s->profile,
           s->insecure ? "INSECURE (no cluster key)" : "cluster key");
    if (s->key_id)
        printf(" %08x", s->key_id);
    printf("\ndiscovery   %s\nuptime      %.1f s\nversion     %s (wire %u)\n"
           "rejected    %llu datagrams, %llu streams\n",
           s->discovery, (double)s->uptime_ms / 1000.0, s->version, s->wire_version,
           (unsigned long long)s->dgram_rejected, (unsigned long long)s->stream_rejected);
}

static void print_member(void *data, const struct ppdb_admin_member *m)
{
    struct query *q = data;
    char hex[PPDB_NODE_ID_HEXLEN];
    ppdb_node_id_hex(&m->id, hex);
    if (q->cfg.json) {
        printf("%s{\"id\":\"%s\",\"addr\":", q->printed ? "," : "", hex);
        json_str(m->addr);
        printf(",\"state\":\"%s\",\"incarnation\":%llu,\"version\":%u,\"state_age_ms\":%llu,"
               "\"rtt_ms\":%u,\"self\":%s,\"tags\":[",
               ppdb_member_state_name((int)m->state), (unsigned long long)m->incarnation,
               m->version, (unsigned long long)m->state_age_ms, m->rtt_ms,
               m->self ? "true" : "false");
        for (uint32_t i = 0; i < m->ntags; i++) {
            printf(i ? "," : "");
            json_str(m->tags[i]);
        }
        printf("],\"clients\":[");
        for (uint32_t i = 0; i < m->nclients; i++) {
            printf(i ? "," : "");
            json_str(m->clients[i]);
        }
        printf("]}");
    } else {
        char rtt[16] = "-";
        if (m->rtt_ms)
            snprintf(rtt, sizeof(rtt), "%ums", m->rtt_ms);
        printf("%-8s %s  %-21s %12llu %9.1fs %6s %7u  ", ppdb_member_state_name((int)m->state),
               hex, m->addr, (unsigned long long)m->incarnation,
               (double)m->state_age_ms / 1000.0, m->self ? "" : rtt, m->version);
        for (uint32_t i = 0; i < m->ntags; i++)
            printf("%s%s", i ? "," : "", m->tags[i]);
        printf("%s\n", m->self ? (m->ntags ? " (this node)" : "(this node)") : "");
    }
    q->printed++;
}

static int send_next(struct query *q);

static void finish(struct query *q, int status)
{
    q->status = status;
    q->done = true;
    ppdb_stream_ep_close(&q->ep);
}

static void reply_cb(void *data, int status, const struct ppdb_envelope *reply)
{
    struct query *q = data;
    uint32_t count = 0;
    if (status != 0) {
        finish(q, status);
        return;
    }
    if (reply->hdr.type == PPDB_MSG_ERROR) {
        finish(q, PPDB_EPROTO);
        return;
    }
    if (!q->members) {
        struct ppdb_admin_status st;
        status = ppdb_admin_decode_status(reply, &st);
        if (status == 0)
            print_status(q, &st);
        finish(q, status);
        return;
    }
    if (q->pages == 0 && q->cfg.json)
        printf("{\"schema\":%d,\"members\":[", QUERY_JSON_SCHEMA);
    else if (q->pages == 0)
        printf("%-8s %-40s  %-21s %12s %10s %6s %7s  %s\n", "STATE", "ID", "ADDRESS",
               "INCARNATION", "SINCE", "RTT", "VERSION", "TAGS");
    status = ppdb_admin_decode_members(reply, &q->total, &count, print_member, q);
    q->pages++;
    q->offset += count;
    if (status == 0 && count > 0 && q->offset < q->total && q->pages < QUERY_MAX_PAGES)
        status = send_next(q);
    else if (status == 0 && q->cfg.json)
        printf("],\"total\":%llu}\n", (unsigned long long)q->total);
    if (status != 0 || q->offset >= q->total || count == 0 || q->pages >= QUERY_MAX_PAGES)
        finish(q, status);
}

static int send_next(struct query *q)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    uint32_t type = q->members ? PPDB_MSG_ADMIN_MEMBERS : PPDB_MSG_ADMIN_STATUS;
    int rc = q->members ? ppdb_admin_encode_members_req(&b, q->offset, PPDB_ADMIN_PAGE_MAX) : 0;
    if (rc == 0)
        rc = ppdb_stream_request(&q->ep, &q->addr, type, b.data, b.len,
                                 (uint32_t)q->cfg.timeout_ms, reply_cb, q, NULL);
    ppdb_buf_deinit(&b);
    return rc;
}

static int setup(struct query *q)
{
    struct ppdb_stream_options so;
    int rc = ppdb_cli_load_key(&q->kr, q->cfg.key_file);
    if (rc == PPDB_ENOKEY && q->cfg.insecure)
        ppdb_keyring_set_insecure(&q->kr, true, NULL);
    else if (rc == PPDB_ENOKEY)
        return ppdb_cli_fail(PPDB_CLI_USAGE, "no cluster key: give --cluster-key-file FILE or "
                                             "set %s (or --insecure for an insecure node)",
                             PPDB_CLUSTER_KEY_ENV);
    else if (rc)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot load the cluster key: %s",
                             ppdb_strerror(rc));
    if ((rc = ppdb_identity_generate(&q->idn, q->env)) != 0)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot make a client key: %s", ppdb_strerror(rc));
    ppdb_wire_registry_init(&q->reg);
    ppdb_admin_register_replies(&q->reg);
    ppdb_stream_options_default(&so);
    so.role = PPDB_ROLE_CLIENT;
    so.handshake_timeout_ms = (uint32_t)q->cfg.timeout_ms;
    so.request_timeout_ms = (uint32_t)q->cfg.timeout_ms;
    if ((rc = ppdb_stream_ep_init(&q->ep, q->env, &q->idn, &q->kr, &q->reg, &so, NULL, NULL,
                                  q)) != 0)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot open a stream endpoint: %s",
                             ppdb_strerror(rc));
    q->ep_live = true;
    return 0;
}

static void teardown(struct query *q)
{
    if (q->ep_live) {
        ppdb_stream_ep_close(&q->ep);
        while (!ppdb_stream_ep_idle(&q->ep) && uv_run(&q->loop, UV_RUN_ONCE))
            ;
        ppdb_stream_ep_deinit(&q->ep);
    }
    if (q->envu)
        ppdb_env_uv_free(q->envu);
    uv_run(&q->loop, UV_RUN_DEFAULT);
    uv_loop_close(&q->loop);
    ppdb_keyring_deinit(&q->kr);
    ppdb_identity_wipe(&q->idn);
}

int ppdb_cli_query(const char *cmd, int argc, char **argv)
{
    struct query q = {.members = strcmp(cmd, "members") == 0};
    struct query_cfg *c = &q.cfg;
    snprintf(c->node, sizeof(c->node), "127.0.0.1:7400");
    c->timeout_ms = 3000;
    struct ppdb_opt opts[] = {
        {"node", PPDB_OPT_STR, c->node, sizeof(c->node), 0, 0,
         "address of the node to ask (default 127.0.0.1:7400)"},
        {"cluster-key-file", PPDB_OPT_STR, c->key_file, sizeof(c->key_file), 0, 0,
         "file with the cluster key (else $PPDB_CLUSTER_KEY)"},
        {"insecure", PPDB_OPT_BOOL, &c->insecure, 0, 0, 0, "talk to an insecure node"},
        {"json", PPDB_OPT_BOOL, &c->json, 0, 0, 0, "print JSON (with a \"schema\" version)"},
        {"timeout-ms", PPDB_OPT_U64, &c->timeout_ms, 0, 1, 600000,
         "connect, handshake and reply timeout (default 3000)"},
    };
    int rc = ppdb_cli_parse(opts, PPDB_ARRAY_LEN(opts), argc, argv, cmd);
    if (rc)
        return rc;
    if (ppdb_addr_parse(c->node, &q.addr) != 0)
        return ppdb_cli_fail(PPDB_CLI_USAGE, "bad --node address '%s'", c->node);
    ppdb_logger_default()->level = PPDB_LOG_ERROR;
    if (ppdb_wire_init() != 0)
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot initialise libsodium");
    ppdb_keyring_init(&q.kr);
    uv_loop_init(&q.loop);
    if (ppdb_env_uv_new(&q.loop, NULL, NULL, &q.envu) != 0) {
        teardown(&q);
        return ppdb_cli_fail(PPDB_CLI_ERROR, "cannot create the event loop env");
    }
    q.env = ppdb_env_uv_env(q.envu);
    if ((rc = setup(&q)) != 0 || (rc = send_next(&q)) != 0) {
        teardown(&q);
        return rc > 0 ? rc : ppdb_cli_fail(PPDB_CLI_ERROR, "%s", ppdb_strerror(rc));
    }
    while (!q.done && uv_run(&q.loop, UV_RUN_ONCE))
        ;
    teardown(&q);
    if (q.status != 0)
        return ppdb_cli_fail(exit_code_for(q.status), "%s %s: %s", cmd, c->node,
                             ppdb_strerror(q.status));
    return 0;
}
