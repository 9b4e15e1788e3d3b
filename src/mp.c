/*
 * mp.c - strict msgpack over msgpack-c.
 *
 * msgpack-c trusts the lengths it reads: an array header that claims four
 * billion elements makes it allocate for them before noticing the input is
 * short. So every parse first runs validate(): an iterative walk with an
 * explicit stack that checks each declared length against the bytes that
 * remain (every element takes at least one byte), bounds nesting depth and
 * the total element count, and rejects the never-used byte 0xc1 and ext
 * types (PPDB never sends them). Only input that passes is handed to
 * msgpack_unpack, whose allocations are then bounded by the input size.
 */
#include "ppdb_mp.h"

#define MP_DEFAULT_DEPTH 8
#define MP_DEFAULT_ELEMENTS 4096
/* msgpack-c's own unpacker nests at most 32 deep (MSGPACK_EMBED_STACK_SIZE);
 * stay below it so anything validate() accepts also unpacks. */
#define MP_STACK_MAX 31

/* ---------------------------------------------------------------- writer */

static int write_cb(void *data, const char *buf, size_t len)
{
    struct ppdb_mpw *w = data;
    if (w->err)
        return -1;
    w->err = ppdb_buf_append(w->buf, buf, len);
    return w->err ? -1 : 0;
}

void ppdb_mpw_init(struct ppdb_mpw *w, struct ppdb_buf *buf)
{
    w->buf = buf;
    w->err = 0;
    msgpack_packer_init(&w->pk, w, write_cb);
}

void ppdb_mpw_map(struct ppdb_mpw *w, uint32_t n)
{
    msgpack_pack_map(&w->pk, n);
}

void ppdb_mpw_array(struct ppdb_mpw *w, uint32_t n)
{
    msgpack_pack_array(&w->pk, n);
}

void ppdb_mpw_uint(struct ppdb_mpw *w, uint64_t v)
{
    msgpack_pack_uint64(&w->pk, v);
}

void ppdb_mpw_int(struct ppdb_mpw *w, int64_t v)
{
    msgpack_pack_int64(&w->pk, v);
}

void ppdb_mpw_bool(struct ppdb_mpw *w, bool v)
{
    if (v)
        msgpack_pack_true(&w->pk);
    else
        msgpack_pack_false(&w->pk);
}

void ppdb_mpw_nil(struct ppdb_mpw *w)
{
    msgpack_pack_nil(&w->pk);
}

void ppdb_mpw_double(struct ppdb_mpw *w, double v)
{
    msgpack_pack_double(&w->pk, v);
}

void ppdb_mpw_str(struct ppdb_mpw *w, const char *s, size_t len)
{
    if (len > UINT32_MAX) {
        w->err = w->err ? w->err : PPDB_ERANGE;
        return;
    }
    msgpack_pack_str_with_body(&w->pk, s, len);
}

void ppdb_mpw_cstr(struct ppdb_mpw *w, const char *s)
{
    ppdb_mpw_str(w, s, strlen(s));
}

void ppdb_mpw_bin(struct ppdb_mpw *w, const void *p, size_t len)
{
    if (len > UINT32_MAX) {
        w->err = w->err ? w->err : PPDB_ERANGE;
        return;
    }
    msgpack_pack_bin_with_body(&w->pk, p, len);
}

/* ------------------------------------------------------------- validator */

/* Size of the fixed part after the type byte, and how many more bytes of
 * length field follow (for str/bin/array/map). */
struct mp_head {
    uint32_t skip;  /* payload bytes to skip (scalars, str, bin) */
    uint32_t items; /* child objects (arrays: n, maps: 2n) */
    bool container;
};

static int read_len(struct ppdb_rd *r, unsigned width, uint32_t *out)
{
    int rc;
    if (width == 1) {
        uint8_t v;
        rc = ppdb_rd_u8(r, &v);
        *out = v;
    } else if (width == 2) {
        uint16_t v;
        rc = ppdb_rd_u16be(r, &v);
        *out = v;
    } else {
        rc = ppdb_rd_u32be(r, out);
    }
    return rc;
}

static int lenfield(struct ppdb_rd *r, unsigned width, uint32_t mul, bool container,
                    struct mp_head *h)
{
    uint32_t n;
    int rc = read_len(r, width, &n);
    if (rc)
        return rc;
    if (container) {
        if ((uint64_t)n * mul > ppdb_rd_left(r))
            return PPDB_ETRUNC;
        h->items = n * mul;
        h->container = true;
    } else {
        h->skip = n;
    }
    return 0;
}

