/*
 * fuzz_envelope.c - the envelope decoder on arbitrary bytes, with a
 * registry holding a schema of every field kind. A decoded envelope must
 * satisfy its schema's promises (body is a map, header version current),
 * and decode must never crash, leak or over-read.
 */
#include "ppdb_wire.h"

static const struct ppdb_wire_field all_fields[] = {
    {.key = 0, .kind = PPDB_WK_UINT, .required = true},
    {.key = 1, .kind = PPDB_WK_INT},
    {.key = 2, .kind = PPDB_WK_BOOL},
    {.key = 3, .kind = PPDB_WK_STR, .max_len = 16},
    {.key = 4, .kind = PPDB_WK_BIN, .min_len = 2, .max_len = 8},
    {.key = 5, .kind = PPDB_WK_ARRAY, .max_len = 4},
    {.key = 6, .kind = PPDB_WK_MAP, .max_len = 4},
    {.key = 7, .kind = PPDB_WK_ANY},
};
static const struct ppdb_wire_schema all_schema = {0x31, "dht.fuzz", all_fields,
                                                   PPDB_ARRAY_LEN(all_fields)};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ppdb_wire_registry reg;
    struct ppdb_envelope e;
    ppdb_wire_registry_init(&reg);
    PPDB_ASSERT(ppdb_wire_registry_add(&reg, &all_schema) == 0);
    int rc = ppdb_envelope_decode(&reg, data, size, &e);
    if (rc != 0) {
        PPDB_ASSERT(!e.live);
        return 0;
    }
    PPDB_ASSERT(e.live && e.hdr.version == PPDB_WIRE_VERSION);
    PPDB_ASSERT(e.body->type == MSGPACK_OBJECT_MAP);
    PPDB_ASSERT(e.schema == ppdb_wire_registry_find(&reg, e.hdr.type));
    uint64_t u;
    PPDB_ASSERT(e.schema != &all_schema || ppdb_mp_get_u64(e.body, 0, &u) == 0);
    ppdb_envelope_deinit(&e);
    return 0;
}
