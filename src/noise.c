/*
 * noise.c - the Noise Protocol Framework's state objects (CipherState,
 * SymmetricState, HandshakeState; revision 34, sections 5 and 9) for
 * 25519 + ChaChaPoly/AESGCM + BLAKE2b, on libsodium primitives.
 *
 * Why by hand: libsodium has the primitives but no Noise, and a state
 * machine this small is easier to audit (and to run in the simulator, with
 * ephemeral keys drawn from the env) than a dependency. The code follows the
 * spec's pseudo-code function by function; tests check it against the
 * published cacophony vectors for NN and against itself for XX/XXpsk3.
 *
 * Invariants: a CipherState never encrypts with nonce 2^64-1; a failed
 * handshake stays failed (every later call returns the first error); a
 * DH result of all zeros (low-order point) fails the handshake.
 */
#include <sodium.h>
#include <stdio.h>

#include "ppdb_stream.h"

#define BLOCK_LEN 128 /* BLAKE2b */

/* --------------------------------------------------------- CipherState */

static void nonce_bytes(uint8_t cipher, uint64_t n, uint8_t out[12])
{
    memset(out, 0, 4);
    if (cipher == PPDB_NOISE_AESGCM)
        ppdb_store_u64be(out + 4, n);
    else
        ppdb_store_u64le(out + 4, n);
}

static uint32_t null_tag(uint64_t n, const uint8_t *ad, size_t ad_len, const uint8_t *p, size_t len)
{
    uint8_t nb[8];
    ppdb_store_u64le(nb, n);
    uint32_t c = ppdb_crc32c(nb, sizeof(nb));
    c = ppdb_crc32c_extend(c, ad, ad_len);
    return ppdb_crc32c_extend(c, p, len);
}

void ppdb_noise_cs_init(struct ppdb_noise_cs *cs, uint8_t cipher)
{
    memset(cs, 0, sizeof(*cs));
    cs->cipher = cipher;
}

void ppdb_noise_cs_set_key(struct ppdb_noise_cs *cs, const uint8_t k[PPDB_NOISE_KEY_LEN])
{
    memcpy(cs->k, k, PPDB_NOISE_KEY_LEN);
    cs->n = 0;
    cs->has_key = true;
    cs->aes_ready = false;
}

_Static_assert(sizeof(crypto_aead_aes256gcm_state) == PPDB_NOISE_AES_STATE_LEN,
               "aes_state holds libsodium's AES-GCM state");

/* The expanded AES-GCM key of cs (key schedule and GHASH powers): computed
 * once per key, not once per frame. */
static const crypto_aead_aes256gcm_state *aes_state(struct ppdb_noise_cs *cs)
{
    crypto_aead_aes256gcm_state *st = (crypto_aead_aes256gcm_state *)(void *)cs->aes_state;
    PPDB_ASSERT(((uintptr_t)st & 15) == 0);
    if (!cs->aes_ready) {
        crypto_aead_aes256gcm_beforenm(st, cs->k);
        cs->aes_ready = true;
    }
    return st;
}

/* ENCRYPT(k, n, ad, plaintext) of the cipher functions, with the key of cs:
 * out = ct || tag; out may equal pt. */
static void aead_encrypt(struct ppdb_noise_cs *cs, uint64_t n, const uint8_t *ad, size_t ad_len,
                         const uint8_t *pt, size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    nonce_bytes(cs->cipher, n, nonce);
    if (cs->cipher == PPDB_NOISE_CHACHAPOLY) {
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, out + len, NULL, pt, len, ad,
                                                           ad_len, NULL, nonce, cs->k);
    } else if (cs->cipher == PPDB_NOISE_AESGCM) {
        crypto_aead_aes256gcm_encrypt_detached_afternm(out, out + len, NULL, pt, len, ad, ad_len,
                                                       NULL, nonce, aes_state(cs));
    } else {
        PPDB_ASSERT(cs->cipher == PPDB_NOISE_NULL);
        if (out != pt)
            memmove(out, pt, len);
        memset(out + len, 0, PPDB_NOISE_TAG_LEN);
        ppdb_store_u32be(out + len, null_tag(n, ad, ad_len, out, len));
    }
}

