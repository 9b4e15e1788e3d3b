/*
 * ppdb_mp.h - strict msgpack over msgpack-c.
 *
 * Writing: a packer into a ppdb_buf with a sticky error, so encoders write
 * straight-line code and check once at the end.
 *
 * Reading: ppdb_mp_parse first walks the bytes with a bounds-checked cursor
 * of its own (depth, element count and every declared length checked
 * against the bytes actually present), and only then lets msgpack-c build
 * the object tree. A truncated, oversized, too deep or malformed message is
 * PPDB_ETRUNC / PPDB_ELIMIT / PPDB_EPROTO, never a crash, an over-read or a
 * huge allocation driven by a forged length. Typed accessors then return
 * PPDB_ETYPE for a wrongly typed field and PPDB_ERANGE for a value that
 * does not fit.
 *
 * Messages are maps keyed by small unsigned integers (compact, and unknown
 * newer keys are simply not looked up: forward compatible).
 */
#ifndef PPDB_MP_H
#define PPDB_MP_H

#include <msgpack.h>

#include "ppdb_base.h"

/* ---------------------------------------------------------------- writer */

struct ppdb_mpw {
    msgpack_packer pk;
    struct ppdb_buf *buf; /* borrowed */
    int err;              /* first error, sticky */
};

void ppdb_mpw_init(struct ppdb_mpw *w, struct ppdb_buf *buf);
void ppdb_mpw_map(struct ppdb_mpw *w, uint32_t n);
void ppdb_mpw_array(struct ppdb_mpw *w, uint32_t n);
void ppdb_mpw_uint(struct ppdb_mpw *w, uint64_t v);
void ppdb_mpw_int(struct ppdb_mpw *w, int64_t v);
void ppdb_mpw_bool(struct ppdb_mpw *w, bool v);
void ppdb_mpw_nil(struct ppdb_mpw *w);
void ppdb_mpw_double(struct ppdb_mpw *w, double v);
void ppdb_mpw_str(struct ppdb_mpw *w, const char *s, size_t len);
void ppdb_mpw_cstr(struct ppdb_mpw *w, const char *s);
void ppdb_mpw_bin(struct ppdb_mpw *w, const void *p, size_t len);
/* 0 or the first error (PPDB_ENOMEM). */
static inline int ppdb_mpw_error(const struct ppdb_mpw *w)
{
    return w->err;
}

/* ---------------------------------------------------------------- reader */

struct ppdb_mp_limits {
    uint32_t max_depth;    /* nesting of arrays/maps (default 8) */
    uint32_t max_elements; /* total objects in one message (default 4096) */
};

/* A parsed message. Objects point into the zone and into the input bytes
 * (str/bin are not copied): the input must outlive the doc. */
struct ppdb_mp_doc {
    msgpack_zone zone;
    msgpack_object root;
    bool zone_live;
};

/* Parse exactly one msgpack object at the start of p[0..n). *used_out (may
 * be NULL) receives its length; with used_out NULL, trailing bytes are an
 * error (PPDB_EPROTO). limits may be NULL for the defaults. On error the doc
 * needs no deinit. */
int ppdb_mp_parse(const uint8_t *p, size_t n, const struct ppdb_mp_limits *limits,
                  struct ppdb_mp_doc *doc, size_t *used_out);
void ppdb_mp_doc_deinit(struct ppdb_mp_doc *doc);
/* Only the structural check (no tree); what the parser runs first. */
int ppdb_mp_validate(const uint8_t *p, size_t n, const struct ppdb_mp_limits *limits,
                     size_t *used_out);

int ppdb_mp_as_u64(const msgpack_object *o, uint64_t *out);
int ppdb_mp_as_u32(const msgpack_object *o, uint32_t *out);
int ppdb_mp_as_i64(const msgpack_object *o, int64_t *out);
int ppdb_mp_as_bool(const msgpack_object *o, bool *out);
int ppdb_mp_as_double(const msgpack_object *o, double *out);
/* str and bin point into the input bytes; not NUL-terminated. */
int ppdb_mp_as_str(const msgpack_object *o, const char **p_out, size_t *len_out);
int ppdb_mp_as_bin(const msgpack_object *o, const uint8_t **p_out, size_t *len_out);
/* bin of exactly `len` bytes, copied into out. */
int ppdb_mp_as_bin_fixed(const msgpack_object *o, void *out, size_t len);
/* Copies a str into out (size cap, NUL-terminated); PPDB_ERANGE if it does not fit. */
int ppdb_mp_as_cstr(const msgpack_object *o, char *out, size_t cap);
int ppdb_mp_as_array(const msgpack_object *o, const msgpack_object **items_out, uint32_t *n_out);

/* Field of a map keyed by unsigned integers: PPDB_ENOTFOUND when absent,
 * PPDB_ETYPE when o is not a map. The first occurrence wins. */
int ppdb_mp_map_get(const msgpack_object *o, uint64_t key, const msgpack_object **out);
/* Typed shortcuts for required fields. */
int ppdb_mp_get_u64(const msgpack_object *map, uint64_t key, uint64_t *out);
int ppdb_mp_get_u32(const msgpack_object *map, uint64_t key, uint32_t *out);
int ppdb_mp_get_i64(const msgpack_object *map, uint64_t key, int64_t *out);
int ppdb_mp_get_bool(const msgpack_object *map, uint64_t key, bool *out);
int ppdb_mp_get_bin(const msgpack_object *map, uint64_t key, const uint8_t **p_out,
                    size_t *len_out);
int ppdb_mp_get_bin_fixed(const msgpack_object *map, uint64_t key, void *out, size_t len);
int ppdb_mp_get_str(const msgpack_object *map, uint64_t key, const char **p_out, size_t *len_out);

#endif /* PPDB_MP_H */
