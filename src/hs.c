/*
 * hs.c - the PPDB stream handshake: Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b
 * with msgpack payloads, I/O-free.
 *
 *   1  I -> R   e                      {version, role, ciphers, key id}
 *   2  R -> I   e, ee, s, es           {version, role, Ed25519 pk, cipher}
 *   3  I -> R   s, se, psk             {role, Ed25519 pk}
 *
 * Why this pattern: XX authenticates both static keys and hides the
 * initiator's identity; ephemeral-ephemeral DH gives forward secrecy; the
 * psk at the end of message 3 makes the cluster key a second, independent
 * requirement (a stolen node key alone does not get in). The psk is not
 * the cluster key but BLAKE2b keyed by it over a label, so no two layers
 * share key material. The key id travels in message 1 (authenticated
 * later, by the psk itself) so the responder picks the installed key
 * without trial decryption: rotation just works.
 *
 * Binding: each side sends its Ed25519 public key and the other checks
 * that the X25519 static key the handshake authenticated is the one
 * derived from it; the node id (a hash of the Ed25519 key) is therefore
 * authenticated too.
 *
 * Invariants: results (peer_*, cipher, key_id) are valid only when done;
 * any error is final (the Noise state stays failed).
 */
#include <sodium.h>

#include "ppdb_stream.h"

void ppdb_stream_psk(const uint8_t key[PPDB_CLUSTER_KEY_LEN], uint8_t psk_out[32])
{
    crypto_generichash(psk_out, 32, (const uint8_t *)PPDB_STREAM_PSK_LABEL,
                       strlen(PPDB_STREAM_PSK_LABEL), key, PPDB_CLUSTER_KEY_LEN);
}

uint32_t ppdb_stream_ciphers_local(void)
{
    uint32_t c = PPDB_NOISE_CHACHAPOLY;
    if (crypto_aead_aes256gcm_is_available())
        c |= PPDB_NOISE_AESGCM;
    return c;
}

/* ------------------------------------------------------------ payloads */

static int get_field(const msgpack_object *root, uint64_t k, uint32_t *out)
{
    return ppdb_mp_get_u32(root, k, out) == 0 ? 0 : PPDB_EPROTO;
}

static int decode_fields(int msg, const msgpack_object *root, struct ppdb_hs_payload *out)
{
    int rc = 0;
    if (root->type != MSGPACK_OBJECT_MAP)
        return PPDB_EPROTO;
    if (msg != 3 && (rc = get_field(root, PPDB_HS_K_VERSION, &out->version)) < 0)
        return rc;
    if ((rc = get_field(root, PPDB_HS_K_ROLE, &out->role)) < 0)
        return rc;
    if (msg == 1 && ((rc = get_field(root, PPDB_HS_K_CIPHERS, &out->ciphers)) < 0 ||
                     (rc = get_field(root, PPDB_HS_K_KEY_ID, &out->key_id)) < 0))
        return rc;
    if (msg == 2 && (rc = get_field(root, PPDB_HS_K_CIPHER, &out->cipher)) < 0)
        return rc;
    if (msg != 1) {
        if (ppdb_mp_get_bin_fixed(root, PPDB_HS_K_SIGN_PK, out->sign_pk, 32) != 0)
            return PPDB_EPROTO;
        out->has_sign_pk = true;
    }
    if (out->role > PPDB_ROLE_CLIENT)
        return PPDB_EPROTO;
    if (msg != 3 && out->version < 1)
        return PPDB_EVERSION;
    return 0;
}

int ppdb_hs_payload_decode(int msg, const uint8_t *p, size_t n, struct ppdb_hs_payload *out)
{
    struct ppdb_mp_doc doc;
    struct ppdb_mp_limits lim = {.max_depth = 2, .max_elements = 32};
    PPDB_ASSERT(msg >= 1 && msg <= 3);
    memset(out, 0, sizeof(*out));
    int rc = ppdb_mp_parse(p, n, &lim, &doc, NULL);
    if (rc < 0)
        return PPDB_EPROTO;
    rc = decode_fields(msg, &doc.root, out);
    ppdb_mp_doc_deinit(&doc);
    return rc;
}

