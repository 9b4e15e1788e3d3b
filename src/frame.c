/*
 * frame.c - sealed frames of the stream layer.
 *
 *   frame  = u32be len | AEAD(batch) | tag(16)     len = |AEAD(batch)| + 16
 *   batch  = { u32be word | message }*             word = reply << 31 | |message|
 *
 * The 4-byte length header is the associated data, so a changed length is
 * an authentication failure like any other flipped bit. Nonces are the
 * Noise CipherState counter of each direction: TCP delivers in order, so
 * both ends know the next nonce and any replayed, reordered or dropped
 * frame fails to open. Both ends REKEY after the same number of frames.
 *
 * Why seal in place: the sender builds the batch directly after a reserved
 * header in the buffer it hands to the env, so sealing costs no copy. The
 * receiver opens in place in its buffer, or, for a frame that arrived whole
 * in one env read, straight from the env's (read-only) buffer into its own
 * (ppdb_frame_open_from): the decryption is then the only copy.
 *
 * Invariants: a frame is opened at most once (the counter advances on
 * success only, and a failure is fatal for the connection); every outcome
 * of peek/open lands in exactly one counter of ppdb_frame_stats.
 */
#include "ppdb_stream.h"

static void rekey_tick(struct ppdb_noise_cs *cs, uint64_t every, uint64_t *since, uint64_t *count)
{
    if (every == 0 || ++*since < every)
        return;
    ppdb_noise_cs_rekey(cs);
    *since = 0;
    (*count)++;
}

size_t ppdb_frame_seal(struct ppdb_frame_tx *tx, uint8_t *buf, size_t n)
{
    PPDB_ASSERT_CMP(n, <=, UINT32_MAX - PPDB_NOISE_TAG_LEN);
    ppdb_store_u32be(buf, (uint32_t)(n + PPDB_NOISE_TAG_LEN));
    int rc = ppdb_noise_cs_encrypt(&tx->cs, buf, PPDB_FRAME_HDR_LEN, buf + PPDB_FRAME_HDR_LEN, n,
                                   buf + PPDB_FRAME_HDR_LEN);
    PPDB_ASSERT(rc == 0); /* 2^64 frames do not happen; rekey keeps n */
    rekey_tick(&tx->cs, tx->rekey_frames, &tx->since_rekey, &tx->rekeys);
    return PPDB_FRAME_OVERHEAD + n;
}

int ppdb_frame_peek(struct ppdb_frame_rx *rx, const uint8_t *p, size_t n, size_t *frame_len_out)
{
    *frame_len_out = 0;
    if (n < PPDB_FRAME_HDR_LEN)
        return 0;
    uint64_t len = ppdb_load_u32be(p);
    if (len + PPDB_FRAME_HDR_LEN > rx->max_frame) {
        rx->stats.oversized++;
        return PPDB_ELIMIT;
    }
    if (len < PPDB_NOISE_TAG_LEN) {
        rx->stats.malformed++;
        return PPDB_ETRUNC;
    }
    if (n >= len + PPDB_FRAME_HDR_LEN)
        *frame_len_out = (size_t)len + PPDB_FRAME_HDR_LEN;
    return 0;
}

int ppdb_frame_walk(const uint8_t *p, size_t n, ppdb_frame_msg_cb cb, void *data)
{
    struct ppdb_rd r;
    if (n == 0)
        return 0; /* an empty batch (keepalive); p may be NULL */
    ppdb_rd_init(&r, p, n);
    while (ppdb_rd_left(&r) > 0) {
        uint32_t word;
        const uint8_t *msg;
        if (ppdb_rd_u32be(&r, &word) < 0)
            return PPDB_EPROTO;
        uint32_t len = word & ~PPDB_FRAME_REPLY_BIT;
        if (len == 0 || ppdb_rd_bytes(&r, len, &msg) < 0)
            return PPDB_EPROTO;
        int rc = cb(data, msg, len, (word & PPDB_FRAME_REPLY_BIT) != 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool recent_tag(const struct ppdb_frame_rx *rx, const uint8_t *tag)
{
    uint32_t n = PPDB_MIN(rx->ntags, PPDB_FRAME_REPLAY_TAGS);
    for (uint32_t i = 0; i < n; i++)
        if (memcmp(rx->tags[i], tag, PPDB_NOISE_TAG_LEN) == 0)
            return true;
    return false;
}

struct walk_count {
    ppdb_frame_msg_cb cb;
    void *data;
    uint64_t *messages;
};

static int count_msg_cb(void *data, const uint8_t *msg, size_t n, bool reply)
{
    struct walk_count *w = data;
    (*w->messages)++;
    return w->cb(w->data, msg, n, reply);
}

/* Opens the frame whose header is hdr and ciphertext+tag ct[0..clen) into
 * out (may equal ct), then walks its messages. */
static int open_into(struct ppdb_frame_rx *rx, const uint8_t *hdr, const uint8_t *ct, size_t clen,
                     uint8_t *out, ppdb_frame_msg_cb cb, void *data)
{
    const uint8_t *tag = ct + clen - PPDB_NOISE_TAG_LEN;
    int rc = ppdb_noise_cs_decrypt(&rx->cs, hdr, PPDB_FRAME_HDR_LEN, ct, clen, out);
    if (rc < 0) {
        if (recent_tag(rx, tag))
            rx->stats.replayed++;
        else
            rx->stats.auth_failed++;
        return PPDB_EAUTH;
    }
    memcpy(rx->tags[rx->ntags++ % PPDB_FRAME_REPLAY_TAGS], tag, PPDB_NOISE_TAG_LEN);
    rx->stats.frames++;
    rx->stats.bytes += clen + PPDB_FRAME_HDR_LEN;
    rekey_tick(&rx->cs, rx->rekey_frames, &rx->since_rekey, &rx->stats.rekeys);
    struct walk_count w = {cb, data, &rx->stats.messages};
    rc = ppdb_frame_walk(out, clen - PPDB_NOISE_TAG_LEN, count_msg_cb, &w);
    if (rc == PPDB_EPROTO)
        rx->stats.malformed++;
    return rc;
}

int ppdb_frame_open(struct ppdb_frame_rx *rx, uint8_t *frame, size_t len, ppdb_frame_msg_cb cb,
                    void *data)
{
    PPDB_ASSERT_CMP(len, >=, PPDB_FRAME_OVERHEAD);
    PPDB_ASSERT_CMP(ppdb_load_u32be(frame) + PPDB_FRAME_HDR_LEN, ==, len);
    uint8_t *ct = frame + PPDB_FRAME_HDR_LEN;
    return open_into(rx, frame, ct, len - PPDB_FRAME_HDR_LEN, ct, cb, data);
}

int ppdb_frame_open_from(struct ppdb_frame_rx *rx, const uint8_t *frame, size_t len, uint8_t *out,
                         ppdb_frame_msg_cb cb, void *data)
{
    PPDB_ASSERT_CMP(len, >=, PPDB_FRAME_OVERHEAD);
    PPDB_ASSERT_CMP(ppdb_load_u32be(frame) + PPDB_FRAME_HDR_LEN, ==, len);
    uintptr_t o = (uintptr_t)out, f = (uintptr_t)frame;
    PPDB_ASSERT(out != NULL && (o + len <= f || f + len <= o)); /* no overlap */
    return open_into(rx, frame, frame + PPDB_FRAME_HDR_LEN, len - PPDB_FRAME_HDR_LEN, out, cb,
                     data);
}
