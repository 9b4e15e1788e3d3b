/*
 * fuzz_mp.c - the strict msgpack parser on arbitrary bytes: it must never
 * crash, over-read or allocate from a forged length; whatever parses must
 * re-validate to the same length and survive every accessor.
 */
#include "ppdb_mp.h"

static void touch(const msgpack_object *o, int depth)
{
    uint64_t u;
    int64_t i;
    double d;
    const char *s;
    const uint8_t *b;
    size_t n;
    const msgpack_object *items, *v;
    uint32_t count;
    (void)ppdb_mp_as_u64(o, &u);
    (void)ppdb_mp_as_i64(o, &i);
    (void)ppdb_mp_as_double(o, &d);
    (void)ppdb_mp_as_str(o, &s, &n);
    (void)ppdb_mp_as_bin(o, &b, &n);
    (void)ppdb_mp_map_get(o, 1, &v);
    if (depth < 16 && ppdb_mp_as_array(o, &items, &count) == 0)
        for (uint32_t k = 0; k < count; k++)
            touch(&items[k], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ppdb_mp_doc doc;
    size_t used, again;
    if (ppdb_mp_parse(data, size, NULL, &doc, &used) != 0)
        return 0;
    PPDB_ASSERT(used <= size);
    PPDB_ASSERT(ppdb_mp_validate(data, used, NULL, &again) == 0);
    PPDB_ASSERT(again == used);
    touch(&doc.root, 0);
    ppdb_mp_doc_deinit(&doc);
    return 0;
}
