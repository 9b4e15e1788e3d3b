/*
 * identity.c - node identity keys and libsodium start-up.
 *
 * A node's identity is an Ed25519 key pair made from a 32-byte seed with
 * crypto_sign_seed_keypair, so the seed is the only secret that has to be
 * stored, and a simulator that draws the seed from its deterministic env
 * gets the same identities on every run of a seed. The node id is the first
 * 20 bytes of BLAKE2b-256 of the public key (Kademlia's 160-bit id space).
 * X25519 keys are derived from the Ed25519 pair for the Noise stream layer.
 *
 * Pure code: no files here (src/keyfile.c reads and writes them). The one
 * piece of process-global state is the randombytes hook for simulator
 * builds, because libsodium's generator is process-global itself.
 */
#include <sodium.h>

#include "ppdb_wire.h"

/* ------------------------------------------------------------- libsodium */

static struct {
    ppdb_wire_random_cb cb;
    void *arg;
    bool started; /* sodium_init has run */
} sodium_hook;

static const char *hook_name_cb(void)
{
    return "ppdb-env";
}

static uint32_t hook_random_cb(void)
{
    uint32_t v;
    sodium_hook.cb(sodium_hook.arg, &v, sizeof(v));
    return v;
}

static void hook_buf_cb(void *buf, size_t len)
{
    sodium_hook.cb(sodium_hook.arg, buf, len);
}

static randombytes_implementation hook_impl = {
    .implementation_name = hook_name_cb,
    .random = hook_random_cb,
    .stir = NULL,
    .uniform = NULL, /* libsodium derives it from .random */
    .buf = hook_buf_cb,
    .close = NULL,
};

int ppdb_wire_sodium_set_random(ppdb_wire_random_cb cb, void *arg)
{
    PPDB_ASSERT(cb != NULL);
    if (sodium_hook.started)
        return PPDB_EBUSY;
    sodium_hook.cb = cb;
    sodium_hook.arg = arg;
    if (randombytes_set_implementation(&hook_impl) != 0)
        return PPDB_EIO;
    return 0;
}

int ppdb_wire_init(void)
{
    if (sodium_init() < 0)
        return PPDB_EIO;
    sodium_hook.started = true;
    return 0;
}

/* -------------------------------------------------------------- identity */

void ppdb_node_id_from_pk(const uint8_t sign_pk[32], struct ppdb_node_id *out)
{
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), sign_pk, 32, NULL, 0);
    memcpy(out->b, h, PPDB_NODE_ID_LEN);
}

char *ppdb_node_id_hex(const struct ppdb_node_id *id, char *out)
{
    return ppdb_hex(id->b, PPDB_NODE_ID_LEN, out);
}

int ppdb_node_id_parse(const char *hex, struct ppdb_node_id *out)
{
    return ppdb_unhex(hex, out->b, PPDB_NODE_ID_LEN);
}

int ppdb_identity_from_seed(struct ppdb_identity *idn, const uint8_t seed[PPDB_IDENTITY_SEED_LEN])
{
    memset(idn, 0, sizeof(*idn));
    memcpy(idn->seed, seed, PPDB_IDENTITY_SEED_LEN);
    if (crypto_sign_seed_keypair(idn->sign_pk, idn->sign_sk, idn->seed) != 0)
        goto fail;
    if (crypto_sign_ed25519_pk_to_curve25519(idn->dh_pk, idn->sign_pk) != 0)
        goto fail;
    if (crypto_sign_ed25519_sk_to_curve25519(idn->dh_sk, idn->sign_sk) != 0)
        goto fail;
    ppdb_node_id_from_pk(idn->sign_pk, &idn->id);
    return 0;
fail:
    ppdb_identity_wipe(idn);
    return PPDB_EINVAL;
}

int ppdb_identity_generate(struct ppdb_identity *idn, struct ppdb_env *env)
{
    uint8_t seed[PPDB_IDENTITY_SEED_LEN];
    ppdb_env_random(env, seed, sizeof(seed));
    int rc = ppdb_identity_from_seed(idn, seed);
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

void ppdb_identity_wipe(struct ppdb_identity *idn)
{
    sodium_memzero(idn, sizeof(*idn));
}
