/*
 * test_wire_replay.c - the replay table alone: window semantics, LRU
 * eviction with watermarks, fixed memory with 10,000 sender boots, and a
 * randomized comparison against an exact (unbounded) model.
 */
#include "check.h"
#include "ppdb_wire.h"

#define BOOT_MS 1000000

static void epoch_of(uint32_t sender, uint8_t out[PPDB_REPLAY_EPOCH_LEN])
{
    memset(out, 0, PPDB_REPLAY_EPOCH_LEN);
    ppdb_store_u64be(out, ppdb_mix64(sender + 1));
    ppdb_store_u32be(out + 8, sender);
}

static void test_window(void)
{
    struct ppdb_replay r;
    uint8_t e[PPDB_REPLAY_EPOCH_LEN];
    epoch_of(1, e);
    CHECK_OK(ppdb_replay_init(&r, 4, 8, BOOT_MS));
    CHECK_ERR(ppdb_replay_accept(&r, e, 5, BOOT_MS - 1), PPDB_EREPLAY); /* before our boot */
    CHECK_OK(ppdb_replay_accept(&r, e, 5, BOOT_MS));
    CHECK_ERR(ppdb_replay_accept(&r, e, 5, BOOT_MS), PPDB_EREPLAY);
    CHECK_OK(ppdb_replay_accept(&r, e, 3, BOOT_MS));
    CHECK_OK(ppdb_replay_accept(&r, e, 4, BOOT_MS));
    CHECK_ERR(ppdb_replay_accept(&r, e, 3, BOOT_MS), PPDB_EREPLAY);
    CHECK_OK(ppdb_replay_accept(&r, e, 5 + 64, BOOT_MS));
    CHECK_ERR(ppdb_replay_accept(&r, e, 5, BOOT_MS), PPDB_EREPLAY); /* moved to word 1 */
    CHECK_OK(ppdb_replay_accept(&r, e, 6, BOOT_MS));
    CHECK_OK(ppdb_replay_accept(&r, e, 5 + 64 + 127, BOOT_MS));
    CHECK_ERR(ppdb_replay_accept(&r, e, 5 + 64, BOOT_MS), PPDB_EREPLAY);
    CHECK_ERR(ppdb_replay_accept(&r, e, 5 + 64 - 1, BOOT_MS), PPDB_EREPLAY); /* below window */
    CHECK_OK(ppdb_replay_accept(&r, e, 5 + 64 + 1, BOOT_MS));
    CHECK_OK(ppdb_replay_accept(&r, e, 1000000, BOOT_MS)); /* a big jump clears it */
    CHECK_OK(ppdb_replay_accept(&r, e, 1000000 - 127, BOOT_MS));
    ppdb_replay_deinit(&r);
}

static void test_eviction_watermark(void)
{
    struct ppdb_replay r;
    uint8_t e[PPDB_REPLAY_EPOCH_LEN];
    CHECK_OK(ppdb_replay_init(&r, 2, 1, BOOT_MS)); /* one bucket: worst case */
    epoch_of(1, e);
    CHECK_OK(ppdb_replay_accept(&r, e, 1, BOOT_MS + 100));
    CHECK_OK(ppdb_replay_accept(&r, e, 2, BOOT_MS + 200));
    epoch_of(2, e);
    CHECK_OK(ppdb_replay_accept(&r, e, 1, BOOT_MS + 300));
    epoch_of(3, e);
    CHECK_OK(ppdb_replay_accept(&r, e, 1, BOOT_MS + 300)); /* evicts boot 1 */
    CHECK_EQ(r.evictions, 1);
    /* Boot 1's old datagrams come back: below its watermark. */
    epoch_of(1, e);
    CHECK_ERR(ppdb_replay_accept(&r, e, 2, BOOT_MS + 200), PPDB_EREPLAY);
    CHECK_ERR(ppdb_replay_accept(&r, e, 1, BOOT_MS + 100), PPDB_EREPLAY);
    CHECK_EQ(r.evictions, 1); /* refusals do not evict */
    /* Its new datagrams are fine. */
    CHECK_OK(ppdb_replay_accept(&r, e, 3, BOOT_MS + 201));
    CHECK_EQ(r.evictions, 2);
    CHECK_ERR(ppdb_replay_accept(&r, e, 3, BOOT_MS + 201), PPDB_EREPLAY);
    /* LRU: touching boot 1 keeps it; the next newcomer evicts boot 3. */
    epoch_of(4, e);
    CHECK_OK(ppdb_replay_accept(&r, e, 1, BOOT_MS + 400));
    epoch_of(1, e);
    CHECK_ERR(ppdb_replay_accept(&r, e, 3, BOOT_MS + 201), PPDB_EREPLAY); /* still in window */
    ppdb_replay_deinit(&r);
}

/* 10,000 boots, 1,024 entries: memory is fixed and every replay within
 * the run is refused, whether the boot is still cached or evicted. */
static void test_many_senders(uint64_t seed)
{
    struct ppdb_replay r;
    CHECK_OK(ppdb_replay_init(&r, 1024, 4096, BOOT_MS));
    size_t mem = ppdb_replay_memory(&r);
    printf("replay table: %zu bytes for 1024 boots + 4096 watermarks\n", mem);
    CHECK_LT(mem, 128 * 1024);
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    int64_t now = BOOT_MS;
    uint64_t *next = ppdb_calloc(10000, sizeof(uint64_t));
    CHECK(next != NULL);
    uint8_t e[PPDB_REPLAY_EPOCH_LEN];
    int refused = 0;
    for (int step = 0; step < 200000; step++) {
        uint32_t s = (uint32_t)ppdb_rng_below(&rng, 10000);
        now += (int64_t)ppdb_rng_below(&rng, 2);
        epoch_of(s, e);
        uint64_t c = ++next[s];
        int rc = ppdb_replay_accept(&r, e, c, now);
        /* A fresh counter is accepted unless its boot was evicted during
         * this very millisecond (the watermark is ms-granular). */
        if (rc != 0) {
            CHECK_EQ(rc, PPDB_EREPLAY);
            refused++;
        }
        if (ppdb_rng_below(&rng, 4) == 0)
            CHECK_ERR(ppdb_replay_accept(&r, e, c, now), PPDB_EREPLAY);
    }
    CHECK_EQ(ppdb_replay_memory(&r), mem);
    CHECK_GT(r.evictions, 1000);
    printf("fresh datagrams refused by a watermark: %d of 200000\n", refused);
    CHECK_LT(refused, 200);
    ppdb_free(next);
    ppdb_replay_deinit(&r);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 11);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    test_window();
    test_eviction_watermark();
    test_many_senders(seed);
    check_no_leaks(&base);
    printf("test_wire_replay: ok\n");
    return 0;
}
