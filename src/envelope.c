/*
 * envelope.c - the msgpack envelope every PPDB message travels in, and the
 * registry of message types with their body schemas.
 *
 * An envelope is a map {0: version, 1: type, 2: sender id (bin 20),
 * 3: request id, 4: body map}. Keys are small integers; the decoder looks
 * up the keys it knows and ignores the rest, so a newer sender may add
 * fields. The body is checked against the schema its type registered
 * (required fields present, every known field of the right kind and
 * length), so handlers can read fields without re-checking types. A type
 * nobody registered is reported as PPDB_ENOTSUP with the header filled in.
 *
 * Invariants: a registry slot holds a schema whose type equals its index;
 * a decoded envelope with live == false owns nothing.
 */
#include "ppdb_wire.h"

/* ------------------------------------------------------------- registry */

static const struct ppdb_wire_field error_fields[] = {
    {.key = 0, .kind = PPDB_WK_INT, .required = true},
    {.key = 1, .kind = PPDB_WK_STR, .required = false, .max_len = 256},
};
static const struct ppdb_wire_field ping_fields[] = {
    {.key = 0, .kind = PPDB_WK_BIN, .required = false, .max_len = 1280},
};
static const struct ppdb_wire_schema builtin_schemas[] = {
    {PPDB_MSG_ERROR, "msg.error", error_fields, PPDB_ARRAY_LEN(error_fields)},
    {PPDB_MSG_PING, "msg.ping", ping_fields, PPDB_ARRAY_LEN(ping_fields)},
    {PPDB_MSG_PONG, "msg.pong", ping_fields, PPDB_ARRAY_LEN(ping_fields)},
};

enum ppdb_wire_module ppdb_wire_module_of(uint32_t type)
{
    if (type <= PPDB_MSG_MESSAGING_LAST)
        return PPDB_WMOD_MESSAGING;
    if (type <= PPDB_MSG_SWIM_LAST)
        return PPDB_WMOD_SWIM;
    if (type <= PPDB_MSG_DHT_LAST)
        return PPDB_WMOD_DHT;
    if (type <= PPDB_MSG_RING_LAST)
        return PPDB_WMOD_RING;
    if (type <= PPDB_MSG_ADMIN_LAST)
        return PPDB_WMOD_ADMIN;
    return PPDB_WMOD_RESERVED;
}

const char *ppdb_wire_module_name(enum ppdb_wire_module m)
{
    static const char *const names[] = {"messaging", "swim", "dht", "ring", "admin", "reserved"};
    return (unsigned)m < PPDB_ARRAY_LEN(names) ? names[m] : "reserved";
}

void ppdb_wire_registry_init(struct ppdb_wire_registry *r)
{
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < PPDB_ARRAY_LEN(builtin_schemas); i++) {
        int rc = ppdb_wire_registry_add(r, &builtin_schemas[i]);
        PPDB_ASSERT(rc == 0);
    }
}

int ppdb_wire_registry_add(struct ppdb_wire_registry *r, const struct ppdb_wire_schema *s)
{
    PPDB_ASSERT(s != NULL && s->name != NULL);
    PPDB_ASSERT(s->nfields == 0 || s->fields != NULL);
    if (s->type == 0 || ppdb_wire_module_of(s->type) == PPDB_WMOD_RESERVED)
        return PPDB_ERANGE;
    if (r->types[s->type])
        return PPDB_EEXIST;
    r->types[s->type] = s;
    return 0;
}

const struct ppdb_wire_schema *ppdb_wire_registry_find(const struct ppdb_wire_registry *r,
                                                       uint32_t type)
{
    return type < PPDB_ARRAY_LEN(r->types) ? r->types[type] : NULL;
}

/* --------------------------------------------------------------- encode */

void ppdb_envelope_begin(struct ppdb_mpw *w, const struct ppdb_envelope_hdr *h)
{
    ppdb_mpw_map(w, 5);
    ppdb_mpw_uint(w, PPDB_ENV_K_VERSION);
    ppdb_mpw_uint(w, h->version);
    ppdb_mpw_uint(w, PPDB_ENV_K_TYPE);
    ppdb_mpw_uint(w, h->type);
    ppdb_mpw_uint(w, PPDB_ENV_K_SENDER);
    ppdb_mpw_bin(w, h->sender.b, PPDB_NODE_ID_LEN);
    ppdb_mpw_uint(w, PPDB_ENV_K_REQID);
    ppdb_mpw_uint(w, h->request_id);
    ppdb_mpw_uint(w, PPDB_ENV_K_BODY);
}

