/*
 * test_wire_identity.c - node identity and cluster keys: derivation, text
 * forms, and the 0600 files they are kept in.
 */
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ppdb_wire.h"
#include "test_wire_env.h"

static char tmpdir[256];

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void test_derivation(uint64_t seed)
{
    struct test_env te;
    test_env_init(&te, seed, 1700000000000);
    struct ppdb_identity a, b;
    CHECK_OK(ppdb_identity_generate(&a, &te.env));
    CHECK_OK(ppdb_identity_from_seed(&b, a.seed));
    CHECK_MEMEQ(a.sign_pk, b.sign_pk, 32);
    CHECK(ppdb_node_id_equal(&a.id, &b.id));

    /* The id is BLAKE2b-256(pk) cut to 20 bytes, computed independently. */
    uint8_t h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, a.sign_pk, 32);
    crypto_generichash_final(&st, h, sizeof(h));
    CHECK_MEMEQ(a.id.b, h, PPDB_NODE_ID_LEN);

    /* X25519 halves agree with each other. */
    uint8_t pk[32];
    CHECK_EQ(crypto_scalarmult_base(pk, a.dh_sk), 0);
    CHECK_MEMEQ(pk, a.dh_pk, 32);

    /* Signing works with the derived pair. */
    uint8_t sig[64];
    const uint8_t msg[] = "hello";
    crypto_sign_detached(sig, NULL, msg, sizeof(msg), a.sign_sk);
    CHECK_EQ(crypto_sign_verify_detached(sig, msg, sizeof(msg), a.sign_pk), 0);

    /* Same env seed, same identity (simulator determinism). */
    struct test_env te2;
    test_env_init(&te2, seed, 1);
    CHECK_OK(ppdb_identity_generate(&b, &te2.env));
    CHECK(ppdb_node_id_equal(&a.id, &b.id));
    test_env_init(&te2, seed + 1, 1);
    CHECK_OK(ppdb_identity_generate(&b, &te2.env));
    CHECK(!ppdb_node_id_equal(&a.id, &b.id));

    char hex[PPDB_NODE_ID_HEXLEN];
    struct ppdb_node_id parsed;
    CHECK_EQ(strlen(ppdb_node_id_hex(&a.id, hex)), 40);
    CHECK_OK(ppdb_node_id_parse(hex, &parsed));
    CHECK(ppdb_node_id_equal(&parsed, &a.id));
    CHECK_ERR(ppdb_node_id_parse("abc", &parsed), PPDB_EINVAL);
    ppdb_identity_wipe(&a);
    ppdb_identity_wipe(&b);
}

static void test_identity_file(uint64_t seed)
{
    struct test_env te;
    test_env_init(&te, seed, 1700000000000);
    struct ppdb_identity a, b;
    bool created = false;
    CHECK_OK(ppdb_identity_load_or_create(tmpdir, &te.env, &a, &created));
    CHECK(created);
    char path[512];
    path_in(path, sizeof(path), PPDB_IDENTITY_FILE);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0); /* renamed away */

    /* Reload (another env seed: it must not be used) gives the same id. */
    test_env_init(&te, seed + 99, 1);
    CHECK_OK(ppdb_identity_load_or_create(tmpdir, &te.env, &b, &created));
    CHECK(!created);
    CHECK(ppdb_node_id_equal(&a.id, &b.id));
    CHECK_MEMEQ(a.dh_sk, b.dh_sk, 32);

    /* Group-readable: refused. */
    CHECK_EQ(chmod(path, 0640), 0);
    CHECK_ERR(ppdb_identity_load(path, &b), PPDB_EPERM);
    CHECK_EQ(chmod(path, 0600), 0);

    /* An id line that does not match the seed: refused as corrupt. */
    struct ppdb_identity other;
    CHECK_OK(ppdb_identity_generate(&other, &te.env));
    other.id = a.id;
    char bad[512];
    path_in(bad, sizeof(bad), "bad_identity");
    CHECK_OK(ppdb_identity_save(bad, &other));
    CHECK_ERR(ppdb_identity_load(bad, &b), PPDB_ECORRUPT);
    FILE *f = fopen(bad, "w");
    fputs("version 1\nseed zz\n", f);
    fclose(f);
    CHECK_EQ(chmod(bad, 0600), 0);
    CHECK_ERR(ppdb_identity_load(bad, &b), PPDB_ECORRUPT);
    path_in(bad, sizeof(bad), "missing");
    CHECK_ERR(ppdb_identity_load(bad, &b), PPDB_ENOENT);
    ppdb_identity_wipe(&a);
    ppdb_identity_wipe(&b);
    ppdb_identity_wipe(&other);
}

