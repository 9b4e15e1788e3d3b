/*
 * peer_mdns.c - LAN discovery for `ppdb-peer run`: announce, browse, and
 * propose what is found to membership as join candidates.
 *
 * It lives with the binary, not in peer/, because it needs the libuv env's
 * discovery state for status; the node itself only ever sees
 * ppdb_node_add_seed. Invariants: a candidate is never this node (by id);
 * the status text is refreshed once a second from the env's state.
 */
#include <stdio.h>

#include "peer_mdns.h"

#define STATUS_TICK_MS 1000

static const char COMP[] = "mdns";

void ppdb_peer_mdns_options(struct ppdb_env_uv_options *o, uint32_t key_id)
{
    o->discovery = true;
    snprintf(o->discovery_match, sizeof(o->discovery_match), "%s=%08x", PPDB_SVC_TXT_KEY,
             (unsigned)key_id);
}

static void refresh_status(struct ppdb_peer_mdns *m)
{
    int st = ppdb_env_uv_discovery_state(m->envu);
    snprintf(m->status, sizeof(m->status), "mdns %s, %llu candidate(s)",
             ppdb_discovery_state_name(st), (unsigned long long)m->candidates);
}

static void tick_cb(struct ppdb_timer *t)
{
    struct ppdb_peer_mdns *m = t->data;
    refresh_status(m);
    (void)ppdb_env_timer_arm(m->env, &m->tick, STATUS_TICK_MS);
}

static void found_cb(void *data, const struct ppdb_service *svc, bool up)
{
    struct ppdb_peer_mdns *m = data;
    const char *id = ppdb_service_txt_get(svc, PPDB_SVC_TXT_ID);
    char addr[PPDB_ADDR_STRLEN];
    if (!m->node || !id || strcmp(id, m->self_id) == 0)
        return;
    ppdb_addr_format(&svc->addr, addr);
    if (!up) { /* a hint only: membership decides who is gone */
        PPDB_LOG(m->env->log, PPDB_LOG_DEBUG, COMP, "service withdrawn", "id=%.16s addr=%s", id,
                 addr);
        return;
    }
    int rc = ppdb_node_add_seed(m->node, &svc->addr);
    if (rc == 0)
        m->candidates++;
    else
        m->refused++;
    PPDB_LOG(m->env->log, rc ? PPDB_LOG_WARN : PPDB_LOG_INFO, COMP,
             rc ? "join candidate refused" : "join candidate found", "id=%.16s addr=%s rc=%d", id,
             addr, rc);
}

static int announce(struct ppdb_peer_mdns *m, uint32_t key_id)
{
    struct ppdb_service svc;
    struct ppdb_addr bound;
    char v[12], ck[12];
    memset(&svc, 0, sizeof(svc));
    int rc = ppdb_node_local_addr(m->node, &bound);
    if (rc)
        return rc;
    snprintf(svc.name, sizeof(svc.name), "ppdb-%.12s", m->self_id);
    svc.addr = bound;
    snprintf(v, sizeof(v), "%d", PPDB_WIRE_VERSION);
    snprintf(ck, sizeof(ck), "%08x", (unsigned)key_id);
    if ((rc = ppdb_service_txt_add(&svc, PPDB_SVC_TXT_ID, m->self_id)) != 0 ||
        (rc = ppdb_service_txt_add(&svc, PPDB_SVC_TXT_VERSION, v)) != 0 ||
        (rc = ppdb_service_txt_add(&svc, PPDB_SVC_TXT_KEY, ck)) != 0)
        return rc;
    return ppdb_env_announce(m->env, &svc);
}

int ppdb_peer_mdns_start(struct ppdb_peer_mdns *m, struct ppdb_env_uv *envu, struct ppdb_node *node,
                         uint32_t key_id)
{
    memset(m, 0, sizeof(*m));
    m->envu = envu;
    m->env = ppdb_env_uv_env(envu);
    m->node = node;
    ppdb_node_id_hex(ppdb_node_id(node), m->self_id);
    ppdb_timer_init(&m->tick, tick_cb, m);
    int rc = announce(m, key_id);
    if (rc == 0)
        rc = ppdb_env_browse(m->env, PPDB_SVC_TYPE, found_cb, m);
    refresh_status(m);
    if (rc == PPDB_EUNAVAIL)
        return 0; /* said once by the env; seeds only */
    if (rc)
        return rc;
    return ppdb_env_timer_arm(m->env, &m->tick, STATUS_TICK_MS);
}

void ppdb_peer_mdns_stop(struct ppdb_peer_mdns *m)
{
    if (!m->node)
        return;
    ppdb_env_timer_cancel(m->env, &m->tick);
    ppdb_env_withdraw(m->env);
    m->node = NULL; /* the browse lasts as long as the env */
}
