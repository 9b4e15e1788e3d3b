/*
 * test_wire_sodium_rng.c - the simulator's randombytes hook: installed
 * before sodium_init, every byte libsodium draws comes from the supplied
 * generator (so a seed reproduces keys libsodium makes), and installing it
 * after start-up is refused.
 */
#include <sodium.h>

#include "check.h"
#include "ppdb_wire.h"

static void rng_cb(void *arg, void *buf, size_t len)
{
    ppdb_rng_bytes(arg, buf, len);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 5);
    struct ppdb_rng rng, mirror;
    ppdb_rng_seed(&rng, seed);
    CHECK_OK(ppdb_wire_sodium_set_random(rng_cb, &rng));
    CHECK_OK(ppdb_wire_init());
    CHECK_ERR(ppdb_wire_sodium_set_random(rng_cb, &rng), PPDB_EBUSY);
    CHECK_STREQ(randombytes_implementation_name(), "ppdb-env");

    /* Same generator state, same bytes. */
    uint8_t a[64], b[64];
    mirror = rng;
    randombytes_buf(a, sizeof(a));
    ppdb_rng_bytes(&mirror, b, sizeof(b));
    CHECK_MEMEQ(a, b, sizeof(a));

    /* A key pair libsodium draws itself is reproducible from the seed. */
    uint8_t pk1[32], sk1[64], pk2[32], sk2[64];
    struct ppdb_rng saved = rng;
    crypto_sign_keypair(pk1, sk1);
    rng = saved;
    crypto_sign_keypair(pk2, sk2);
    CHECK_MEMEQ(pk1, pk2, sizeof(pk1));
    uint32_t u = randombytes_uniform(10);
    CHECK_LT(u, 10);
    printf("test_wire_sodium_rng: ok\n");
    return 0;
}
