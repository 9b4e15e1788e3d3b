/*
 * test_frame.c - sealed frames: batches of messages survive sealing, any
 * split of the byte stream and rekeying, for every cipher; every flipped
 * byte, replayed, reordered, oversized or undersized frame is refused and
 * counted under its own reason; frames open in place or from read-only
 * bytes alike.
 */
#include <sodium.h>

#include "check.h"
#include "ppdb_stream.h"

#define MAX_FRAME 8192
#define FRAMES    60

static struct ppdb_rng rng;

struct sink {
    uint8_t *expect; /* concatenated messages in send order */
    size_t expect_len, pos;
    uint32_t count, replies;
};

static int sink_cb(void *data, const uint8_t *msg, size_t n, bool reply)
{
    struct sink *s = data;
    CHECK_LE(s->pos + n, s->expect_len);
    CHECK_MEMEQ(msg, s->expect + s->pos, n);
    s->pos += n;
    s->count++;
    s->replies += reply;
    return 0;
}

static void pair(uint8_t cipher, struct ppdb_frame_tx *tx, struct ppdb_frame_rx *rx, uint64_t rekey)
{
    uint8_t k[32];
    ppdb_rng_bytes(&rng, k, sizeof(k));
    memset(tx, 0, sizeof(*tx));
    memset(rx, 0, sizeof(*rx));
    ppdb_noise_cs_init(&tx->cs, cipher);
    ppdb_noise_cs_init(&rx->cs, cipher);
    ppdb_noise_cs_set_key(&tx->cs, k);
    ppdb_noise_cs_set_key(&rx->cs, k);
    tx->rekey_frames = rekey;
    rx->rekey_frames = rekey;
    rx->max_frame = MAX_FRAME;
}

/* Builds one frame of random messages; appends them to expect. */
static size_t make_frame(struct ppdb_frame_tx *tx, uint8_t *out, struct ppdb_buf *expect,
                         uint32_t *nmsgs)
{
    size_t len = PPDB_FRAME_HDR_LEN;
    uint32_t count = 1 + (uint32_t)ppdb_rng_below(&rng, 20);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n = 1 + (uint32_t)ppdb_rng_below(&rng, 300);
        bool reply = ppdb_rng_below(&rng, 2);
        ppdb_store_u32be(out + len, n | (reply ? PPDB_FRAME_REPLY_BIT : 0));
        ppdb_rng_bytes(&rng, out + len + 4, n);
        CHECK_OK(ppdb_buf_append(expect, out + len + 4, n));
        len += 4 + n;
    }
    *nmsgs += count;
    return ppdb_frame_seal(tx, out, len - PPDB_FRAME_HDR_LEN);
}

static void test_roundtrip(uint8_t cipher)
{
    struct ppdb_frame_tx tx;
    struct ppdb_frame_rx rx;
    struct ppdb_buf wire, expect, in;
    uint32_t nmsgs = 0;
    pair(cipher, &tx, &rx, 7);
    ppdb_buf_init(&wire);
    ppdb_buf_init(&expect);
    ppdb_buf_init(&in);
    for (int f = 0; f < FRAMES; f++) {
        uint8_t frame[MAX_FRAME];
        size_t len = make_frame(&tx, frame, &expect, &nmsgs);
        CHECK_LE(len, MAX_FRAME);
        CHECK_OK(ppdb_buf_append(&wire, frame, len));
    }
    /* Feed the stream in random pieces, as reads would deliver it. */
    struct sink s = {expect.data, expect.len, 0, 0, 0};
    size_t fed = 0;
    for (int guard = 0; fed < wire.len && guard < 100000; guard++) {
        size_t want = 1 + (size_t)ppdb_rng_below(&rng, 3000);
        size_t piece = PPDB_MIN(wire.len - fed, want);
        CHECK_OK(ppdb_buf_append(&in, wire.data + fed, piece));
        fed += piece;
        size_t off = 0, len;
        for (;;) {
            CHECK_OK(ppdb_frame_peek(&rx, in.data + off, in.len - off, &len));
            if (len == 0)
                break;
            CHECK_OK(ppdb_frame_open(&rx, in.data + off, len, sink_cb, &s));
            off += len;
        }
        memmove(in.data, in.data + off, in.len - off);
        in.len -= off;
    }
    CHECK_EQ(fed, wire.len);
    CHECK_EQ(in.len, 0);
    CHECK_EQ(s.pos, expect.len);
    CHECK_EQ(s.count, nmsgs);
    CHECK_EQ(rx.stats.frames, FRAMES);
    CHECK_EQ(rx.stats.messages, nmsgs);
    CHECK_EQ(rx.stats.rekeys, FRAMES / 7);
    CHECK_EQ(tx.rekeys, FRAMES / 7);
    CHECK_GT(s.replies, 0);
    ppdb_buf_deinit(&wire);
    ppdb_buf_deinit(&expect);
    ppdb_buf_deinit(&in);
}