static int encode_payload(struct ppdb_stream_hs *hs, int msg, struct ppdb_buf *b)
{
    struct ppdb_mpw w;
    ppdb_mpw_init(&w, b);
    ppdb_mpw_map(&w, msg == 3 ? 2 : 4);
    if (msg != 3) {
        ppdb_mpw_uint(&w, PPDB_HS_K_VERSION);
        ppdb_mpw_uint(&w, PPDB_STREAM_VERSION);
    }
    ppdb_mpw_uint(&w, PPDB_HS_K_ROLE);
    ppdb_mpw_uint(&w, hs->role);
    if (msg == 1) {
        ppdb_mpw_uint(&w, PPDB_HS_K_CIPHERS);
        ppdb_mpw_uint(&w, hs->ciphers);
        ppdb_mpw_uint(&w, PPDB_HS_K_KEY_ID);
        ppdb_mpw_uint(&w, hs->key_id);
    } else {
        ppdb_mpw_uint(&w, PPDB_HS_K_SIGN_PK);
        ppdb_mpw_bin(&w, hs->idn->sign_pk, 32);
    }
    if (msg == 2) {
        ppdb_mpw_uint(&w, PPDB_HS_K_CIPHER);
        ppdb_mpw_uint(&w, hs->cipher);
    }
    return ppdb_mpw_error(&w);
}

/* ----------------------------------------------------------- handshake */

int ppdb_stream_hs_init(struct ppdb_stream_hs *hs, bool initiator, uint8_t role,
                        const struct ppdb_identity *idn, const struct ppdb_keyring *kr,
                        uint32_t ciphers, const uint8_t e_sk[32])
{
    const uint8_t *prologue = (const uint8_t *)PPDB_STREAM_PROLOGUE;
    memset(hs, 0, sizeof(*hs));
    PPDB_ASSERT(ciphers != 0);
    PPDB_ASSERT(initiator || role == PPDB_ROLE_NODE);
    hs->idn = idn;
    hs->kr = kr;
    hs->role = role;
    hs->ciphers = ciphers;
    int rc =
        ppdb_noise_hs_init(&hs->noise, PPDB_NOISE_XXPSK3, PPDB_NOISE_CHACHAPOLY, initiator,
                           prologue, strlen(PPDB_STREAM_PROLOGUE), idn->dh_sk, idn->dh_pk, e_sk);
    if (rc < 0 || !initiator)
        return rc;
    uint8_t psk[32] = {0};
    const struct ppdb_wire_key *k = ppdb_keyring_primary(kr);
    if (k) {
        hs->key_id = k->id;
        ppdb_stream_psk(k->key, psk);
    } else if (!ppdb_keyring_insecure(kr)) {
        return PPDB_ENOKEY;
    }
    ppdb_noise_hs_set_psk(&hs->noise, psk);
    sodium_memzero(psk, sizeof(psk));
    return 0;
}

bool ppdb_stream_hs_my_turn(const struct ppdb_stream_hs *hs)
{
    return ppdb_noise_hs_my_turn(&hs->noise);
}

int ppdb_stream_hs_write(struct ppdb_stream_hs *hs, uint8_t *out, size_t cap, size_t *len_out)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    int msg = hs->noise.msg_index + 1;
    int rc = encode_payload(hs, msg, &b);
    if (rc == 0)
        rc = ppdb_noise_hs_write(&hs->noise, b.data, b.len, out, cap, len_out);
    ppdb_buf_deinit(&b);
    if (rc == 0 && ppdb_noise_hs_done(&hs->noise))
        hs->done = true;
    return rc;
}

