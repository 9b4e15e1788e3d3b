/*
 * admin.c - status and members queries served by a node to the CLI, and
 * their client-side decoders (admin.h has the message layouts).
 *
 * The server half is an I/O-free module like every other: it registers its
 * request types on the node and answers through ppdb_node_reply. Members are
 * paged: a request names an offset and a limit (at most PPDB_ADMIN_PAGE_MAX),
 * and pages follow the node's table order, which only changes when members
 * are added or reaped (a CLI reading pages while that happens may see a
 * member twice or miss one; it prints the total the last page reported).
 */
#include <stdio.h>

#include "admin.h"

#include "ppdb_mp.h"

static const struct ppdb_wire_field members_req_fields[] = {
    {.key = 0, .kind = PPDB_WK_UINT, .required = false},
    {.key = 1, .kind = PPDB_WK_UINT, .required = false},
};
static const struct ppdb_wire_schema request_schemas[] = {
    {.type = PPDB_MSG_ADMIN_STATUS, .name = "admin.status", .fields = NULL, .nfields = 0},
    {.type = PPDB_MSG_ADMIN_MEMBERS,
     .name = "admin.members",
     .fields = members_req_fields,
     .nfields = PPDB_ARRAY_LEN(members_req_fields)},
};

static const struct ppdb_wire_field status_fields[] = {
    {.key = 0, .kind = PPDB_WK_BIN, .required = true, .min_len = 20, .max_len = 20},
    {.key = 1, .kind = PPDB_WK_STR, .required = true, .max_len = PPDB_ADDR_STRLEN - 1},
    {.key = 2, .kind = PPDB_WK_UINT, .required = true},
    {.key = 3, .kind = PPDB_WK_UINT, .required = true},
    {.key = 4, .kind = PPDB_WK_ARRAY, .required = true, .max_len = 4},
    {.key = 6, .kind = PPDB_WK_STR, .required = true, .max_len = PPDB_ADMIN_TEXT_MAX - 1},
    {.key = 7, .kind = PPDB_WK_BOOL, .required = true},
};
static const struct ppdb_wire_field members_fields[] = {
    {.key = 0, .kind = PPDB_WK_UINT, .required = true},
    {.key = 1, .kind = PPDB_WK_ARRAY, .required = true, .max_len = PPDB_ADMIN_PAGE_MAX},
};
static const struct ppdb_wire_schema reply_schemas[] = {
    {.type = PPDB_MSG_ADMIN_STATUS_REPLY,
     .name = "admin.status.reply",
     .fields = status_fields,
     .nfields = PPDB_ARRAY_LEN(status_fields)},
    {.type = PPDB_MSG_ADMIN_MEMBERS_REPLY,
     .name = "admin.members.reply",
     .fields = members_fields,
     .nfields = PPDB_ARRAY_LEN(members_fields)},
};

/* ------------------------------------------------------------- server */

static void put_addr(struct ppdb_mpw *w, const struct ppdb_addr *a)
{
    char text[PPDB_ADDR_STRLEN];
    ppdb_mpw_cstr(w, ppdb_addr_format(a, text));
}

static void encode_status(struct ppdb_admin *a, struct ppdb_mpw *w)
{
    struct ppdb_member_info self;
    struct ppdb_node_stats st;
    ppdb_node_self(a->node, &self);
    ppdb_node_stats(a->node, &st);
    ppdb_mpw_map(w, 16);
    ppdb_mpw_uint(w, 0), ppdb_mpw_bin(w, self.id.b, PPDB_NODE_ID_LEN);
    ppdb_mpw_uint(w, 1), put_addr(w, &self.addr);
    ppdb_mpw_uint(w, 2), ppdb_mpw_uint(w, self.incarnation);
    ppdb_mpw_uint(w, 3), ppdb_mpw_uint(w, self.state);
    ppdb_mpw_uint(w, 4), ppdb_mpw_array(w, 4);
    for (int i = 0; i < 4; i++)
        ppdb_mpw_uint(w, st.members[i]);
    ppdb_mpw_uint(w, 5), ppdb_mpw_uint(w, st.swim.health);
    ppdb_mpw_uint(w, 6), ppdb_mpw_cstr(w, st.profile ? st.profile : "");
    ppdb_mpw_uint(w, 7), ppdb_mpw_bool(w, a->info.insecure);
    ppdb_mpw_uint(w, 8), ppdb_mpw_uint(w, a->info.key_id);
    ppdb_mpw_uint(w, 9), ppdb_mpw_uint(w, ppdb_env_mono_ms(ppdb_node_env(a->node)) - a->started_ms);
    ppdb_mpw_uint(w, 10), ppdb_mpw_cstr(w, a->info.version);
    ppdb_mpw_uint(w, 11), ppdb_mpw_uint(w, PPDB_WIRE_VERSION);
    ppdb_mpw_uint(w, 12), ppdb_mpw_cstr(w, a->info.discovery);
    ppdb_mpw_uint(w, 13), ppdb_mpw_uint(w, ppdb_dgram_stats_rejected(&st.dgram));
    ppdb_mpw_uint(w, 14), ppdb_mpw_uint(w, st.bytes_per_member);
    ppdb_mpw_uint(w, 15), ppdb_mpw_uint(w, st.stream_errors);
}

