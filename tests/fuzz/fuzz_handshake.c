/*
 * fuzz_handshake.c - the handshake message parser on arbitrary bytes.
 *
 * First byte selects what reads the rest: 0 the responder reading message
 * 1; 1 the initiator (message 1 sent) reading message 2; 2 the responder
 * (messages 1 and 2 exchanged honestly) reading message 3; 3 the payload
 * decoder for each of the three messages. Keys are fixed so seeds stay
 * meaningful. Nothing may crash or over-read, and an accepted message 2 or
 * 3 must have bound a static key that derives from the claimed Ed25519 key.
 */
#include <sodium.h>

#include "ppdb_stream.h"

struct fixture {
    struct ppdb_identity ini, resp;
    struct ppdb_keyring kr;
};

static struct fixture fx; /* fuzz harness only: built once */

static void fixture_init(void)
{
    uint8_t seed[32], key[32];
    uint32_t id;
    PPDB_ASSERT(ppdb_wire_init() == 0);
    memset(seed, 1, sizeof(seed));
    PPDB_ASSERT(ppdb_identity_from_seed(&fx.ini, seed) == 0);
    memset(seed, 2, sizeof(seed));
    PPDB_ASSERT(ppdb_identity_from_seed(&fx.resp, seed) == 0);
    memset(key, 3, sizeof(key));
    ppdb_keyring_init(&fx.kr);
    PPDB_ASSERT(ppdb_keyring_install(&fx.kr, key, &id) == 0);
    PPDB_ASSERT(ppdb_keyring_use(&fx.kr, id) == 0);
}

static void start(struct ppdb_stream_hs *hs, bool initiator, uint8_t e_byte)
{
    uint8_t e[32];
    memset(e, e_byte, sizeof(e));
    PPDB_ASSERT(ppdb_stream_hs_init(hs, initiator, PPDB_ROLE_NODE, initiator ? &fx.ini : &fx.resp,
                                    &fx.kr, PPDB_NOISE_CHACHAPOLY | PPDB_NOISE_AESGCM, e) == 0);
}

static void check_bound(const struct ppdb_stream_hs *hs)
{
    uint8_t x[32];
    PPDB_ASSERT(crypto_sign_ed25519_pk_to_curve25519(x, hs->peer_sign_pk) == 0);
    PPDB_ASSERT(memcmp(x, hs->noise.rs, 32) == 0);
}

static void fuzz_msg(int which, const uint8_t *data, size_t size)
{
    static uint8_t msg[PPDB_NOISE_MSG_MAX];
    struct ppdb_stream_hs i, r;
    size_t len;
    start(&i, true, 4);
    start(&r, false, 5);
    PPDB_ASSERT(ppdb_stream_hs_write(&i, msg, sizeof(msg), &len) == 0);
    if (which == 0) {
        (void)ppdb_stream_hs_read(&r, data, size);
        return;
    }
    PPDB_ASSERT(ppdb_stream_hs_read(&r, msg, len) == 0);
    if (which == 1) {
        if (ppdb_stream_hs_read(&i, data, size) == 0)
            check_bound(&i);
        return;
    }
    PPDB_ASSERT(ppdb_stream_hs_write(&r, msg, sizeof(msg), &len) == 0);
    PPDB_ASSERT(ppdb_stream_hs_read(&i, msg, len) == 0);
    if (ppdb_stream_hs_read(&r, data, size) == 0)
        check_bound(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        fixture_init();
        ready = true;
    }
    if (size == 0)
        return 0;
    int which = data[0] % 4;
    if (which < 3) {
        fuzz_msg(which, data + 1, size - 1);
    } else {
        struct ppdb_hs_payload p;
        for (int m = 1; m <= 3; m++)
            (void)ppdb_hs_payload_decode(m, data + 1, size - 1, &p);
    }
    return 0;
}
