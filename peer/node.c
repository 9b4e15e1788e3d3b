/*
 * node.c - a PPDB node: identity, keyring, registry, one sealed UDP socket,
 * a stream service on the same port, and SWIM membership, on one env.
 *
 * Datagrams: every packet on the socket is opened by one struct ppdb_dgram
 * (authenticated, replay-checked, schema-checked) and handed to the module
 * whose type range holds it (a table of ranges: adding a module is one
 * ppdb_node_register_dgram call). PPDB_MSG_PING is answered here.
 *
 * Streams: one encrypted endpoint (src/ppdb_stream.h, role NODE) listens
 * on the same port number; requests are dispatched by type range the same
 * way (ppdb_node_serve) and answered with ppdb_node_reply. SWIM's push/pull
 * is one such service, and also a client of the endpoint (sync_request ->
 * ppdb_stream_request). A CLIENT-role peer (the CLI) reaches the admin
 * range only: a client must never push membership state.
 *
 * Invariants: module ranges never overlap within a table; every handle the
 * node opened is closed by ppdb_node_free. The endpoint may outlive the
 * node by the time its closing connections take to release their memory
 * (env callbacks). On a crashed simulated env no callback comes any more:
 * ppdb_node_drop reclaims everything at once instead, as an OS reclaims a
 * dead process (ppdb_stream_ep_drop; pending requests vanish silently).
 */
#include "node_int.h"

/* Streams this node opened are closed after this long idle: a push/pull
 * with a random member or a seed is seldom worth keeping, and a seed
 * answering a burst of joins holds each join's connection only this long
 * (at most max_stream_conns at once; the joiner closes it). The one
 * exception is the stream to the delta-sync parent, kept open between
 * its backed-off exchanges (ppdb_stream_ep_keep): a handshake per
 * exchange was most of a large mesh's steady-state CPU. */
#define NODE_STREAM_IDLE_MS 3000
/* Streams a peer opened are closed after this long idle, so a child's kept
 * stream outlives its longest delta interval (the cap, +25% jitter); the
 * peer closes every other one after NODE_STREAM_IDLE_MS. */
#define NODE_STREAM_INBOUND_IDLE_MS (2 * PPDB_SWIM_DELTA_CAP_MS)

void ppdb_node_config_default(struct ppdb_node_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->profile, sizeof(c->profile), "lan-default");
    ppdb_dgram_options_default(&c->dgram);
    c->max_modules = 16;
    c->max_stream_conns = 256;
    c->max_stream_bytes = 4u << 20;
}

/* ------------------------------------------------------------ modules */

static int add_range(struct ppdb_node *n, struct node_module *tab, uint32_t *count, uint32_t first,
                     uint32_t last, const struct ppdb_wire_schema *schemas, uint32_t nschemas,
                     void *cb, void *data)
{
    if (first > last || last > 0xFF)
        return PPDB_ERANGE;
    for (uint32_t i = 0; i < *count; i++)
        if (!(last < tab[i].first || first > tab[i].last))
            return PPDB_EEXIST;
    if (*count == n->cfg.max_modules)
        return PPDB_ELIMIT;
    for (uint32_t i = 0; i < nschemas; i++)
        if (schemas[i].type < first || schemas[i].type > last)
            return PPDB_ERANGE;
    for (uint32_t i = 0; i < nschemas; i++) {
        int rc = ppdb_wire_registry_add(&n->reg, &schemas[i]);
        if (rc && rc != PPDB_EEXIST)
            return rc;
    }
    tab[*count] = (struct node_module){.first = first, .last = last, .cb = cb, .data = data};
    (*count)++;
    return 0;
}

int ppdb_node_register_dgram(struct ppdb_node *n, uint32_t first, uint32_t last,
                             const struct ppdb_wire_schema *schemas, uint32_t nschemas,
                             ppdb_node_dgram_cb cb, void *data)
{
    return add_range(n, n->dgram_mods, &n->ndgram_mods, first, last, schemas, nschemas, (void *)cb,
                     data);
}