struct page {
    struct ppdb_mpw *w;
    uint64_t now_ms, offset, seen;
    uint32_t limit, written;
};

static void encode_member(struct ppdb_mpw *w, const struct ppdb_member_info *m, uint64_t now_ms)
{
    ppdb_mpw_map(w, 10);
    ppdb_mpw_uint(w, 0), ppdb_mpw_bin(w, m->id.b, PPDB_NODE_ID_LEN);
    ppdb_mpw_uint(w, 1), put_addr(w, &m->addr);
    ppdb_mpw_uint(w, 2), ppdb_mpw_uint(w, m->incarnation);
    ppdb_mpw_uint(w, 3), ppdb_mpw_uint(w, m->state);
    ppdb_mpw_uint(w, 4), ppdb_mpw_uint(w, m->version);
    ppdb_mpw_uint(w, 5), ppdb_mpw_uint(w, now_ms >= m->state_ms ? now_ms - m->state_ms : 0);
    ppdb_mpw_uint(w, 6), ppdb_mpw_array(w, m->ntags);
    for (uint32_t i = 0; i < m->ntags; i++)
        ppdb_mpw_cstr(w, m->tags[i]);
    ppdb_mpw_uint(w, 7), ppdb_mpw_array(w, m->nclients);
    for (uint32_t i = 0; i < m->nclients; i++)
        put_addr(w, &m->clients[i]);
    ppdb_mpw_uint(w, 8), ppdb_mpw_bool(w, m->self);
    ppdb_mpw_uint(w, 9), ppdb_mpw_uint(w, m->rtt_ms);
}

static void count_cb(void *data, const struct ppdb_member_info *m)
{
    struct page *pg = data;
    if (pg->seen++ >= pg->offset && pg->written < pg->limit)
        pg->written++;
}

static void page_cb(void *data, const struct ppdb_member_info *m)
{
    struct page *pg = data;
    if (pg->seen++ >= pg->offset && pg->written < pg->limit) {
        pg->written++;
        encode_member(pg->w, m, pg->now_ms);
    }
}

/* Two passes over the table: one to size the array header, one to encode. */
static void encode_members(struct ppdb_admin *a, const struct ppdb_envelope *msg,
                           struct ppdb_mpw *w)
{
    uint64_t offset = 0, limit = PPDB_ADMIN_PAGE_MAX;
    (void)ppdb_mp_get_u64(msg->body, 0, &offset);
    (void)ppdb_mp_get_u64(msg->body, 1, &limit);
    struct page pg = {.w = w,
                      .offset = offset,
                      .limit = (uint32_t)PPDB_MIN(limit, PPDB_ADMIN_PAGE_MAX),
                      .now_ms = ppdb_env_mono_ms(ppdb_node_env(a->node))};
    uint32_t total = ppdb_node_members(a->node, count_cb, &pg);
    uint32_t n = pg.written;
    pg.seen = pg.written = 0;
    ppdb_mpw_map(w, 2);
    ppdb_mpw_uint(w, 0), ppdb_mpw_uint(w, total);
    ppdb_mpw_uint(w, 1), ppdb_mpw_array(w, n);
    ppdb_node_members(a->node, page_cb, &pg);
    PPDB_ASSERT_CMP(pg.written, ==, n); /* the table cannot change within one call */
}

static void request_cb(void *data, const struct ppdb_node_req *req, const struct ppdb_envelope *msg)
{
    struct ppdb_admin *a = data;
    struct ppdb_buf b;
    struct ppdb_mpw w;
    uint32_t reply_type = msg->hdr.type + 1;
    ppdb_buf_init(&b);
    ppdb_mpw_init(&w, &b);
    if (msg->hdr.type == PPDB_MSG_ADMIN_STATUS)
        encode_status(a, &w);
    else
        encode_members(a, msg, &w);
    if (ppdb_mpw_error(&w) == 0) {
        a->served++;
        (void)ppdb_node_reply(a->node, req, reply_type, b.data, b.len);
    }
    ppdb_buf_deinit(&b);
}

int ppdb_admin_attach(struct ppdb_admin *a, struct ppdb_node *node,
                      const struct ppdb_admin_info *info)
{
    memset(a, 0, sizeof(*a));
    a->node = node;
    a->info = *info;
    a->started_ms = ppdb_env_mono_ms(ppdb_node_env(node));
    return ppdb_node_serve(node, PPDB_MSG_ADMIN_STATUS, PPDB_MSG_ADMIN_MEMBERS, request_schemas,
                           PPDB_ARRAY_LEN(request_schemas), request_cb, a);
}

/* ------------------------------------------------------------- client */

