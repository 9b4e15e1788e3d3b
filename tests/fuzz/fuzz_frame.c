/*
 * fuzz_frame.c - the frame decoder on arbitrary bytes.
 *
 * First byte even: the rest is a received byte stream, decoded frame by
 * frame under a fixed key as a connection would (peek, open, walk) until
 * the first refusal; nothing may crash, over-read or loop. First byte odd:
 * the rest is a plaintext batch; walking it directly and walking it after
 * seal + open must agree (same result, same messages).
 */
#include "ppdb_stream.h"

#define MAX_FRAME 8192

struct tally {
    uint32_t count, replies;
    uint64_t sum;
};

static int tally_cb(void *data, const uint8_t *msg, size_t n, bool reply)
{
    struct tally *t = data;
    t->count++;
    t->replies += reply;
    for (size_t i = 0; i < n; i++)
        t->sum = t->sum * 31 + msg[i];
    return 0;
}

static void keyed(struct ppdb_noise_cs *cs)
{
    uint8_t k[32];
    memset(k, 0x42, sizeof(k));
    ppdb_noise_cs_init(cs, PPDB_NOISE_CHACHAPOLY);
    ppdb_noise_cs_set_key(cs, k);
}

static void decode_stream(const uint8_t *data, size_t size)
{
    struct ppdb_frame_rx rx;
    struct tally t = {0};
    uint8_t *copy = ppdb_malloc(size ? size : 1);
    memcpy(copy, data, size);
    memset(&rx, 0, sizeof(rx));
    keyed(&rx.cs);
    rx.max_frame = MAX_FRAME;
    rx.rekey_frames = 3;
    size_t off = 0;
    for (int i = 0; i < 1000; i++) {
        size_t len = 0;
        if (ppdb_frame_peek(&rx, copy + off, size - off, &len) < 0 || len == 0)
            break;
        if (ppdb_frame_open(&rx, copy + off, len, tally_cb, &t) != 0)
            break;
        off += len;
    }
    ppdb_free(copy);
}

static void roundtrip(const uint8_t *data, size_t size)
{
    struct ppdb_frame_tx tx;
    struct ppdb_frame_rx rx;
    struct tally direct = {0}, sealed = {0};
    if (size > MAX_FRAME - PPDB_FRAME_OVERHEAD)
        size = MAX_FRAME - PPDB_FRAME_OVERHEAD;
    int rc1 = ppdb_frame_walk(data, size, tally_cb, &direct);
    memset(&tx, 0, sizeof(tx));
    memset(&rx, 0, sizeof(rx));
    keyed(&tx.cs);
    keyed(&rx.cs);
    rx.max_frame = MAX_FRAME;
    uint8_t *buf = ppdb_malloc(MAX_FRAME);
    memcpy(buf + PPDB_FRAME_HDR_LEN, data, size);
    size_t len = ppdb_frame_seal(&tx, buf, size);
    size_t plen = 0;
    PPDB_ASSERT(ppdb_frame_peek(&rx, buf, len, &plen) == 0 && plen == len);
    int rc2 = ppdb_frame_open(&rx, buf, len, tally_cb, &sealed);
    PPDB_ASSERT_CMP(rc1, ==, rc2);
    PPDB_ASSERT_CMP(direct.count, ==, sealed.count);
    PPDB_ASSERT_CMP(direct.replies, ==, sealed.replies);
    PPDB_ASSERT(direct.sum == sealed.sum);
    /* The next frame opened from read-only bytes into another buffer. */
    struct tally from = {0};
    uint8_t *out = ppdb_malloc(MAX_FRAME);
    memcpy(buf + PPDB_FRAME_HDR_LEN, data, size);
    len = ppdb_frame_seal(&tx, buf, size);
    int rc3 = ppdb_frame_open_from(&rx, buf, len, out, tally_cb, &from);
    PPDB_ASSERT_CMP(rc1, ==, rc3);
    PPDB_ASSERT_CMP(direct.count, ==, from.count);
    PPDB_ASSERT(direct.sum == from.sum);
    ppdb_free(out);
    ppdb_free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        PPDB_ASSERT(ppdb_wire_init() == 0);
        ready = true;
    }
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        decode_stream(data + 1, size - 1);
    else
        roundtrip(data + 1, size - 1);
    return 0;
}