int ppdb_node_serve(struct ppdb_node *n, uint32_t first, uint32_t last,
                    const struct ppdb_wire_schema *schemas, uint32_t nschemas,
                    ppdb_node_request_cb cb, void *data)
{
    return add_range(n, n->stream_mods, &n->nstream_mods, first, last, schemas, nschemas,
                     (void *)cb, data);
}

const struct node_module *node_module_find(const struct node_module *tab, uint32_t count,
                                           uint32_t type)
{
    for (uint32_t i = 0; i < count; i++)
        if (type >= tab[i].first && type <= tab[i].last)
            return &tab[i];
    return NULL;
}

/* ------------------------------------------------------------ datagrams */

int ppdb_node_send(struct ppdb_node *n, const struct ppdb_addr *to, uint32_t type,
                   uint64_t request_id, const uint8_t *body, size_t body_len)
{
    uint8_t pkt[PPDB_DGRAM_MAX];
    size_t len;
    int rc = ppdb_dgram_seal_msg(&n->dg, type, request_id, body, body_len, pkt, &len);
    if (rc == 0)
        rc = ppdb_env_udp_send(n->env, n->udp, to, pkt, len);
    if (rc == 0) {
        n->stats.dgrams_out++;
        n->stats.dgram_bytes_out += len;
    }
    return rc;
}

static void answer_ping(struct ppdb_node *n, const struct ppdb_addr *from,
                        const struct ppdb_envelope *e)
{
    const uint8_t *p = NULL;
    size_t len = 0;
    uint8_t body[PPDB_DGRAM_MAX];
    struct ppdb_buf b = {.data = body, .len = 0, .cap = sizeof(body)};
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, &b);
    bool has = ppdb_mp_get_bin(e->body, 0, &p, &len) == 0;
    ppdb_mpw_map(&w, has ? 1 : 0);
    if (has) {
        ppdb_mpw_uint(&w, 0);
        ppdb_mpw_bin(&w, p, len);
    }
    if (ppdb_mpw_error(&w) == 0 && b.data == body &&
        ppdb_node_send(n, from, PPDB_MSG_PONG, e->hdr.request_id, b.data, b.len) == 0)
        n->stats.pings_answered++;
}

static void udp_recv_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                        const uint8_t *buf, size_t len)
{
    struct ppdb_node *n = data;
    (void)u;
    n->stats.dgrams_in++;
    n->stats.dgram_bytes_in += len;
    struct ppdb_dgram_msg *m = &n->rx;
    if (ppdb_dgram_open(&n->dg, buf, len, m) != 0)
        return; /* counted by the dgram layer under its reason */
    const struct ppdb_envelope *e = &m->env;
    if (e->hdr.type == PPDB_MSG_PING) {
        answer_ping(n, from, e);
    } else {
        const struct node_module *mod =
            node_module_find(n->dgram_mods, n->ndgram_mods, e->hdr.type);
        if (mod)
            ((ppdb_node_dgram_cb)mod->cb)(mod->data, from, e);
        else
            n->stats.unrouted++;
    }
    ppdb_dgram_msg_deinit(m);
}

/* ------------------------------------------------------------ streams */

static bool client_may_send(uint32_t type)
{
    return type >= PPDB_MSG_ADMIN_FIRST && type <= PPDB_MSG_ADMIN_LAST;
}

static void reply_error(struct ppdb_node *n, uint64_t conn_id, uint64_t request_id, int code)
{
    uint8_t body[32];
    struct ppdb_buf b = {.data = body, .len = 0, .cap = sizeof(body)};
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, &b);
    ppdb_mpw_map(&w, 1);
    ppdb_mpw_uint(&w, 0);
    ppdb_mpw_int(&w, code);
    PPDB_ASSERT(ppdb_mpw_error(&w) == 0 && b.data == body);
    (void)ppdb_stream_reply(&n->sep->ep, conn_id, request_id, PPDB_MSG_ERROR, b.data, b.len);
}

/* Every message of every connection: requests go to the module serving
 * their type; one-way messages have no taker yet (counted unrouted). */