static int scalar_head(uint8_t b, struct mp_head *h)
{
    static const uint8_t fixed[] = {
        [0xc0 - 0xc0] = 0, [0xc2 - 0xc0] = 0, [0xc3 - 0xc0] = 0, [0xca - 0xc0] = 4,
        [0xcb - 0xc0] = 8, [0xcc - 0xc0] = 1, [0xcd - 0xc0] = 2, [0xce - 0xc0] = 4,
        [0xcf - 0xc0] = 8, [0xd0 - 0xc0] = 1, [0xd1 - 0xc0] = 2, [0xd2 - 0xc0] = 4,
        [0xd3 - 0xc0] = 8,
    };
    if (b == 0xc0 || b == 0xc2 || b == 0xc3 || (b >= 0xca && b <= 0xd3)) {
        h->skip = fixed[b - 0xc0];
        return 0;
    }
    return PPDB_EPROTO; /* 0xc1 and the ext family */
}

static int read_head(struct ppdb_rd *r, struct mp_head *h)
{
    uint8_t b;
    int rc = ppdb_rd_u8(r, &b);
    if (rc)
        return rc;
    memset(h, 0, sizeof(*h));
    if (b <= 0x7f || b >= 0xe0)
        return 0;
    if (b <= 0x8f || (b >= 0x90 && b <= 0x9f)) {
        uint32_t n = b & 0x0f, mul = b <= 0x8f ? 2 : 1;
        if ((uint64_t)n * mul > ppdb_rd_left(r))
            return PPDB_ETRUNC;
        h->items = n * mul;
        h->container = true;
        return 0;
    }
    if (b <= 0xbf) {
        h->skip = b & 0x1f;
        return 0;
    }
    switch (b) {
    case 0xc4: case 0xd9: return lenfield(r, 1, 0, false, h);
    case 0xc5: case 0xda: return lenfield(r, 2, 0, false, h);
    case 0xc6: case 0xdb: return lenfield(r, 4, 0, false, h);
    case 0xdc: return lenfield(r, 2, 1, true, h);
    case 0xdd: return lenfield(r, 4, 1, true, h);
    case 0xde: return lenfield(r, 2, 2, true, h);
    case 0xdf: return lenfield(r, 4, 2, true, h);
    default: return scalar_head(b, h);
    }
}

int ppdb_mp_validate(const uint8_t *p, size_t n, const struct ppdb_mp_limits *limits,
                     size_t *used_out)
{
    uint32_t max_depth = limits ? limits->max_depth : MP_DEFAULT_DEPTH;
    uint32_t max_elems = limits ? limits->max_elements : MP_DEFAULT_ELEMENTS;
    uint32_t stack[MP_STACK_MAX];
    uint32_t depth = 0, elems = 0, pending = 1;
    struct ppdb_rd r;
    const uint8_t *skipped;
    ppdb_rd_init(&r, p, n);
    if (max_depth > MP_STACK_MAX)
        max_depth = MP_STACK_MAX;
    for (;;) {
        while (pending == 0) {
            if (depth == 0)
                goto done;
            pending = stack[--depth];
        }
        pending--;
        if (++elems > max_elems)
            return PPDB_ELIMIT;
        struct mp_head h;
        int rc = read_head(&r, &h);
        if (rc)
            return rc;
        if ((rc = ppdb_rd_bytes(&r, h.skip, &skipped)) != 0)
            return rc;
        if (h.container && h.items > 0) {
            if (depth >= max_depth)
                return PPDB_ELIMIT;
            stack[depth++] = pending;
            pending = h.items;
        }
    }
done:
    if (used_out)
        *used_out = (size_t)(r.p - p);
    else if (ppdb_rd_left(&r) != 0)
        return PPDB_EPROTO;
    return 0;
}

/* ---------------------------------------------------------------- parser */

int ppdb_mp_parse(const uint8_t *p, size_t n, const struct ppdb_mp_limits *limits,
                  struct ppdb_mp_doc *doc, size_t *used_out)
{
    size_t used, off = 0;
    int rc = ppdb_mp_validate(p, n, limits, &used);
    if (rc)
        return rc;
    if (!used_out && used != n)
        return PPDB_EPROTO;
    if (!msgpack_zone_init(&doc->zone, 1024))
        return PPDB_ENOMEM;
    doc->zone_live = true;
    msgpack_unpack_return ur = msgpack_unpack((const char *)p, used, &off, &doc->zone, &doc->root);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != used) {
        ppdb_mp_doc_deinit(doc);
        return ur == MSGPACK_UNPACK_NOMEM_ERROR ? PPDB_ENOMEM : PPDB_EPROTO;
    }
    if (used_out)
        *used_out = used;
    return 0;
}

void ppdb_mp_doc_deinit(struct ppdb_mp_doc *doc)
{
    if (doc->zone_live)
        msgpack_zone_destroy(&doc->zone);
    doc->zone_live = false;
}