static int aead_decrypt(struct ppdb_noise_cs *cs, uint64_t n, const uint8_t *ad, size_t ad_len,
                        const uint8_t *ct, size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    int rc = 0;
    const uint8_t *tag = ct + len;
    nonce_bytes(cs->cipher, n, nonce);
    if (cs->cipher == PPDB_NOISE_CHACHAPOLY) {
        rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, ct, len, tag, ad, ad_len,
                                                                nonce, cs->k);
    } else if (cs->cipher == PPDB_NOISE_AESGCM) {
        rc = crypto_aead_aes256gcm_decrypt_detached_afternm(out, NULL, ct, len, tag, ad, ad_len,
                                                            nonce, aes_state(cs));
    } else {
        uint8_t want[PPDB_NOISE_TAG_LEN] = {0};
        ppdb_store_u32be(want, null_tag(n, ad, ad_len, ct, len));
        rc = memcmp(want, tag, sizeof(want)) == 0 ? 0 : -1;
        if (rc == 0 && out != ct)
            memmove(out, ct, len);
    }
    return rc == 0 ? 0 : PPDB_EAUTH;
}

int ppdb_noise_cs_encrypt(struct ppdb_noise_cs *cs, const uint8_t *ad, size_t ad_len,
                          const uint8_t *pt, size_t n, uint8_t *out)
{
    if (!cs->has_key) {
        if (out != pt)
            memmove(out, pt, n);
        return 0;
    }
    if (cs->n == UINT64_MAX)
        return PPDB_ELIMIT;
    aead_encrypt(cs, cs->n, ad, ad_len, pt, n, out);
    cs->n++;
    return 0;
}

int ppdb_noise_cs_decrypt(struct ppdb_noise_cs *cs, const uint8_t *ad, size_t ad_len,
                          const uint8_t *ct, size_t n, uint8_t *out)
{
    if (!cs->has_key) {
        if (out != ct)
            memmove(out, ct, n);
        return 0;
    }
    if (n < PPDB_NOISE_TAG_LEN)
        return PPDB_ETRUNC;
    if (cs->n == UINT64_MAX)
        return PPDB_ELIMIT;
    int rc = aead_decrypt(cs, cs->n, ad, ad_len, ct, n - PPDB_NOISE_TAG_LEN, out);
    if (rc == 0)
        cs->n++;
    return rc;
}

void ppdb_noise_cs_rekey(struct ppdb_noise_cs *cs)
{
    uint8_t zeros[PPDB_NOISE_KEY_LEN] = {0};
    uint8_t out[PPDB_NOISE_KEY_LEN + PPDB_NOISE_TAG_LEN];
    PPDB_ASSERT(cs->has_key);
    aead_encrypt(cs, UINT64_MAX, NULL, 0, zeros, sizeof(zeros), out);
    if (cs->cipher == PPDB_NOISE_NULL)
        ppdb_store_u64le(out, ppdb_load_u64le(cs->k) + 1); /* visible, harmless */
    memcpy(cs->k, out, PPDB_NOISE_KEY_LEN);
    cs->aes_ready = false;
    sodium_memzero(out, sizeof(out));
}

/* ----------------------------------------------------- hash, HMAC, HKDF */

static void hash2(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                  uint8_t out[PPDB_NOISE_HASH_LEN])
{
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, NULL, 0, PPDB_NOISE_HASH_LEN);
    crypto_generichash_blake2b_update(&st, a, a_len);
    if (b_len)
        crypto_generichash_blake2b_update(&st, b, b_len);
    crypto_generichash_blake2b_final(&st, out, PPDB_NOISE_HASH_LEN);
}

