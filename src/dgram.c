/*
 * dgram.c - sealed datagrams: the clear header, XChaCha20-Poly1305 under
 * the cluster key, and the checks a received datagram passes in order.
 *
 * Layout (ppdb_wire.h, docs/formats/wire.md): a 38-byte clear header
 * [magic, flags, key id, nonce (boot epoch 16 ‖ counter 8), sender wall ms]
 * that is the AEAD's associated data, the encrypted envelope, a 16-byte
 * tag. The nonce is unique per (key, datagram) across the whole mesh: the
 * epoch is the boot's wall ms plus 8 random bytes from the env, the counter
 * only ever increases within a boot.
 *
 * Open runs the cheap structural checks first, then authentication, and
 * only authenticated datagrams reach the clock check, the replay table
 * (the only state they change) and the envelope decoder. Each outcome is
 * counted under exactly one reason, and nothing a datagram carries can
 * stop the endpoint from serving the next one.
 *
 * The null cipher (insecure mode, and the simulator's "encryption off")
 * keeps the layout and the replay checks and replaces the AEAD by a
 * CRC-32C of header and plaintext: it catches corruption, not forgery.
 */
#include <sodium.h>

#include "ppdb_wire.h"

_Static_assert(PPDB_DGRAM_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(PPDB_DGRAM_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(PPDB_DGRAM_NONCE_OFF + PPDB_DGRAM_NONCE_LEN == PPDB_DGRAM_WALL_OFF, "layout");
_Static_assert(PPDB_DGRAM_WALL_OFF + 8 == PPDB_DGRAM_HDR_LEN, "layout");
_Static_assert(PPDB_REPLAY_EPOCH_LEN + 8 == PPDB_DGRAM_NONCE_LEN, "nonce = epoch ‖ counter");
_Static_assert(PPDB_DGRAM_MAX_PLAIN == 1346, "documented in wire.md");

#define COUNTER_OFF (PPDB_DGRAM_NONCE_OFF + PPDB_REPLAY_EPOCH_LEN)

void ppdb_dgram_options_default(struct ppdb_dgram_options *o)
{
    memset(o, 0, sizeof(*o));
    o->max_age_ms = 30000;
    o->max_future_ms = 10000;
    o->replay_senders = 1024;
    o->replay_marks = 4096;
    o->null_cipher = false;
}

int ppdb_dgram_init(struct ppdb_dgram *d, struct ppdb_env *env, const struct ppdb_keyring *kr,
                    const struct ppdb_wire_registry *reg, const struct ppdb_node_id *self,
                    const struct ppdb_dgram_options *o)
{
    memset(d, 0, sizeof(*d));
    d->env = env;
    d->kr = kr;
    d->reg = reg;
    d->self = *self;
    if (o)
        d->opt = *o;
    else
        ppdb_dgram_options_default(&d->opt);
    int64_t now_ms = ppdb_env_wall_ms(env);
    ppdb_store_u64be(d->epoch, (uint64_t)now_ms);
    ppdb_env_random(env, d->epoch + 8, 8);
    ppdb_buf_init(&d->scratch);
    return ppdb_replay_init(&d->replay, d->opt.replay_senders, d->opt.replay_marks, now_ms);
}

void ppdb_dgram_deinit(struct ppdb_dgram *d)
{
    ppdb_replay_deinit(&d->replay);
    ppdb_buf_deinit(&d->scratch);
    sodium_memzero(d->epoch, sizeof(d->epoch));
}

uint64_t ppdb_dgram_stats_rejected(const struct ppdb_dgram_stats *s)
{
    return s->oversized + s->truncated + s->bad_version + s->bad_flags + s->mode_refused +
           s->unknown_key + s->auth_failed + s->stale + s->future + s->replayed + s->bad_envelope +
           s->unknown_type;
}

/* ------------------------------------------------------------------ seal */

static void null_tag(const uint8_t *p, size_t n, uint8_t tag[PPDB_DGRAM_TAG_LEN])
{
    memset(tag, 0, PPDB_DGRAM_TAG_LEN);
    ppdb_store_u32be(tag, ppdb_crc32c_mask(ppdb_crc32c(p, n)));
}

/* Writes the clear header; the key and flags were chosen by the caller. */
static void write_header(struct ppdb_dgram *d, uint8_t *out, uint8_t flags, uint32_t key_id)
{
    out[0] = PPDB_DGRAM_MAGIC;
    out[1] = flags;
    ppdb_store_u32be(out + 2, key_id);
    memcpy(out + PPDB_DGRAM_NONCE_OFF, d->epoch, PPDB_REPLAY_EPOCH_LEN);
    ppdb_store_u64be(out + COUNTER_OFF, d->counter);
    ppdb_store_u64be(out + PPDB_DGRAM_WALL_OFF, (uint64_t)ppdb_env_wall_ms(d->env));
}

int ppdb_dgram_seal(struct ppdb_dgram *d, const uint8_t *envelope, size_t len, uint8_t *out,
                    size_t cap, size_t *len_out)
{
    const struct ppdb_wire_key *key = ppdb_keyring_primary(d->kr);
    if (len > PPDB_DGRAM_MAX_PLAIN || cap < len + PPDB_DGRAM_OVERHEAD) {
        d->stats.seal_errors++;
        return PPDB_ELIMIT;
    }
    if (!key && !d->kr->insecure) {
        d->stats.seal_errors++;
        return PPDB_ENOKEY;
    }
    PPDB_ASSERT(d->counter < UINT64_MAX); /* 2^64 datagrams in one boot */
    d->counter++;
    uint8_t flags = !key ? PPDB_DGRAM_F_INSECURE : d->opt.null_cipher ? PPDB_DGRAM_F_NULL : 0;
    write_header(d, out, flags, key ? key->id : PPDB_KEY_ID_NONE);
    uint8_t *ct = out + PPDB_DGRAM_HDR_LEN;
    if (flags != 0) {
        memmove(ct, envelope, len);
        null_tag(out, PPDB_DGRAM_HDR_LEN + len, ct + len);
    } else {
        unsigned long long clen = 0;
        crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, envelope, len, out,
                                                   PPDB_DGRAM_HDR_LEN, NULL,
                                                   out + PPDB_DGRAM_NONCE_OFF, key->dgram_key);
        PPDB_ASSERT_CMP(clen, ==, len + PPDB_DGRAM_TAG_LEN);
    }
    *len_out = len + PPDB_DGRAM_OVERHEAD;
    d->stats.sealed++;
    return 0;
}

int ppdb_dgram_seal_msg(struct ppdb_dgram *d, uint32_t type, uint64_t request_id,
                        const uint8_t *body, size_t body_len, uint8_t *out, size_t *len_out)
{
    struct ppdb_envelope_hdr h = {
        .version = PPDB_WIRE_VERSION, .type = type, .sender = d->self, .request_id = request_id};
    ppdb_buf_reset(&d->scratch);
    int rc = ppdb_envelope_encode(&d->scratch, &h, body, body_len);
    if (rc != 0) {
        d->stats.seal_errors++;
        return rc;
    }
    return ppdb_dgram_seal(d, d->scratch.data, d->scratch.len, out, PPDB_DGRAM_MAX, len_out);
}

/* ------------------------------------------------------------------ open */

/* Structural checks and key choice; 0 with *key_out (NULL: null cipher). */
static int check_header(struct ppdb_dgram *d, const uint8_t *pkt, size_t len,
                        const struct ppdb_wire_key **key_out)
{
    struct ppdb_dgram_stats *st = &d->stats;
    if (len > PPDB_DGRAM_MAX)
        return st->oversized++, PPDB_ELIMIT;
    if (len < PPDB_DGRAM_OVERHEAD)
        return st->truncated++, PPDB_ETRUNC;
    if (pkt[0] != PPDB_DGRAM_MAGIC)
        return st->bad_version++, PPDB_EVERSION;
    uint8_t flags = pkt[1];
    if ((flags & ~PPDB_DGRAM_F_KNOWN) != 0 || flags == PPDB_DGRAM_F_KNOWN)
        return st->bad_flags++, PPDB_EPROTO;
    uint32_t key_id = ppdb_load_u32be(pkt + 2);
    *key_out = NULL;
    if (flags & PPDB_DGRAM_F_INSECURE) {
        if (!d->kr->insecure || key_id != PPDB_KEY_ID_NONE)
            return st->mode_refused++, PPDB_EAUTH;
        return 0;
    }
    const struct ppdb_wire_key *key = ppdb_keyring_find(d->kr, key_id);
    if (!key)
        return st->unknown_key++, PPDB_ENOKEY;
    if (((flags & PPDB_DGRAM_F_NULL) != 0) != d->opt.null_cipher)
        return st->mode_refused++, PPDB_EAUTH;
    *key_out = d->opt.null_cipher ? NULL : key;
    return 0;
}

static int unseal(const uint8_t *pkt, size_t len, const struct ppdb_wire_key *key, uint8_t *plain,
                  size_t *plain_len_out)
{
    size_t n = len - PPDB_DGRAM_OVERHEAD;
    const uint8_t *ct = pkt + PPDB_DGRAM_HDR_LEN;
    if (!key) {
        uint8_t tag[PPDB_DGRAM_TAG_LEN];
        null_tag(pkt, PPDB_DGRAM_HDR_LEN + n, tag);
        if (memcmp(tag, ct + n, PPDB_DGRAM_TAG_LEN) != 0)
            return PPDB_EAUTH;
        memcpy(plain, ct, n);
    } else {
        unsigned long long plen = 0;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                plain, &plen, NULL, ct, n + PPDB_DGRAM_TAG_LEN, pkt, PPDB_DGRAM_HDR_LEN,
                pkt + PPDB_DGRAM_NONCE_OFF, key->dgram_key) != 0)
            return PPDB_EAUTH;
        PPDB_ASSERT_CMP(plen, ==, n);
    }
    *plain_len_out = n;
    return 0;
}