/* Responder, message 1: pick the key by id and the transport cipher. */
static int accept_hello(struct ppdb_stream_hs *hs, const struct ppdb_hs_payload *p)
{
    uint8_t psk[32] = {0};
    const struct ppdb_wire_key *k = ppdb_keyring_find(hs->kr, p->key_id);
    if (p->key_id == PPDB_KEY_ID_NONE ? !ppdb_keyring_insecure(hs->kr) : k == NULL)
        return PPDB_ENOKEY;
    if (k)
        ppdb_stream_psk(k->key, psk);
    ppdb_noise_hs_set_psk(&hs->noise, psk);
    sodium_memzero(psk, sizeof(psk));
    hs->key_id = p->key_id;
    hs->peer_role = (uint8_t)p->role;
    uint32_t common = p->ciphers & hs->ciphers;
    if (common & PPDB_NOISE_NULL)
        hs->cipher = PPDB_NOISE_NULL;
    else if (common & PPDB_NOISE_AESGCM)
        hs->cipher = PPDB_NOISE_AESGCM;
    else if (common & PPDB_NOISE_CHACHAPOLY)
        hs->cipher = PPDB_NOISE_CHACHAPOLY;
    else
        return PPDB_EPROTO;
    return 0;
}

/* The static key Noise authenticated must derive from the Ed25519 key. */
static int bind_identity(struct ppdb_stream_hs *hs, const struct ppdb_hs_payload *p)
{
    uint8_t x[32];
    if (crypto_sign_ed25519_pk_to_curve25519(x, p->sign_pk) != 0)
        return PPDB_EAUTH;
    if (sodium_memcmp(x, hs->noise.rs, 32) != 0)
        return PPDB_EAUTH;
    memcpy(hs->peer_sign_pk, p->sign_pk, 32);
    ppdb_node_id_from_pk(p->sign_pk, &hs->peer_id);
    hs->peer_role = (uint8_t)p->role;
    return 0;
}

static int check_reply(struct ppdb_stream_hs *hs, const struct ppdb_hs_payload *p)
{
    if (p->version != PPDB_STREAM_VERSION)
        return PPDB_EVERSION;
    if (p->role != PPDB_ROLE_NODE)
        return PPDB_EPROTO; /* only nodes answer */
    uint32_t c = p->cipher;
    if (c == 0 || (c & (c - 1)) != 0 || (c & hs->ciphers) == 0)
        return PPDB_EPROTO;
    hs->cipher = (uint8_t)c;
    return bind_identity(hs, p);
}

int ppdb_stream_hs_read(struct ppdb_stream_hs *hs, const uint8_t *msg, size_t n)
{
    uint8_t payload[PPDB_HS_PAYLOAD_MAX];
    size_t plen = 0;
    struct ppdb_hs_payload p;
    int num = hs->noise.msg_index + 1;
    int rc = ppdb_noise_hs_read(&hs->noise, msg, n, payload, sizeof(payload), &plen);
    if (rc == 0)
        rc = ppdb_hs_payload_decode(num, payload, plen, &p);
    if (rc == 0 && num == 1)
        rc = accept_hello(hs, &p);
    else if (rc == 0 && num == 2)
        rc = check_reply(hs, &p);
    else if (rc == 0 && num == 3)
        rc = p.role == hs->peer_role ? bind_identity(hs, &p) : PPDB_EPROTO;
    sodium_memzero(payload, plen);
    if (rc < 0) {
        if (!hs->noise.failed)
            hs->noise.failed = rc;
        return rc;
    }
    if (ppdb_noise_hs_done(&hs->noise))
        hs->done = true;
    return 0;
}

void ppdb_stream_hs_split(struct ppdb_stream_hs *hs, struct ppdb_noise_cs *send,
                          struct ppdb_noise_cs *recv)
{
    PPDB_ASSERT(hs->done);
    ppdb_noise_hs_split(&hs->noise, send, recv);
    send->cipher = hs->cipher;
    recv->cipher = hs->cipher;
}

void ppdb_stream_hs_wipe(struct ppdb_stream_hs *hs)
{
    ppdb_noise_hs_wipe(&hs->noise);
    hs->done = false;
}