int ppdb_envelope_encode(struct ppdb_buf *b, const struct ppdb_envelope_hdr *h, const uint8_t *body,
                         size_t body_len)
{
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, b);
    ppdb_envelope_begin(&w, h);
    if (body_len == 0)
        ppdb_mpw_map(&w, 0);
    int rc = ppdb_mpw_error(&w);
    if (rc == 0 && body_len > 0)
        rc = ppdb_buf_append(b, body, body_len);
    return rc;
}

/* --------------------------------------------------------------- decode */

static int check_len(uint32_t n, const struct ppdb_wire_field *f)
{
    if (f->max_len && n > f->max_len)
        return PPDB_ERANGE;
    return n < f->min_len ? PPDB_ERANGE : 0;
}

static int check_field(const msgpack_object *o, const struct ppdb_wire_field *f)
{
    uint64_t u;
    int64_t i;
    bool b;
    switch (f->kind) {
    case PPDB_WK_ANY:
        return 0;
    case PPDB_WK_UINT:
        return ppdb_mp_as_u64(o, &u);
    case PPDB_WK_INT:
        return ppdb_mp_as_i64(o, &i);
    case PPDB_WK_BOOL:
        return ppdb_mp_as_bool(o, &b);
    case PPDB_WK_STR:
        return o->type != MSGPACK_OBJECT_STR ? PPDB_ETYPE : check_len(o->via.str.size, f);
    case PPDB_WK_BIN:
        return o->type != MSGPACK_OBJECT_BIN ? PPDB_ETYPE : check_len(o->via.bin.size, f);
    case PPDB_WK_ARRAY:
        return o->type != MSGPACK_OBJECT_ARRAY ? PPDB_ETYPE : check_len(o->via.array.size, f);
    case PPDB_WK_MAP:
        return o->type != MSGPACK_OBJECT_MAP ? PPDB_ETYPE : check_len(o->via.map.size, f);
    default:
        PPDB_ASSERT(!"unknown field kind in a schema");
        return PPDB_EINVAL;
    }
}

static int check_body(const msgpack_object *body, const struct ppdb_wire_schema *s)
{
    if (body->type != MSGPACK_OBJECT_MAP)
        return PPDB_ETYPE;
    for (uint32_t i = 0; i < s->nfields; i++) {
        const struct ppdb_wire_field *f = &s->fields[i];
        const msgpack_object *o;
        int rc = ppdb_mp_map_get(body, f->key, &o);
        if (rc == PPDB_ENOTFOUND) {
            if (f->required)
                return PPDB_EPROTO;
            continue;
        }
        if (rc == 0)
            rc = check_field(o, f);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Reads the four header fields; a missing one is EPROTO. */
static int decode_hdr(const msgpack_object *root, struct ppdb_envelope_hdr *h)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return PPDB_ETYPE;
    int rc = ppdb_mp_get_u32(root, PPDB_ENV_K_VERSION, &h->version);
    if (rc == 0 && h->version != PPDB_WIRE_VERSION)
        return PPDB_EVERSION;
    if (rc == 0)
        rc = ppdb_mp_get_u32(root, PPDB_ENV_K_TYPE, &h->type);
    if (rc == 0)
        rc = ppdb_mp_get_bin_fixed(root, PPDB_ENV_K_SENDER, h->sender.b, PPDB_NODE_ID_LEN);
    if (rc == 0)
        rc = ppdb_mp_get_u64(root, PPDB_ENV_K_REQID, &h->request_id);
    return rc == PPDB_ENOTFOUND ? PPDB_EPROTO : rc;
}

int ppdb_envelope_decode(const struct ppdb_wire_registry *reg, const uint8_t *p, size_t n,
                         struct ppdb_envelope *out)
{
    memset(out, 0, sizeof(*out));
    int rc = ppdb_mp_parse(p, n, NULL, &out->doc, NULL);
    if (rc != 0)
        return rc;
    const msgpack_object *root = &out->doc.root;
    rc = decode_hdr(root, &out->hdr);
    if (rc == 0)
        rc = ppdb_mp_map_get(root, PPDB_ENV_K_BODY, &out->body);
    if (rc == PPDB_ENOTFOUND)
        rc = PPDB_EPROTO;
    if (rc == 0) {
        out->schema = ppdb_wire_registry_find(reg, out->hdr.type);
        rc = out->schema ? check_body(out->body, out->schema) : PPDB_ENOTSUP;
    }
    if (rc != 0) {
        ppdb_mp_doc_deinit(&out->doc);
        out->body = NULL;
        out->schema = NULL;
        return rc;
    }
    out->live = true;
    return 0;
}

void ppdb_envelope_deinit(struct ppdb_envelope *e)
{
    if (e->live)
        ppdb_mp_doc_deinit(&e->doc);
    e->live = false;
    e->body = NULL;
}