static int ignore_cb(void *data, const uint8_t *msg, size_t n, bool reply)
{
    return 0;
}

/* Frames opened from read-only bytes into a separate buffer, as the
 * endpoint does for a frame that arrives whole in one read, mixed with
 * frames opened in place after random splits (one nonce sequence across
 * both paths): the same messages, the source bytes untouched, a tampered
 * frame refused and counted, whatever the cipher. */
static void test_open_from(uint8_t cipher)
{
    struct ppdb_frame_tx tx;
    struct ppdb_frame_rx rx;
    struct ppdb_buf expect;
    uint8_t frame[MAX_FRAME], saved[MAX_FRAME], out[MAX_FRAME];
    uint32_t nmsgs = 0;
    pair(cipher, &tx, &rx, 3);
    ppdb_buf_init(&expect);
    struct sink s = {NULL, 0, 0, 0, 0};
    for (int f = 0; f < FRAMES; f++) {
        size_t len = make_frame(&tx, frame, &expect, &nmsgs);
        s.expect = expect.data; /* expect may have moved */
        s.expect_len = expect.len;
        size_t got = 0;
        CHECK_OK(ppdb_frame_peek(&rx, frame, len, &got));
        CHECK_EQ(got, len);
        if (f % 2 == 0) {
            memcpy(saved, frame, len);
            memset(out, 0xee, sizeof(out));
            CHECK_OK(ppdb_frame_open_from(&rx, frame, len, out, sink_cb, &s));
            CHECK_MEMEQ(frame, saved, len);                 /* the source is read-only */
            CHECK_EQ(out[len - PPDB_FRAME_OVERHEAD], 0xee); /* nothing past the plaintext */
        } else {
            uint8_t *copy = ppdb_malloc(len); /* the buffered path: in place */
            memcpy(copy, frame, len);
            CHECK_OK(ppdb_frame_open(&rx, copy, len, sink_cb, &s));
            ppdb_free(copy);
        }
    }
    CHECK_EQ(s.pos, expect.len);
    CHECK_EQ(s.count, nmsgs);
    CHECK_EQ(rx.stats.frames, FRAMES);
    CHECK_EQ(rx.stats.rekeys, FRAMES / 3);
    /* A flipped bit through the read-only path: refused, counted, and the
     * untouched original still opens afterwards. */
    size_t len = make_frame(&tx, frame, &expect, &nmsgs);
    memcpy(saved, frame, len);
    saved[len / 2] ^= 0x10;
    CHECK_ERR(ppdb_frame_open_from(&rx, saved, len, out, ignore_cb, NULL), PPDB_EAUTH);
    CHECK_EQ(rx.stats.auth_failed, 1);
    CHECK_OK(ppdb_frame_open_from(&rx, frame, len, out, ignore_cb, NULL));
    ppdb_buf_deinit(&expect);
}