int ppdb_admin_register_replies(struct ppdb_wire_registry *reg)
{
    for (size_t i = 0; i < PPDB_ARRAY_LEN(reply_schemas); i++) {
        int rc = ppdb_wire_registry_add(reg, &reply_schemas[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static void get_text(const msgpack_object *map, uint64_t key, char *out, size_t cap)
{
    const msgpack_object *v;
    out[0] = '\0';
    if (ppdb_mp_map_get(map, key, &v) == 0 && ppdb_mp_as_cstr(v, out, cap) != 0)
        out[0] = '\0';
}

static uint64_t get_uint(const msgpack_object *map, uint64_t key)
{
    uint64_t v = 0;
    (void)ppdb_mp_get_u64(map, key, &v);
    return v;
}

int ppdb_admin_decode_status(const struct ppdb_envelope *msg, struct ppdb_admin_status *out)
{
    const msgpack_object *b = msg->body, *arr, *items;
    uint32_t n;
    memset(out, 0, sizeof(*out));
    if (msg->hdr.type != PPDB_MSG_ADMIN_STATUS_REPLY)
        return PPDB_EPROTO;
    int rc = ppdb_mp_get_bin_fixed(b, 0, out->id.b, PPDB_NODE_ID_LEN);
    if (rc || (rc = ppdb_mp_map_get(b, 4, &arr)) != 0 || (rc = ppdb_mp_as_array(arr, &items, &n)))
        return rc;
    for (uint32_t i = 0; i < n && i < 4; i++)
        (void)ppdb_mp_as_u64(&items[i], &out->counts[i]);
    get_text(b, 1, out->addr, sizeof(out->addr));
    out->incarnation = get_uint(b, 2);
    out->state = (uint32_t)get_uint(b, 3);
    out->health = get_uint(b, 5);
    get_text(b, 6, out->profile, sizeof(out->profile));
    (void)ppdb_mp_get_bool(b, 7, &out->insecure);
    out->key_id = (uint32_t)get_uint(b, 8);
    out->uptime_ms = get_uint(b, 9);
    get_text(b, 10, out->version, sizeof(out->version));
    out->wire_version = (uint32_t)get_uint(b, 11);
    get_text(b, 12, out->discovery, sizeof(out->discovery));
    out->dgram_rejected = get_uint(b, 13);
    out->bytes_per_member = get_uint(b, 14);
    out->stream_rejected = get_uint(b, 15);
    return 0;
}

static void get_list(const msgpack_object *map, uint64_t key, char *out, size_t stride,
                     uint32_t max, uint32_t *n_out)
{
    const msgpack_object *v, *items;
    uint32_t n = 0;
    *n_out = 0;
    if (ppdb_mp_map_get(map, key, &v) != 0 || ppdb_mp_as_array(v, &items, &n) != 0)
        return;
    for (uint32_t i = 0; i < n && *n_out < max; i++)
        if (ppdb_mp_as_cstr(&items[i], out + (size_t)*n_out * stride, stride) == 0)
            (*n_out)++;
}

static int decode_member(const msgpack_object *o, struct ppdb_admin_member *m)
{
    memset(m, 0, sizeof(*m));
    int rc = ppdb_mp_get_bin_fixed(o, 0, m->id.b, PPDB_NODE_ID_LEN);
    if (rc)
        return rc;
    get_text(o, 1, m->addr, sizeof(m->addr));
    m->incarnation = get_uint(o, 2);
    m->state = (uint32_t)get_uint(o, 3);
    m->version = (uint32_t)get_uint(o, 4);
    m->state_age_ms = get_uint(o, 5);
    get_list(o, 6, &m->tags[0][0], PPDB_NODE_TAG_LEN, PPDB_NODE_MAX_TAGS, &m->ntags);
    get_list(o, 7, &m->clients[0][0], PPDB_ADDR_STRLEN, PPDB_NODE_MAX_CLIENTS, &m->nclients);
    (void)ppdb_mp_get_bool(o, 8, &m->self);
    m->rtt_ms = (uint32_t)get_uint(o, 9);
    return 0;
}

int ppdb_admin_decode_members(const struct ppdb_envelope *msg, uint64_t *total_out,
                              uint32_t *count_out, ppdb_admin_member_cb cb, void *data)
{
    const msgpack_object *arr, *items;
    uint32_t n;
    if (msg->hdr.type != PPDB_MSG_ADMIN_MEMBERS_REPLY)
        return PPDB_EPROTO;
    int rc = ppdb_mp_get_u64(msg->body, 0, total_out);
    if (rc || (rc = ppdb_mp_map_get(msg->body, 1, &arr)) != 0 ||
        (rc = ppdb_mp_as_array(arr, &items, &n)) != 0)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        struct ppdb_admin_member m;
        if ((rc = decode_member(&items[i], &m)) != 0)
            return rc;
        cb(data, &m);
    }
    *count_out = n;
    return 0;
}

int ppdb_admin_encode_members_req(struct ppdb_buf *b, uint64_t offset, uint32_t limit)
{
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, b);
    ppdb_mpw_map(&w, 2);
    ppdb_mpw_uint(&w, 0), ppdb_mpw_uint(&w, offset);
    ppdb_mpw_uint(&w, 1), ppdb_mpw_uint(&w, limit);
    return ppdb_mpw_error(&w);
}
