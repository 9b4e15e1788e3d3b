/*
 * keyring.c - cluster keys: ids, text form, and the keyring of a node.
 *
 * A cluster key is 32 random bytes shared by every node of a mesh. It is
 * never used directly: its 4-byte id (sent in the clear in every datagram)
 * and the datagram AEAD key are both BLAKE2b outputs keyed by it over
 * distinct labels, so learning an id reveals nothing and the stream layer
 * can derive its own psk from the same key without overlap.
 *
 * The keyring is a small fixed array (PPDB_KEYRING_MAX) so lookup by id is
 * a scan of at most 8 entries and nothing is allocated. Invariants: ids of
 * used slots are distinct and non-zero; `primary` is -1 or a used slot.
 */
#include <ctype.h>
#include <sodium.h>

#include "ppdb_wire.h"

static const char KEY_ID_LABEL[] = "ppdb cluster key id v1";
static const char DGRAM_KEY_LABEL[] = "ppdb dgram key v1";

uint32_t ppdb_cluster_key_id(const uint8_t key[PPDB_CLUSTER_KEY_LEN])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), (const uint8_t *)KEY_ID_LABEL, sizeof(KEY_ID_LABEL) - 1, key,
                       PPDB_CLUSTER_KEY_LEN);
    return ppdb_load_u32be(h);
}

void ppdb_cluster_key_generate(struct ppdb_env *env, uint8_t key[PPDB_CLUSTER_KEY_LEN])
{
    /* An id of 0 means "insecure"; redraw (probability 2^-32 per draw, so
     * the bound is never reached with a working generator). */
    for (int i = 0; i < 16; i++) {
        ppdb_env_random(env, key, PPDB_CLUSTER_KEY_LEN);
        if (ppdb_cluster_key_id(key) != PPDB_KEY_ID_NONE)
            return;
    }
    PPDB_ASSERT(!"env random source returns constant output");
}

char *ppdb_cluster_key_format(const uint8_t key[PPDB_CLUSTER_KEY_LEN], char *out)
{
    sodium_bin2base64(out, PPDB_CLUSTER_KEY_STRLEN, key, PPDB_CLUSTER_KEY_LEN,
                      sodium_base64_VARIANT_ORIGINAL);
    return out;
}

int ppdb_cluster_key_parse(const char *s, uint8_t key[PPDB_CLUSTER_KEY_LEN])
{
    char tmp[128];
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= sizeof(tmp))
        return PPDB_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    int rc = PPDB_EINVAL;
    if (n == 2 * PPDB_CLUSTER_KEY_LEN) {
        rc = ppdb_unhex(tmp, key, PPDB_CLUSTER_KEY_LEN);
    } else {
        size_t got = 0;
        const char *end = NULL;
        if (sodium_base642bin(key, PPDB_CLUSTER_KEY_LEN, tmp, n, NULL, &got, &end,
                              sodium_base64_VARIANT_ORIGINAL) == 0 &&
            got == PPDB_CLUSTER_KEY_LEN && end == tmp + n)
            rc = 0;
    }
    sodium_memzero(tmp, sizeof(tmp));
    return rc;
}

/* --------------------------------------------------------------- keyring */

void ppdb_keyring_init(struct ppdb_keyring *kr)
{
    memset(kr, 0, sizeof(*kr));
    kr->primary = -1;
}

void ppdb_keyring_deinit(struct ppdb_keyring *kr)
{
    sodium_memzero(kr, sizeof(*kr));
    kr->primary = -1;
}

static int find_slot(const struct ppdb_keyring *kr, uint32_t id)
{
    for (int i = 0; i < PPDB_KEYRING_MAX; i++)
        if (kr->keys[i].used && kr->keys[i].id == id)
            return i;
    return -1;
}

int ppdb_keyring_install(struct ppdb_keyring *kr, const uint8_t key[PPDB_CLUSTER_KEY_LEN],
                         uint32_t *id_out)
{
    uint32_t id = ppdb_cluster_key_id(key);
    if (id == PPDB_KEY_ID_NONE)
        return PPDB_EINVAL;
    int slot = find_slot(kr, id);
    if (slot >= 0) {
        if (sodium_memcmp(kr->keys[slot].key, key, PPDB_CLUSTER_KEY_LEN) != 0)
            return PPDB_EEXIST;
    } else {
        for (slot = 0; slot < PPDB_KEYRING_MAX && kr->keys[slot].used; slot++)
            ;
        if (slot == PPDB_KEYRING_MAX)
            return PPDB_ELIMIT;
        struct ppdb_wire_key *k = &kr->keys[slot];
        k->used = true;
        k->id = id;
        memcpy(k->key, key, PPDB_CLUSTER_KEY_LEN);
        crypto_generichash(k->dgram_key, sizeof(k->dgram_key), (const uint8_t *)DGRAM_KEY_LABEL,
                           sizeof(DGRAM_KEY_LABEL) - 1, key, PPDB_CLUSTER_KEY_LEN);
    }
    if (id_out)
        *id_out = id;
    return 0;
}

int ppdb_keyring_use(struct ppdb_keyring *kr, uint32_t id)
{
    int slot = find_slot(kr, id);
    if (slot < 0)
        return PPDB_ENOTFOUND;
    kr->primary = slot;
    return 0;
}

int ppdb_keyring_remove(struct ppdb_keyring *kr, uint32_t id)
{
    int slot = find_slot(kr, id);
    if (slot < 0)
        return PPDB_ENOTFOUND;
    if (slot == kr->primary)
        return PPDB_EBUSY;
    sodium_memzero(&kr->keys[slot], sizeof(kr->keys[slot]));
    return 0;
}

const struct ppdb_wire_key *ppdb_keyring_find(const struct ppdb_keyring *kr, uint32_t id)
{
    int slot = find_slot(kr, id);
    return slot < 0 ? NULL : &kr->keys[slot];
}

const struct ppdb_wire_key *ppdb_keyring_primary(const struct ppdb_keyring *kr)
{
    return kr->primary < 0 ? NULL : &kr->keys[kr->primary];
}

uint32_t ppdb_keyring_count(const struct ppdb_keyring *kr)
{
    uint32_t n = 0;
    for (int i = 0; i < PPDB_KEYRING_MAX; i++)
        n += kr->keys[i].used;
    return n;
}

void ppdb_keyring_set_insecure(struct ppdb_keyring *kr, bool on, struct ppdb_logger *log)
{
    if (on && !kr->insecure)
        PPDB_LOG(log ? log : ppdb_logger_default(), PPDB_LOG_WARN, "wire",
                 "INSECURE MODE: datagrams without a cluster key are accepted; anyone on the "
                 "network can join and forge messages",
                 "keys=%u", ppdb_keyring_count(kr));
    kr->insecure = on;
}