/* Clock and replay checks of an authenticated datagram. */
static int check_fresh(struct ppdb_dgram *d, const uint8_t *pkt, int64_t sent_ms)
{
    int64_t now_ms = ppdb_env_wall_ms(d->env);
    if (sent_ms < now_ms - (int64_t)d->opt.max_age_ms)
        return d->stats.stale++, PPDB_EREPLAY;
    if (sent_ms > now_ms + (int64_t)d->opt.max_future_ms)
        return d->stats.future++, PPDB_ECLOCK;
    uint64_t counter = ppdb_load_u64be(pkt + COUNTER_OFF);
    if (ppdb_replay_accept(&d->replay, pkt + PPDB_DGRAM_NONCE_OFF, counter, sent_ms) != 0)
        return d->stats.replayed++, PPDB_EREPLAY;
    return 0;
}

int ppdb_dgram_open(struct ppdb_dgram *d, const uint8_t *pkt, size_t len, struct ppdb_dgram_msg *m)
{
    const struct ppdb_wire_key *key;
    m->env.live = false;
    int rc = check_header(d, pkt, len, &key);
    if (rc != 0)
        return rc;
    rc = unseal(pkt, len, key, m->plain, &m->plain_len);
    if (rc != 0)
        return d->stats.auth_failed++, rc;
    m->key_id = ppdb_load_u32be(pkt + 2);
    m->insecure = (pkt[1] & PPDB_DGRAM_F_INSECURE) != 0;
    m->sent_wall_ms = (int64_t)ppdb_load_u64be(pkt + PPDB_DGRAM_WALL_OFF);
    rc = check_fresh(d, pkt, m->sent_wall_ms);
    if (rc != 0)
        return rc;
    rc = ppdb_envelope_decode(d->reg, m->plain, m->plain_len, &m->env);
    if (rc == PPDB_ENOTSUP)
        return d->stats.unknown_type++, rc;
    if (rc != 0)
        return d->stats.bad_envelope++, rc;
    d->stats.opened++;
    d->stats.insecure_in += m->insecure;
    return 0;
}

void ppdb_dgram_msg_deinit(struct ppdb_dgram_msg *m)
{
    ppdb_envelope_deinit(&m->env);
}