static void stream_msg_cb(void *data, const struct ppdb_stream_peer *peer,
                          const struct ppdb_envelope *msg)
{
    struct ppdb_node *n = data;
    uint32_t type = msg->hdr.type;
    uint64_t rid = msg->hdr.request_id;
    const struct node_module *mod = node_module_find(n->stream_mods, n->nstream_mods, type);
    int code = PPDB_ENOTFOUND;
    if (peer->role != PPDB_ROLE_NODE && !client_may_send(type)) {
        n->stats.client_refused++;
        mod = NULL;
        code = PPDB_EPERM;
    } else if (!mod || rid == 0) {
        n->stats.unrouted++;
        mod = NULL;
    }
    if (!mod) {
        if (rid != 0)
            reply_error(n, peer->conn_id, rid, code);
        return;
    }
    struct ppdb_node_req req = {
        .conn_id = peer->conn_id, .request_id = rid, .peer = peer->id, .peer_addr = peer->addr};
    n->stats.requests_served++;
    ((ppdb_node_request_cb)mod->cb)(mod->data, &req, msg);
}

int ppdb_node_reply(struct ppdb_node *n, const struct ppdb_node_req *req, uint32_t type,
                    const uint8_t *body, size_t body_len)
{
    return ppdb_stream_reply(&n->sep->ep, req->conn_id, req->request_id, type, body, body_len);
}

/* One outgoing request in flight (push/pull is rare: one allocation each). */
struct node_call {
    struct node_call *prev, *next; /* n->calls */
    struct ppdb_node *n;
    uint32_t reply_type;
    ppdb_swim_sync_done_cb cb;
    void *cb_data;
};