static void test_rejections(uint8_t cipher)
{
    struct ppdb_frame_tx tx;
    struct ppdb_frame_rx rx;
    struct ppdb_buf expect;
    uint8_t f1[MAX_FRAME], f2[MAX_FRAME], copy[MAX_FRAME];
    uint32_t n = 0;
    ppdb_buf_init(&expect);

    /* Every flipped bit past the header fails (tag, ciphertext). */
    pair(cipher, &tx, &rx, 0);
    size_t l1 = make_frame(&tx, f1, &expect, &n);
    for (size_t pos = 0; pos < l1; pos++) {
        memcpy(copy, f1, l1);
        copy[pos] ^= (uint8_t)(1u << (pos % 8));
        size_t len = 0;
        int rc = ppdb_frame_peek(&rx, copy, l1, &len);
        if (rc == 0 && len == l1)
            CHECK_ERR(ppdb_frame_open(&rx, copy, l1, ignore_cb, NULL), PPDB_EAUTH);
        else
            CHECK(rc < 0 || len != l1); /* a changed length never opens */
    }
    CHECK_GE(rx.stats.auth_failed, l1 - PPDB_FRAME_HDR_LEN);
    CHECK_OK(ppdb_frame_open(&rx, f1, l1, ignore_cb, NULL)); /* the real one still opens */

    /* Replay of an opened frame: named as such. */
    uint64_t before = rx.stats.replayed;
    pair(cipher, &tx, &rx, 0);
    l1 = make_frame(&tx, f1, &expect, &n);
    size_t l2 = make_frame(&tx, f2, &expect, &n);
    memcpy(copy, f1, l1);
    CHECK_OK(ppdb_frame_open(&rx, f1, l1, ignore_cb, NULL));
    CHECK_ERR(ppdb_frame_open(&rx, copy, l1, ignore_cb, NULL), PPDB_EAUTH);
    CHECK_EQ(rx.stats.replayed, before + 1);

    /* Reordering: frame 2 first fails. */
    pair(cipher, &tx, &rx, 0);
    l1 = make_frame(&tx, f1, &expect, &n);
    l2 = make_frame(&tx, f2, &expect, &n);
    CHECK_ERR(ppdb_frame_open(&rx, f2, l2, ignore_cb, NULL), PPDB_EAUTH);
    CHECK_EQ(rx.stats.auth_failed, 1);

    /* Oversized and undersized headers. */
    uint8_t hdr[4];
    size_t len;
    ppdb_store_u32be(hdr, MAX_FRAME);
    CHECK_ERR(ppdb_frame_peek(&rx, hdr, 4, &len), PPDB_ELIMIT);
    CHECK_EQ(rx.stats.oversized, 1);
    ppdb_store_u32be(hdr, 0xffffffffu);
    CHECK_ERR(ppdb_frame_peek(&rx, hdr, 4, &len), PPDB_ELIMIT);
    ppdb_store_u32be(hdr, PPDB_NOISE_TAG_LEN - 1);
    CHECK_ERR(ppdb_frame_peek(&rx, hdr, 4, &len), PPDB_ETRUNC);
    CHECK_EQ(rx.stats.malformed, 1);
    CHECK_OK(ppdb_frame_peek(&rx, hdr, 3, &len)); /* incomplete header: wait */
    CHECK_EQ(len, 0);
    ppdb_buf_deinit(&expect);
}

static void test_walk(void)
{
    uint8_t ok[] = {0, 0, 0, 2, 'h', 'i', 0x80, 0, 0, 1, 'x'};
    uint8_t zero[] = {0, 0, 0, 0};
    uint8_t short_msg[] = {0, 0, 0, 5, 'a'};
    uint8_t short_hdr[] = {0, 0};
    struct sink s = {(uint8_t *)"hix", 3, 0, 0, 0};
    CHECK_OK(ppdb_frame_walk(ok, sizeof(ok), sink_cb, &s));
    CHECK_EQ(s.count, 2);
    CHECK_EQ(s.replies, 1);
    CHECK_ERR(ppdb_frame_walk(zero, sizeof(zero), ignore_cb, NULL), PPDB_EPROTO);
    CHECK_ERR(ppdb_frame_walk(short_msg, sizeof(short_msg), ignore_cb, NULL), PPDB_EPROTO);
    CHECK_ERR(ppdb_frame_walk(short_hdr, sizeof(short_hdr), ignore_cb, NULL), PPDB_EPROTO);
    CHECK_OK(ppdb_frame_walk(NULL, 0, ignore_cb, NULL)); /* an empty frame is a keepalive */
}

int main(int argc, char **argv)
{
    struct ppdb_alloc_stats base;
    CHECK_OK(ppdb_wire_init());
    ppdb_rng_seed(&rng, check_seed(argc, argv, 11));
    ppdb_alloc_stats(&base);
    uint8_t ciphers[] = {PPDB_NOISE_CHACHAPOLY, PPDB_NOISE_AESGCM, PPDB_NOISE_NULL};
    for (size_t i = 0; i < sizeof(ciphers); i++) {
        if (ciphers[i] == PPDB_NOISE_AESGCM && !crypto_aead_aes256gcm_is_available())
            continue;
        test_roundtrip(ciphers[i]);
        test_rejections(ciphers[i]);
        test_open_from(ciphers[i]);
    }
    test_walk();
    check_no_leaks(&base);
    printf("test_frame: ok\n");
    return 0;
}