/* -------------------------------------------------------------- accessors */

int ppdb_mp_as_u64(const msgpack_object *o, uint64_t *out)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return PPDB_ERANGE;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return PPDB_ETYPE;
    *out = o->via.u64;
    return 0;
}

int ppdb_mp_as_u32(const msgpack_object *o, uint32_t *out)
{
    uint64_t v;
    int rc = ppdb_mp_as_u64(o, &v);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return PPDB_ERANGE;
    *out = (uint32_t)v;
    return 0;
}

int ppdb_mp_as_i64(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return PPDB_ETYPE;
    if (o->via.u64 > INT64_MAX)
        return PPDB_ERANGE;
    *out = (int64_t)o->via.u64;
    return 0;
}

int ppdb_mp_as_bool(const msgpack_object *o, bool *out)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return PPDB_ETYPE;
    *out = o->via.boolean;
    return 0;
}

int ppdb_mp_as_double(const msgpack_object *o, double *out)
{
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
        *out = o->via.f64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = (double)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = (double)o->via.i64;
        return 0;
    }
    return PPDB_ETYPE;
}

int ppdb_mp_as_str(const msgpack_object *o, const char **p_out, size_t *len_out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return PPDB_ETYPE;
    *p_out = o->via.str.ptr;
    *len_out = o->via.str.size;
    return 0;
}

int ppdb_mp_as_bin(const msgpack_object *o, const uint8_t **p_out, size_t *len_out)
{
    if (o->type != MSGPACK_OBJECT_BIN)
        return PPDB_ETYPE;
    *p_out = (const uint8_t *)o->via.bin.ptr;
    *len_out = o->via.bin.size;
    return 0;
}

int ppdb_mp_as_bin_fixed(const msgpack_object *o, void *out, size_t len)
{
    const uint8_t *p;
    size_t n;
    int rc = ppdb_mp_as_bin(o, &p, &n);
    if (rc)
        return rc;
    if (n != len)
        return PPDB_ERANGE;
    memcpy(out, p, n);
    return 0;
}

int ppdb_mp_as_cstr(const msgpack_object *o, char *out, size_t cap)
{
    const char *p;
    size_t n;
    int rc = ppdb_mp_as_str(o, &p, &n);
    if (rc)
        return rc;
    if (n >= cap)
        return PPDB_ERANGE;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int ppdb_mp_as_array(const msgpack_object *o, const msgpack_object **items_out, uint32_t *n_out)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return PPDB_ETYPE;
    *items_out = o->via.array.ptr;
    *n_out = o->via.array.size;
    return 0;
}

int ppdb_mp_map_get(const msgpack_object *o, uint64_t key, const msgpack_object **out)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return PPDB_ETYPE;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_POSITIVE_INTEGER && kv->key.via.u64 == key) {
            *out = &kv->val;
            return 0;
        }
    }
    return PPDB_ENOTFOUND;
}

/* Typed required-field getters: look the key up, then convert. */
#define MP_GETTER(name, type, conv)                                            \
    int name(const msgpack_object *map, uint64_t key, type *out)               \
    {                                                                          \
        const msgpack_object *v;                                               \
        int rc = ppdb_mp_map_get(map, key, &v);                                \
        return rc ? rc : conv(v, out);                                         \
    }
MP_GETTER(ppdb_mp_get_u64, uint64_t, ppdb_mp_as_u64)
MP_GETTER(ppdb_mp_get_u32, uint32_t, ppdb_mp_as_u32)
MP_GETTER(ppdb_mp_get_i64, int64_t, ppdb_mp_as_i64)
MP_GETTER(ppdb_mp_get_bool, bool, ppdb_mp_as_bool)
#undef MP_GETTER

int ppdb_mp_get_bin(const msgpack_object *map, uint64_t key, const uint8_t **p_out,
                    size_t *len_out)
{
    const msgpack_object *v;
    int rc = ppdb_mp_map_get(map, key, &v);
    return rc ? rc : ppdb_mp_as_bin(v, p_out, len_out);
}

int ppdb_mp_get_bin_fixed(const msgpack_object *map, uint64_t key, void *out, size_t len)
{
    const msgpack_object *v;
    int rc = ppdb_mp_map_get(map, key, &v);
    return rc ? rc : ppdb_mp_as_bin_fixed(v, out, len);
}

int ppdb_mp_get_str(const msgpack_object *map, uint64_t key, const char **p_out, size_t *len_out)
{
    const msgpack_object *v;
    int rc = ppdb_mp_map_get(map, key, &v);
    return rc ? rc : ppdb_mp_as_str(v, p_out, len_out);
}
