/*
 * node.c - a PPDB node: identity, keyring, registry, one sealed UDP socket,
 * a stream service on the same port, and SWIM membership, on one env.
 *
 * Datagrams: every packet on the socket is opened by one struct ppdb_dgram
 * (authenticated, replay-checked, schema-checked) and handed to the module
 * whose type range holds it (a table of ranges: adding a module is one
 * ppdb_node_register_dgram call). PPDB_MSG_PING is answered here.
 *
 * Streams: requests arrive over peer/xfer.c's transport and are dispatched
 * by type range the same way (ppdb_node_serve). SWIM's push/pull is one
 * such service.
 *
 * Invariants: module ranges never overlap within a table; every handle the
 * node opened is closed by ppdb_node_free.
 */
#include "node_int.h"

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

/* ------------------------------------------------------------ SWIM host */

static int swim_send_cb(void *ctx, const struct ppdb_addr *to, uint32_t type, uint64_t req_id,
                        const uint8_t *body, size_t len)
{
    return ppdb_node_send(ctx, to, type, req_id, body, len);
}

static int swim_sync_cb(void *ctx, const struct ppdb_addr *to, const uint8_t *body, size_t len,
                        uint32_t timeout_ms, ppdb_swim_sync_done_cb cb, void *cb_data)
{
    return node_request(ctx, to, PPDB_MSG_SWIM_SYNC, body, len, timeout_ms, cb, cb_data);
}

static void swim_changed_cb(void *ctx, const struct ppdb_swim_member *m, const uint8_t *meta,
                            int old_state)
{
    struct ppdb_node *n = ctx;
    (void)meta;
    if (n->nsubs == 0)
        return;
    uint32_t i = ppdb_swim_table_find(&n->swim.tab, &m->id);
    PPDB_ASSERT(i != UINT32_MAX);
    ppdb_swim_member_info(&n->swim, i, &n->info);
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
    if ((rc = ppdb_env_listen(n->env, &n->bound, node_accept_cb, n, &n->listener)) != 0)
        return rc;
    struct ppdb_dgram_options so = n->cfg.dgram;
    so.replay_senders = 1; /* the stream sealer never opens anything */
    so.replay_marks = 1;
    if ((rc = ppdb_dgram_init(&n->dg, n->env, n->kr, &n->reg, &n->idn->id, &n->cfg.dgram)) != 0)
        return rc;
    n->dg_live = true;
    if ((rc = ppdb_dgram_init(&n->sdg, n->env, n->kr, &n->reg, &n->idn->id, &so)) != 0)
        return rc;
    n->sdg_live = true;
    return 0;
}

static const struct ppdb_wire_field chunk_fields[] = {
    {.key = 0, .kind = PPDB_WK_UINT, .required = true},
    {.key = 1, .kind = PPDB_WK_BIN, .required = true, .max_len = PPDB_DGRAM_MAX},
    {.key = 2, .kind = PPDB_WK_BOOL, .required = true},
};
static const struct ppdb_wire_schema chunk_schema = {PPDB_MSG_SWIM_CHUNK, "swim.chunk",
                                                     chunk_fields, 3};

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
                              .ctx = n};
    const struct ppdb_addr *self = n->cfg.advertise.family ? &n->cfg.advertise : &n->bound;
    if ((rc = ppdb_swim_init(&n->swim, n->env, &n->params, &io, &n->idn->id, self, inc, meta,
                             meta_len)) != 0)
        return rc;
    n->swim_live = true;
    if ((rc = ppdb_wire_registry_add(&n->reg, &chunk_schema)) != 0)
        return rc;
    rc = ppdb_node_register_dgram(n, PPDB_MSG_SWIM_PING, PPDB_MSG_SWIM_GOSSIP,
                                  ppdb_swim_dgram_schemas, ppdb_swim_dgram_nschemas, swim_dgram_cb,
                                  n);
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
    struct ppdb_swim *s = &n->swim;
    PPDB_ASSERT(addr != NULL && addr->family != 0);
    if (ppdb_addr_equal(addr, &n->bound))
        return 0;
    for (uint32_t k = 0; k < s->nseeds; k++)
        if (ppdb_addr_equal(&s->seeds[k], addr))
            return 0;
    if (s->nseeds >= PPDB_NODE_MAX_SEEDS)
        return PPDB_ELIMIT;
    s->seeds[s->nseeds++] = *addr;
    /* Alone: run the (re)join through the seeds now instead of at the next
     * push/pull. A node already in a mesh learns of the newcomer when the
     * newcomer joins (it is alone, so it joins through us). */
    if (s->started && !s->leaving && ppdb_swim_n(s) <= 1)
        return ppdb_env_timer_arm(n->env, &s->sync_timer, 0);
    return 0;
}

int ppdb_node_leave(struct ppdb_node *n, ppdb_node_done_cb cb, void *data)
{
    return ppdb_swim_leave(&n->swim, cb, data);
}

void ppdb_node_free(struct ppdb_node *n)
{
    if (!n)
        return;
    node_xfer_close_all(n);
    if (n->swim_live)
        ppdb_swim_deinit(&n->swim);
    if (n->listener)
        ppdb_env_listener_close(n->env, n->listener);
    if (n->udp)
        ppdb_env_udp_close(n->env, n->udp);
    if (n->dg_live)
        ppdb_dgram_deinit(&n->dg);
    if (n->sdg_live)
        ppdb_dgram_deinit(&n->sdg);
    ppdb_free(n->dgram_mods);
    ppdb_free(n->stream_mods);
    ppdb_free(n);
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