static void test_cluster_key(uint64_t seed)
{
    struct test_env te;
    test_env_init(&te, seed, 1);
    uint8_t k[PPDB_CLUSTER_KEY_LEN], k2[PPDB_CLUSTER_KEY_LEN];
    ppdb_cluster_key_generate(&te.env, k);
    CHECK_NE(ppdb_cluster_key_id(k), 0);

    char text[PPDB_CLUSTER_KEY_STRLEN];
    CHECK_EQ(strlen(ppdb_cluster_key_format(k, text)), 44);
    CHECK_OK(ppdb_cluster_key_parse(text, k2));
    CHECK_MEMEQ(k, k2, sizeof(k));
    char padded[64];
    snprintf(padded, sizeof(padded), "  %s\n", text);
    memset(k2, 0, sizeof(k2));
    CHECK_OK(ppdb_cluster_key_parse(padded, k2));
    CHECK_MEMEQ(k, k2, sizeof(k));
    char hex[65];
    ppdb_hex(k, sizeof(k), hex);
    memset(k2, 0, sizeof(k2));
    CHECK_OK(ppdb_cluster_key_parse(hex, k2));
    CHECK_MEMEQ(k, k2, sizeof(k));
    CHECK_ERR(ppdb_cluster_key_parse("", k2), PPDB_EINVAL);
    CHECK_ERR(ppdb_cluster_key_parse("not a key", k2), PPDB_EINVAL);
    text[10] = '!';
    CHECK_ERR(ppdb_cluster_key_parse(text, k2), PPDB_EINVAL);

    char path[512];
    struct stat st;
    path_in(path, sizeof(path), "cluster.key");
    CHECK_OK(ppdb_cluster_key_save(path, k));
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    memset(k2, 0, sizeof(k2));
    CHECK_OK(ppdb_cluster_key_load(path, k2));
    CHECK_MEMEQ(k, k2, sizeof(k));
    CHECK_EQ(chmod(path, 0644), 0);
    CHECK_ERR(ppdb_cluster_key_load(path, k2), PPDB_EPERM);

    unsetenv(PPDB_CLUSTER_KEY_ENV);
    CHECK_ERR(ppdb_cluster_key_from_environ(k2), PPDB_ENOTFOUND);
    setenv(PPDB_CLUSTER_KEY_ENV, hex, 1);
    memset(k2, 0, sizeof(k2));
    CHECK_OK(ppdb_cluster_key_from_environ(k2));
    CHECK_MEMEQ(k, k2, sizeof(k));
    unsetenv(PPDB_CLUSTER_KEY_ENV);

    /* Ids differ between keys and are stable for one key. */
    ppdb_cluster_key_generate(&te.env, k2);
    CHECK_NE(ppdb_cluster_key_id(k), ppdb_cluster_key_id(k2));
    CHECK_EQ(ppdb_cluster_key_id(k), ppdb_cluster_key_id(k));
}

static void cleanup(void)
{
    const char *names[] = {"identity", "bad_identity", "cluster.key"};
    char path[512];
    for (size_t i = 0; i < PPDB_ARRAY_LEN(names); i++) {
        path_in(path, sizeof(path), names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 42);
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    CHECK_OK(ppdb_wire_init());
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/ppdb-wire-id-XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(tmpdir) != NULL);
    test_derivation(seed);
    test_identity_file(seed);
    test_cluster_key(seed);
    cleanup();
    check_no_leaks(&base);
    printf("test_wire_identity: ok\n");
    return 0;
}