void ppdb_noise_hmac(const uint8_t key[PPDB_NOISE_HASH_LEN], const uint8_t *data, size_t n,
                     uint8_t out[PPDB_NOISE_HASH_LEN])
{
    uint8_t pad[BLOCK_LEN], inner[PPDB_NOISE_HASH_LEN];
    memset(pad, 0, sizeof(pad));
    memcpy(pad, key, PPDB_NOISE_HASH_LEN);
    for (size_t i = 0; i < BLOCK_LEN; i++)
        pad[i] ^= 0x36;
    hash2(pad, BLOCK_LEN, data, n, inner);
    for (size_t i = 0; i < BLOCK_LEN; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    hash2(pad, BLOCK_LEN, inner, sizeof(inner), out);
    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
}

void ppdb_noise_hkdf(const uint8_t ck[PPDB_NOISE_HASH_LEN], const uint8_t *ikm, size_t ikm_len,
                     int outputs, uint8_t *o1, uint8_t *o2, uint8_t *o3)
{
    uint8_t temp[PPDB_NOISE_HASH_LEN], in[PPDB_NOISE_HASH_LEN + 1];
    PPDB_ASSERT(outputs == 2 || outputs == 3);
    ppdb_noise_hmac(ck, ikm, ikm_len, temp);
    in[0] = 0x01;
    ppdb_noise_hmac(temp, in, 1, o1);
    memcpy(in, o1, PPDB_NOISE_HASH_LEN);
    in[PPDB_NOISE_HASH_LEN] = 0x02;
    ppdb_noise_hmac(temp, in, sizeof(in), o2);
    if (outputs == 3) {
        memcpy(in, o2, PPDB_NOISE_HASH_LEN);
        in[PPDB_NOISE_HASH_LEN] = 0x03;
        ppdb_noise_hmac(temp, in, sizeof(in), o3);
    }
    sodium_memzero(temp, sizeof(temp));
    sodium_memzero(in, sizeof(in));
}

/* ----------------------------------------------------- SymmetricState */

static void ss_init(struct ppdb_noise_ss *ss, const char *name, uint8_t cipher)
{
    size_t len = strlen(name);
    memset(ss, 0, sizeof(*ss));
    if (len <= PPDB_NOISE_HASH_LEN)
        memcpy(ss->h, name, len);
    else
        hash2((const uint8_t *)name, len, NULL, 0, ss->h);
    memcpy(ss->ck, ss->h, PPDB_NOISE_HASH_LEN);
    ppdb_noise_cs_init(&ss->cs, cipher);
}

static void mix_hash(struct ppdb_noise_ss *ss, const uint8_t *data, size_t n)
{
    hash2(ss->h, PPDB_NOISE_HASH_LEN, data, n, ss->h);
}

static void mix_key(struct ppdb_noise_ss *ss, const uint8_t *ikm, size_t n)
{
    uint8_t k[PPDB_NOISE_HASH_LEN];
    ppdb_noise_hkdf(ss->ck, ikm, n, 2, ss->ck, k, NULL);
    ppdb_noise_cs_set_key(&ss->cs, k);
    sodium_memzero(k, sizeof(k));
}

static void mix_key_and_hash(struct ppdb_noise_ss *ss, const uint8_t *ikm, size_t n)
{
    uint8_t th[PPDB_NOISE_HASH_LEN], k[PPDB_NOISE_HASH_LEN];
    ppdb_noise_hkdf(ss->ck, ikm, n, 3, ss->ck, th, k);
    mix_hash(ss, th, sizeof(th));
    ppdb_noise_cs_set_key(&ss->cs, k);
    sodium_memzero(k, sizeof(k));
}

/* out gets n (+ tag when keyed) bytes; returns that length. */
static size_t encrypt_and_hash(struct ppdb_noise_ss *ss, const uint8_t *pt, size_t n, uint8_t *out)
{
    int rc = ppdb_noise_cs_encrypt(&ss->cs, ss->h, PPDB_NOISE_HASH_LEN, pt, n, out);
    PPDB_ASSERT(rc == 0); /* a handshake uses a handful of nonces */
    size_t len = n + (ss->cs.has_key ? PPDB_NOISE_TAG_LEN : 0);
    mix_hash(ss, out, len);
    return len;
}

static int decrypt_and_hash(struct ppdb_noise_ss *ss, const uint8_t *ct, size_t n, uint8_t *out)
{
    uint8_t h_next[PPDB_NOISE_HASH_LEN];
    hash2(ss->h, PPDB_NOISE_HASH_LEN, ct, n, h_next); /* before out may overwrite ct */
    int rc = ppdb_noise_cs_decrypt(&ss->cs, ss->h, PPDB_NOISE_HASH_LEN, ct, n, out);
    if (rc == 0)
        memcpy(ss->h, h_next, PPDB_NOISE_HASH_LEN);
    return rc;
}

/* ----------------------------------------------------- HandshakeState */

enum token { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS, T_PSK };

#define MAX_MSGS   3
#define MAX_TOKENS 5

static const uint8_t patterns[3][MAX_MSGS][MAX_TOKENS] = {
    [PPDB_NOISE_NN] = {{T_E}, {T_E, T_EE}, {T_END}},
    [PPDB_NOISE_XX] = {{T_E}, {T_E, T_EE, T_S, T_ES}, {T_S, T_SE}},
    [PPDB_NOISE_XXPSK3] = {{T_E}, {T_E, T_EE, T_S, T_ES}, {T_S, T_SE, T_PSK}},
};
static const uint8_t pattern_msgs[3] = {2, 3, 3};
static const char *const pattern_names[3] = {"NN", "XX", "XXpsk3"};

static bool psk_mode(const struct ppdb_noise_hs *hs)
{
    return hs->pattern == PPDB_NOISE_XXPSK3;
}

void ppdb_noise_protocol_name(enum ppdb_noise_pattern p, uint8_t cipher, char *out)
{
    const char *c = cipher == PPDB_NOISE_AESGCM       ? "AESGCM"
                    : cipher == PPDB_NOISE_CHACHAPOLY ? "ChaChaPoly"
                                                      : "Null";
    snprintf(out, PPDB_NOISE_NAME_MAX, "Noise_%s_25519_%s_BLAKE2b", pattern_names[p], c);
}

int ppdb_noise_hs_init(struct ppdb_noise_hs *hs, enum ppdb_noise_pattern pattern, uint8_t hs_cipher,
                       bool initiator, const uint8_t *prologue, size_t prologue_len,
                       const uint8_t *s_sk, const uint8_t *s_pk, const uint8_t e_sk[32])
{
    char name[PPDB_NOISE_NAME_MAX];
    PPDB_ASSERT((unsigned)pattern < PPDB_ARRAY_LEN(pattern_msgs));
    memset(hs, 0, sizeof(*hs));
    hs->pattern = (uint8_t)pattern;
    hs->initiator = initiator;
    ppdb_noise_protocol_name(pattern, hs_cipher, name);
    ss_init(&hs->ss, name, hs_cipher);
    mix_hash(&hs->ss, prologue, prologue_len);
    if (s_sk) {
        memcpy(hs->s_sk, s_sk, 32);
        if (s_pk)
            memcpy(hs->s_pk, s_pk, 32);
        else if (crypto_scalarmult_base(hs->s_pk, hs->s_sk) != 0)
            return PPDB_EINVAL;
        hs->has_s = true;
    }
    memcpy(hs->e_sk, e_sk, 32);
    if (crypto_scalarmult_base(hs->e_pk, hs->e_sk) != 0)
        return PPDB_EINVAL;
    hs->has_e = true;
    return 0;
}

void ppdb_noise_hs_set_psk(struct ppdb_noise_hs *hs, const uint8_t psk[32])
{
    memcpy(hs->psk, psk, 32);
    hs->has_psk = true;
}

bool ppdb_noise_hs_done(const struct ppdb_noise_hs *hs)
{
    return !hs->failed && hs->msg_index == pattern_msgs[hs->pattern];
}

bool ppdb_noise_hs_my_turn(const struct ppdb_noise_hs *hs)
{
    return !ppdb_noise_hs_done(hs) && ((hs->msg_index % 2) == 0) == hs->initiator;
}

/* MixKey(DH(sk, pk)); EAUTH for a low-order result. */
static int mix_dh(struct ppdb_noise_hs *hs, const uint8_t *sk, const uint8_t *pk)
{
    uint8_t shared[32];
    if (crypto_scalarmult(shared, sk, pk) != 0)
        return PPDB_EAUTH;
    mix_key(&hs->ss, shared, sizeof(shared));
    sodium_memzero(shared, sizeof(shared));
    return 0;
}

/* The DH tokens, the same on both sides once "es"/"se" are mapped. */
static int dh_token(struct ppdb_noise_hs *hs, uint8_t t)
{
    bool ini = hs->initiator;
    switch (t) {
    case T_EE:
        return mix_dh(hs, hs->e_sk, hs->re);
    case T_ES:
        return ini ? mix_dh(hs, hs->e_sk, hs->rs) : mix_dh(hs, hs->s_sk, hs->re);
    case T_SE:
        return ini ? mix_dh(hs, hs->s_sk, hs->re) : mix_dh(hs, hs->e_sk, hs->rs);
    case T_SS:
        return mix_dh(hs, hs->s_sk, hs->rs);
    case T_PSK:
        if (!hs->has_psk)
            return PPDB_ENOKEY;
        mix_key_and_hash(&hs->ss, hs->psk, sizeof(hs->psk));
        return 0;
    default:
        PPDB_ASSERT(!"unknown token");
        return PPDB_EPROTO;
    }
}

static int fail(struct ppdb_noise_hs *hs, int rc)
{
    if (!hs->failed)
        hs->failed = rc;
    return hs->failed;
}

int ppdb_noise_hs_write(struct ppdb_noise_hs *hs, const uint8_t *payload, size_t n, uint8_t *out,
                        size_t cap, size_t *len_out)
{
    if (hs->failed)
        return hs->failed;
    if (!ppdb_noise_hs_my_turn(hs))
        return PPDB_EPROTO;
    size_t len = 0;
    const uint8_t *toks = patterns[hs->pattern][hs->msg_index];
    /* Worst case: two keys with tags and the payload with its tag. */
    size_t need = 2 * (32 + PPDB_NOISE_TAG_LEN) + n + PPDB_NOISE_TAG_LEN;
    if (need > cap || need > PPDB_NOISE_MSG_MAX)
        return PPDB_ELIMIT;
    for (int i = 0; i < MAX_TOKENS && toks[i] != T_END; i++) {
        int rc = 0;
        if (toks[i] == T_E) {
            memcpy(out + len, hs->e_pk, 32);
            len += 32;
            mix_hash(&hs->ss, hs->e_pk, 32);
            if (psk_mode(hs))
                mix_key(&hs->ss, hs->e_pk, 32);
        } else if (toks[i] == T_S) {
            PPDB_ASSERT(hs->has_s);
            len += encrypt_and_hash(&hs->ss, hs->s_pk, 32, out + len);
        } else {
            rc = dh_token(hs, toks[i]);
        }
        if (rc < 0)
            return fail(hs, rc);
    }
    len += encrypt_and_hash(&hs->ss, payload, n, out + len);
    hs->msg_index++;
    *len_out = len;
    return 0;
}

/* Reads one "e" or "s" token from msg at *off. */
static int read_key_token(struct ppdb_noise_hs *hs, uint8_t t, const uint8_t *msg, size_t n,
                          size_t *off)
{
    if (t == T_E) {
        if (n - *off < 32)
            return PPDB_ETRUNC;
        memcpy(hs->re, msg + *off, 32);
        *off += 32;
        hs->has_re = true;
        mix_hash(&hs->ss, hs->re, 32);
        if (psk_mode(hs))
            mix_key(&hs->ss, hs->re, 32);
        return 0;
    }
    size_t len = 32 + (hs->ss.cs.has_key ? PPDB_NOISE_TAG_LEN : 0);
    uint8_t tmp[32 + PPDB_NOISE_TAG_LEN];
    if (n - *off < len)
        return PPDB_ETRUNC;
    memcpy(tmp, msg + *off, len);
    int rc = decrypt_and_hash(&hs->ss, tmp, len, hs->rs);
    if (rc < 0)
        return rc;
    *off += len;
    hs->has_rs = true;
    return 0;
}

int ppdb_noise_hs_read(struct ppdb_noise_hs *hs, const uint8_t *msg, size_t n, uint8_t *payload_out,
                       size_t cap, size_t *len_out)
{
    if (hs->failed)
        return hs->failed;
    if (ppdb_noise_hs_done(hs) || ppdb_noise_hs_my_turn(hs))
        return PPDB_EPROTO;
    if (n > PPDB_NOISE_MSG_MAX)
        return fail(hs, PPDB_ELIMIT);
    size_t off = 0;
    const uint8_t *toks = patterns[hs->pattern][hs->msg_index];
    for (int i = 0; i < MAX_TOKENS && toks[i] != T_END; i++) {
        int rc = (toks[i] == T_E || toks[i] == T_S) ? read_key_token(hs, toks[i], msg, n, &off)
                                                    : dh_token(hs, toks[i]);
        if (rc < 0)
            return fail(hs, rc);
    }
    size_t rest = n - off;
    if (hs->ss.cs.has_key && rest < PPDB_NOISE_TAG_LEN)
        return fail(hs, PPDB_ETRUNC);
    size_t plen = hs->ss.cs.has_key ? rest - PPDB_NOISE_TAG_LEN : rest;
    if (plen > cap)
        return fail(hs, PPDB_ELIMIT);
    int rc = decrypt_and_hash(&hs->ss, msg + off, rest, payload_out);
    if (rc < 0)
        return fail(hs, rc);
    hs->msg_index++;
    *len_out = plen;
    return 0;
}

void ppdb_noise_hs_split(struct ppdb_noise_hs *hs, struct ppdb_noise_cs *send,
                         struct ppdb_noise_cs *recv)
{
    uint8_t k1[PPDB_NOISE_HASH_LEN], k2[PPDB_NOISE_HASH_LEN];
    PPDB_ASSERT(ppdb_noise_hs_done(hs));
    ppdb_noise_hkdf(hs->ss.ck, NULL, 0, 2, k1, k2, NULL);
    ppdb_noise_cs_init(send, hs->ss.cs.cipher);
    ppdb_noise_cs_init(recv, hs->ss.cs.cipher);
    ppdb_noise_cs_set_key(send, hs->initiator ? k1 : k2);
    ppdb_noise_cs_set_key(recv, hs->initiator ? k2 : k1);
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
}

void ppdb_noise_hs_wipe(struct ppdb_noise_hs *hs)
{
    sodium_memzero(hs, sizeof(*hs));
}