static void call_unlink(struct node_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->n->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void call_reply_cb(void *data, int status, const struct ppdb_envelope *reply)
{
    struct node_call c = *(struct node_call *)data;
    call_unlink(data);
    ppdb_free(data);
    if (c.n->freeing)
        return; /* the endpoint is closing under a node being freed */
    if (status == 0 && reply->hdr.type != c.reply_type)
        status = PPDB_EPROTO; /* PPDB_MSG_ERROR or a wrong type */
    c.cb(c.cb_data, status, status == 0 ? reply->body : NULL);
}

static int node_request(struct ppdb_node *n, const struct ppdb_addr *to, uint32_t type,
                        uint32_t reply_type, const uint8_t *body, size_t len, uint32_t timeout_ms,
                        ppdb_swim_sync_done_cb cb, void *cb_data)
{
    struct node_call *c = ppdb_malloc(sizeof(*c));
    if (!c)
        return PPDB_ENOMEM;
    *c = (struct node_call){.n = n, .reply_type = reply_type, .cb = cb, .cb_data = cb_data};
    int rc =
        ppdb_stream_request(&n->sep->ep, to, type, body, len, timeout_ms, call_reply_cb, c, NULL);
    if (rc) {
        ppdb_free(c);
        return rc;
    }
    c->next = n->calls;
    if (n->calls)
        n->calls->prev = c;
    n->calls = c;
    return 0;
}

/* Frees the endpoint once its closing connections have released their
 * memory; polls, since the stream layer has no "idle" callback. */
static void ep_reap_cb(struct ppdb_timer *t)
{
    struct node_ep *e = t->data;
    if (ppdb_stream_ep_idle(&e->ep)) {
        ppdb_stream_ep_deinit(&e->ep);
        ppdb_free(e);
        return;
    }
    /* a crashed env refuses this timer: its node must be freed with
     * ppdb_node_drop, which reclaims the endpoint at once */
    (void)ppdb_env_timer_arm(e->ep.env, &e->reap_timer, 100);
}

static int open_streams(struct ppdb_node *n)
{
    struct node_ep *e = ppdb_calloc(1, sizeof(*e));
    if (!e)
        return PPDB_ENOMEM;
    n->sep = e;
    ppdb_timer_init(&e->reap_timer, ep_reap_cb, e);
    struct ppdb_stream_options o;
    ppdb_stream_options_default(&o);
    o.role = PPDB_ROLE_NODE;
    o.max_conns = n->cfg.max_stream_conns;
    o.max_frame = PPDB_MAX(PPDB_FRAME_DEFAULT_MAX, n->cfg.max_stream_bytes + 1024u);
    o.request_timeout_ms = n->params.sync_timeout_ms;
    o.idle_ms = NODE_STREAM_IDLE_MS;
    o.inbound_idle_ms = NODE_STREAM_INBOUND_IDLE_MS;
    o.null_cipher = n->cfg.dgram.null_cipher;
    int rc =
        ppdb_stream_ep_init(&e->ep, n->env, n->idn, n->kr, &n->reg, &o, stream_msg_cb, NULL, n);
    if (rc)
        return rc;
    e->live = true;
    return ppdb_stream_ep_listen(&e->ep, &n->bound, NULL);
}

static void close_streams(struct ppdb_node *n)
{
    struct node_ep *e = n->sep;
    if (!e)
        return;
    if (!e->live) {
        ppdb_free(e);
    } else {
        ppdb_stream_ep_close(&e->ep); /* requests fail with ECANCELED now */
        ep_reap_cb(&e->reap_timer);
    }
    n->sep = NULL;
}

/* ------------------------------------------------------------ SWIM host */

static int swim_send_cb(void *ctx, const struct ppdb_addr *to, uint32_t type, uint64_t req_id,
                        const uint8_t *body, size_t len)
{
    return ppdb_node_send(ctx, to, type, req_id, body, len);
}

static int swim_sync_cb(void *ctx, const struct ppdb_addr *to, const uint8_t *body, size_t len,
                        uint32_t timeout_ms, ppdb_swim_sync_done_cb cb, void *cb_data)
{
    return node_request(ctx, to, PPDB_MSG_SWIM_SYNC, PPDB_MSG_SWIM_SYNC_REPLY, body, len,
                        timeout_ms, cb, cb_data);
}

static void swim_keep_cb(void *ctx, const struct ppdb_addr *to)
{
    struct ppdb_node *n = ctx;
    if (n->sep)
        ppdb_stream_ep_keep(&n->sep->ep, to);
}

static void swim_changed_cb(void *ctx, uint32_t index, const struct ppdb_swim_member *m,
                            const uint8_t *meta, int old_state)
{
    struct ppdb_node *n = ctx;
    (void)meta;
    if (n->nsubs == 0)
        return;
    PPDB_ASSERT(index < n->swim.tab.len && m == &PPDB_SWIM_M(&n->swim.tab, index));
    ppdb_swim_member_info(&n->swim, index, &n->info);
    for (uint32_t k = 0; k < n->nsubs; k++)
        n->subs[k].cb(n->subs[k].data, &n->info, old_state);
}

static void swim_dgram_cb(void *data, const struct ppdb_addr *from, const struct ppdb_envelope *msg)
{
    struct ppdb_node *n = data;
    ppdb_swim_on_message(&n->swim, from, msg);
}

static void swim_serve_cb(void *data, const struct ppdb_node_req *req,
                          const struct ppdb_envelope *msg)
{
    struct ppdb_node *n = data;
    struct ppdb_buf reply;
    ppdb_buf_init(&reply);
    if (msg->hdr.type == PPDB_MSG_SWIM_SYNC &&
        ppdb_swim_on_sync(&n->swim, &req->peer, msg->body, &reply) == 0)
        (void)ppdb_node_reply(n, req, PPDB_MSG_SWIM_SYNC_REPLY, reply.data, reply.len);
    else
        (void)ppdb_node_reply(n, req, PPDB_MSG_ERROR, NULL, 0);
    ppdb_buf_deinit(&reply);
}

/* ------------------------------------------------------------ lifecycle */

static int open_io(struct ppdb_node *n)
{
    int rc = ppdb_env_udp_open(n->env, &n->cfg.listen, udp_recv_cb, n, &n->udp);
    if (rc)
        return rc;
    if ((rc = ppdb_env_udp_local_addr(n->env, n->udp, &n->bound)) != 0)
        return rc;
    if ((rc = ppdb_dgram_init(&n->dg, n->env, n->kr, &n->reg, &n->idn->id, &n->cfg.dgram)) != 0)
        return rc;
    n->dg_live = true;
    return open_streams(n);
}

static int start_swim(struct ppdb_node *n)
{
    uint8_t meta[PPDB_MEMBER_META_MAX];
    uint32_t meta_len;
    int rc = ppdb_swim_meta_encode(n->cfg.clients, n->cfg.nclients,
                                   (const char(*)[PPDB_NODE_TAG_LEN])n->cfg.tags, n->cfg.ntags,
                                   meta, &meta_len);
    if (rc)
        return rc;
    uint64_t inc = n->cfg.incarnation;
    if (inc == 0)
        inc = (uint64_t)(ppdb_env_wall_ms(n->env) / 1000);
    struct ppdb_swim_io io = {.send_msg = swim_send_cb,
                              .sync_request = swim_sync_cb,
                              .changed = swim_changed_cb,
                              .keep = swim_keep_cb,
                              .ctx = n};
    const struct ppdb_addr *self = n->cfg.advertise.family ? &n->cfg.advertise : &n->bound;
    if ((rc = ppdb_swim_init(&n->swim, n->env, &n->params, &io, &n->idn->id, self, inc, meta,
                             meta_len)) != 0)
        return rc;
    n->swim_live = true;
    rc =
        ppdb_node_register_dgram(n, PPDB_MSG_SWIM_PING, PPDB_MSG_SWIM_NEWS, ppdb_swim_dgram_schemas,
                                 ppdb_swim_dgram_nschemas, swim_dgram_cb, n);
    if (rc == 0)
        rc = ppdb_node_serve(n, PPDB_MSG_SWIM_SYNC, PPDB_MSG_SWIM_SYNC_REPLY,
                             ppdb_swim_stream_schemas, ppdb_swim_stream_nschemas, swim_serve_cb, n);
    return rc;
}

int ppdb_node_new(struct ppdb_env *env, const struct ppdb_identity *idn,
                  const struct ppdb_keyring *kr, const struct ppdb_node_config *cfg,
                  struct ppdb_node **out)
{
    if (!cfg || cfg->nseeds > PPDB_NODE_MAX_SEEDS || cfg->ntags > PPDB_NODE_MAX_TAGS ||
        cfg->nclients > PPDB_NODE_MAX_CLIENTS || cfg->max_modules == 0 ||
        cfg->max_stream_conns == 0 || cfg->listen.family == 0)
        return PPDB_EINVAL;
    struct ppdb_node *n = ppdb_calloc(1, sizeof(*n));
    if (!n)
        return PPDB_ENOMEM;
    n->env = env;
    n->idn = idn;
    n->kr = kr;
    n->cfg = *cfg;
    int rc = cfg->params ? 0 : ppdb_swim_profile(cfg->profile, &n->params);
    if (cfg->params)
        n->params = *cfg->params;
    ppdb_wire_registry_init(&n->reg);
    n->dgram_mods = ppdb_calloc(cfg->max_modules, sizeof(*n->dgram_mods));
    n->stream_mods = ppdb_calloc(cfg->max_modules, sizeof(*n->stream_mods));
    if (rc == 0 && (!n->dgram_mods || !n->stream_mods))
        rc = PPDB_ENOMEM;
    if (rc == 0)
        rc = open_io(n);
    if (rc == 0)
        rc = start_swim(n);
    if (rc) {
        ppdb_node_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

int ppdb_node_start(struct ppdb_node *n)
{
    return ppdb_swim_start(&n->swim, n->cfg.seeds, n->cfg.nseeds);
}

int ppdb_node_add_seed(struct ppdb_node *n, const struct ppdb_addr *addr)
{
    PPDB_ASSERT(addr != NULL && addr->family != 0);
    if (ppdb_addr_equal(addr, &n->bound))
        return 0;
    return ppdb_swim_add_seed(&n->swim, addr);
}

int ppdb_node_leave(struct ppdb_node *n, ppdb_node_done_cb cb, void *data)
{
    return ppdb_swim_leave(&n->swim, cb, data);
}

/* The env died: the endpoint's memory is reclaimed at once, and with it
 * the requests in flight, whose callbacks never run: free their calls. */
static void drop_streams(struct ppdb_node *n)
{
    struct node_ep *e = n->sep;
    if (!e)
        return;
    PPDB_ASSERT(!ppdb_timer_armed(&e->reap_timer));
    if (e->live)
        ppdb_stream_ep_drop(&e->ep);
    ppdb_free(e);
    n->sep = NULL;
    while (n->calls) {
        struct node_call *c = n->calls;
        call_unlink(c);
        ppdb_free(c);
    }
}

static void free_rest(struct ppdb_node *n)
{
    if (n->swim_live)
        ppdb_swim_deinit(&n->swim);
    if (n->udp)
        ppdb_env_udp_close(n->env, n->udp);
    if (n->dg_live)
        ppdb_dgram_deinit(&n->dg);
    ppdb_free(n->dgram_mods);
    ppdb_free(n->stream_mods);
    ppdb_free(n);
}

void ppdb_node_free(struct ppdb_node *n)
{
    if (!n)
        return;
    n->freeing = true;
    close_streams(n);
    PPDB_ASSERT(n->calls == NULL); /* the close failed every request */
    free_rest(n);
}

void ppdb_node_drop(struct ppdb_node *n)
{
    if (!n)
        return;
    n->freeing = true;
    drop_streams(n);
    free_rest(n);
}

/* ------------------------------------------------------------ queries */

uint32_t ppdb_node_members(struct ppdb_node *n, ppdb_node_member_cb cb, void *data)
{
    struct ppdb_member_info *info = &n->info;
    for (uint32_t i = 0; i < n->swim.tab.len; i++) {
        ppdb_swim_member_info(&n->swim, i, info);
        cb(data, info);
    }
    return n->swim.tab.len;
}

int ppdb_node_member(struct ppdb_node *n, const struct ppdb_node_id *id,
                     struct ppdb_member_info *out)
{
    uint32_t i = ppdb_swim_table_find(&n->swim.tab, id);
    if (i == UINT32_MAX)
        return PPDB_ENOTFOUND;
    ppdb_swim_member_info(&n->swim, i, out);
    return 0;
}

void ppdb_node_self(struct ppdb_node *n, struct ppdb_member_info *out)
{
    int rc = ppdb_node_member(n, &n->idn->id, out);
    PPDB_ASSERT(rc == 0);
}

const struct ppdb_node_id *ppdb_node_id(const struct ppdb_node *n)
{
    return &n->idn->id;
}

struct ppdb_env *ppdb_node_env(struct ppdb_node *n)
{
    return n->env;
}

int ppdb_node_local_addr(struct ppdb_node *n, struct ppdb_addr *out)
{
    *out = n->bound;
    return 0;
}

void ppdb_node_member_counts(const struct ppdb_node *n, uint32_t out[4])
{
    memcpy(out, n->swim.tab.count, sizeof(n->swim.tab.count));
}

void ppdb_node_stats(struct ppdb_node *n, struct ppdb_node_stats *out)
{
    *out = n->stats;
    memcpy(out->members, n->swim.tab.count, sizeof(out->members));
    out->member_bytes = ppdb_swim_table_memory(&n->swim.tab);
    out->bytes_per_member = n->swim.tab.len ? out->member_bytes / n->swim.tab.len : 0;
    out->swim = n->swim.stats;
    out->swim.health = n->swim.health;
    out->swim.queue_len = n->swim.queue.len;
    out->dgram = n->dg.stats;
    out->profile = n->params.name;
    if (n->sep) {
        struct ppdb_stream_stats ss;
        ppdb_stream_ep_stats(&n->sep->ep, &ss);
        out->streams_in = ss.accepted;
        out->streams_out = ss.connected;
        out->stream_errors = ppdb_stream_stats_rejected(&ss);
        out->stream_conns = n->sep->ep.live;
    }
}

int ppdb_node_on_change(struct ppdb_node *n, ppdb_node_change_cb cb, void *data)
{
    if (n->nsubs == PPDB_ARRAY_LEN(n->subs))
        return PPDB_ELIMIT;
    n->subs[n->nsubs].cb = cb;
    n->subs[n->nsubs].data = data;
    n->nsubs++;
    return 0;
}
