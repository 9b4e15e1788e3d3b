/*
 * ppdb_wire.h - node identity, cluster keys, the msgpack envelope and
 * sealed datagrams: every byte one PPDB node sends another over UDP.
 *
 * Byte layouts, the message-type registry, the replay rules and key
 * rotation are documented in docs/formats/wire.md; the constants below are
 * the authoritative values and that page must agree with them.
 *
 *   identity   Ed25519 key pair from a 32-byte seed (drawn from the env, so
 *              the simulator is deterministic); node id = first 20 bytes of
 *              BLAKE2b(public key); X25519 keys derived for the Noise layer.
 *   keyring    installed cluster keys by 4-byte key id; one primary seals,
 *              every installed key opens (rotation without downtime). An
 *              insecure mode (no key) exists only when explicitly enabled.
 *   envelope   msgpack map {version, type, sender, request id, body}, body
 *              checked against the schema registered for its type.
 *   dgram      [clear header | AEAD(envelope)] <= PPDB_DGRAM_MAX bytes,
 *              XChaCha20-Poly1305 under the primary key, header as
 *              associated data; replay window per recent sender boot.
 *
 * Everything here is I/O-free except ppdb_identity_load/save and the
 * ppdb_cluster_key_load/save/from_environ functions (src/keyfile.c).
 *
 * TRUST BOUNDARY: the cluster key. Any holder of an installed key can send
 * datagrams that every node accepts, under any sender id it likes.
 */
#ifndef PPDB_WIRE_H
#define PPDB_WIRE_H

#include "ppdb_base.h"
#include "ppdb_env.h"
#include "ppdb_mp.h"

/* ------------------------------------------------------------- libsodium */

/* sodium_init; 0, or PPDB_EIO when libsodium cannot start. Idempotent. */
int ppdb_wire_init(void);

/* Fills buf with len random bytes. */
typedef void (*ppdb_wire_random_cb)(void *arg, void *buf, size_t len);

/* Simulator builds only: route libsodium's randombytes through cb (e.g. the
 * running node's env RNG) so any key libsodium draws is reproducible. Must
 * be called before the first ppdb_wire_init/sodium_init of the process;
 * returns PPDB_EBUSY afterwards. Deliberate process-global state: libsodium's
 * generator is itself process-global. */
int ppdb_wire_sodium_set_random(ppdb_wire_random_cb cb, void *arg);

/* ------------------------------------------------------------- identity */

#define PPDB_NODE_ID_LEN       20
#define PPDB_NODE_ID_HEXLEN    41 /* 40 hex digits and a NUL */
#define PPDB_IDENTITY_SEED_LEN 32

struct ppdb_node_id {
    uint8_t b[PPDB_NODE_ID_LEN];
};

/* A node's long-term keys. Secret halves are wiped by ppdb_identity_wipe. */
struct ppdb_identity {
    uint8_t seed[PPDB_IDENTITY_SEED_LEN]; /* the only secret stored on disk */
    uint8_t sign_pk[32];                  /* Ed25519 public key */
    uint8_t sign_sk[64];                  /* Ed25519 secret key (seed ‖ pk) */
    uint8_t dh_pk[32];                    /* X25519, derived from sign_pk */
    uint8_t dh_sk[32];                    /* X25519, derived from sign_sk */
    struct ppdb_node_id id;               /* BLAKE2b(sign_pk)[0..20) */
};

/* Derives the whole identity from a seed. PPDB_EINVAL if libsodium rejects
 * the key (cannot happen for a real seed) or ppdb_wire_init was not run. */
int ppdb_identity_from_seed(struct ppdb_identity *idn, const uint8_t seed[PPDB_IDENTITY_SEED_LEN]);
/* A fresh identity from 32 bytes of env randomness. */
int ppdb_identity_generate(struct ppdb_identity *idn, struct ppdb_env *env);
void ppdb_identity_wipe(struct ppdb_identity *idn);

void ppdb_node_id_from_pk(const uint8_t sign_pk[32], struct ppdb_node_id *out);
/* Lowercase hex into out (PPDB_NODE_ID_HEXLEN bytes); returns out. */
char *ppdb_node_id_hex(const struct ppdb_node_id *id, char *out);
int ppdb_node_id_parse(const char *hex, struct ppdb_node_id *out);
static inline bool ppdb_node_id_equal(const struct ppdb_node_id *a, const struct ppdb_node_id *b)
{
    return memcmp(a->b, b->b, PPDB_NODE_ID_LEN) == 0;
}

/* Identity file (src/keyfile.c): `<dir>/identity`, mode 0600, written
 * atomically (tmp + fsync + rename + directory fsync). Loading refuses a
 * file readable by group or others (PPDB_EPERM), a malformed file
 * (PPDB_ECORRUPT) and a file whose recorded id does not match its seed. */
#define PPDB_IDENTITY_FILE "identity"
int ppdb_identity_save(const char *path, const struct ppdb_identity *idn);
int ppdb_identity_load(const char *path, struct ppdb_identity *out);
/* Loads <dir>/identity, or generates and saves one (*created_out = true). */
int ppdb_identity_load_or_create(const char *dir, struct ppdb_env *env, struct ppdb_identity *out,
                                 bool *created_out);

/* ----------------------------------------------------------- cluster key */

#define PPDB_CLUSTER_KEY_LEN    32
#define PPDB_CLUSTER_KEY_STRLEN 45 /* base64 with padding (44) and a NUL */
#define PPDB_CLUSTER_KEY_ENV    "PPDB_CLUSTER_KEY"
#define PPDB_KEY_ID_NONE        0u /* insecure datagrams; never a real key's id */

/* A fresh key from env randomness (redrawn while its id would be 0). */
void ppdb_cluster_key_generate(struct ppdb_env *env, uint8_t key[PPDB_CLUSTER_KEY_LEN]);
/* Key id: first 4 bytes (big-endian) of BLAKE2b-256 keyed by the key over
 * the label "ppdb cluster key id v1". 0 for the 1-in-2^32 unusable key. */
uint32_t ppdb_cluster_key_id(const uint8_t key[PPDB_CLUSTER_KEY_LEN]);
/* Standard base64 with padding, 44 characters; returns out. */
char *ppdb_cluster_key_format(const uint8_t key[PPDB_CLUSTER_KEY_LEN], char *out);
/* Accepts the base64 form or 64 hex digits; surrounding whitespace is
 * ignored. PPDB_EINVAL otherwise. */
int ppdb_cluster_key_parse(const char *s, uint8_t key[PPDB_CLUSTER_KEY_LEN]);
/* Files hold the formatted key and a newline, mode 0600, written like the
 * identity file; load refuses group/other-readable files (PPDB_EPERM). */
int ppdb_cluster_key_save(const char *path, const uint8_t key[PPDB_CLUSTER_KEY_LEN]);
int ppdb_cluster_key_load(const char *path, uint8_t key[PPDB_CLUSTER_KEY_LEN]);
/* From $PPDB_CLUSTER_KEY; PPDB_ENOTFOUND when unset or empty. */
int ppdb_cluster_key_from_environ(uint8_t key[PPDB_CLUSTER_KEY_LEN]);

/* ---------------------------------------------------------------- keyring */

#define PPDB_KEYRING_MAX 8

/* One installed key. `dgram_key` is a subkey (BLAKE2b keyed by the cluster
 * key over "ppdb dgram key v1") so datagrams, key ids and the stream
 * layer's psk never use the same key material. */
struct ppdb_wire_key {
    uint32_t id;
    bool used;
    uint8_t key[PPDB_CLUSTER_KEY_LEN];
    uint8_t dgram_key[32];
};

/* Caller-owned, no allocation. Not thread-safe (the loop owns it). */
struct ppdb_keyring {
    struct ppdb_wire_key keys[PPDB_KEYRING_MAX];
    int primary;   /* index into keys, -1: none */
    bool insecure; /* accept (and, without a primary, send) unkeyed datagrams */
};

void ppdb_keyring_init(struct ppdb_keyring *kr);
void ppdb_keyring_deinit(struct ppdb_keyring *kr); /* wipes the keys */
/* Installs a key (not primary). Idempotent for an installed key. EINVAL for
 * a key whose id is 0, EEXIST for a different key with the same id,
 * ELIMIT when PPDB_KEYRING_MAX keys are installed. */
int ppdb_keyring_install(struct ppdb_keyring *kr, const uint8_t key[PPDB_CLUSTER_KEY_LEN],
                         uint32_t *id_out);
/* Makes an installed key the primary (the one that seals). ENOTFOUND. */
int ppdb_keyring_use(struct ppdb_keyring *kr, uint32_t id);
/* Removes a key. EBUSY for the primary (switch first), ENOTFOUND. */
int ppdb_keyring_remove(struct ppdb_keyring *kr, uint32_t id);
const struct ppdb_wire_key *ppdb_keyring_find(const struct ppdb_keyring *kr, uint32_t id);
const struct ppdb_wire_key *ppdb_keyring_primary(const struct ppdb_keyring *kr);
uint32_t ppdb_keyring_count(const struct ppdb_keyring *kr);
/* Insecure mode: must be turned on explicitly (config flag); status shows it.
 * With keys installed too, both keyed and unkeyed datagrams are accepted
 * and the primary seals: the migration path from an open mesh to a keyed
 * one. It logs a warning each time it is switched on. */
void ppdb_keyring_set_insecure(struct ppdb_keyring *kr, bool on, struct ppdb_logger *log);
static inline bool ppdb_keyring_insecure(const struct ppdb_keyring *kr)
{
    return kr->insecure;
}

/* ------------------------------------------------------ message registry */

/* Message types: one byte, one range per module. Add a type here (or in
 * the module's header, within its range) and to docs/formats/wire.md
 * before it ships; numbers are never reused.
 *
 *   0x00-0x0F  messaging (generic: error, ping/pong)
 *   0x10-0x2F  SWIM membership
 *   0x30-0x4F  Kademlia DHT
 *   0x50-0x7F  ring and replication
 *   0x80-0x9F  admin and CLI
 *   0xA0-0xFF  reserved
 */
#define PPDB_WIRE_VERSION 1

enum ppdb_wire_module {
    PPDB_WMOD_MESSAGING = 0,
    PPDB_WMOD_SWIM = 1,
    PPDB_WMOD_DHT = 2,
    PPDB_WMOD_RING = 3,
    PPDB_WMOD_ADMIN = 4,
    PPDB_WMOD_RESERVED = 5
};
#define PPDB_MSG_MESSAGING_FIRST 0x00
#define PPDB_MSG_MESSAGING_LAST  0x0F
#define PPDB_MSG_SWIM_FIRST      0x10
#define PPDB_MSG_SWIM_LAST       0x2F
#define PPDB_MSG_DHT_FIRST       0x30
#define PPDB_MSG_DHT_LAST        0x4F
#define PPDB_MSG_RING_FIRST      0x50
#define PPDB_MSG_RING_LAST       0x7F
#define PPDB_MSG_ADMIN_FIRST     0x80
#define PPDB_MSG_ADMIN_LAST      0x9F

/* Messaging types (registered by ppdb_wire_registry_init). */
#define PPDB_MSG_ERROR 0x01 /* {0: code int, 1: message str<=256} reply to a failed request */
#define PPDB_MSG_PING  0x02 /* {0?: payload bin<=1280} asks for a PONG with the same request id */
#define PPDB_MSG_PONG  0x03 /* {0?: payload bin<=1280} */

/* Body field kinds a schema can require. */
enum ppdb_wire_kind {
    PPDB_WK_ANY = 0,
    PPDB_WK_UINT, /* positive integer */
    PPDB_WK_INT,  /* any integer that fits int64 */
    PPDB_WK_BOOL,
    PPDB_WK_STR,   /* max_len bytes */
    PPDB_WK_BIN,   /* min_len..max_len bytes */
    PPDB_WK_ARRAY, /* at most max_len items */
    PPDB_WK_MAP    /* at most max_len pairs */
};

struct ppdb_wire_field {
    uint32_t key; /* map key in the body */
    uint8_t kind; /* enum ppdb_wire_kind */
    bool required;
    uint32_t min_len; /* BIN only */
    uint32_t max_len; /* STR/BIN/ARRAY/MAP; 0 = no limit beyond the packet */
};

/* The schema of one message type: its body is a map keyed by small
 * unsigned integers; listed fields are checked, others ignored (newer
 * senders may add fields). Schemas are static data owned by their module. */
struct ppdb_wire_schema {
    uint32_t type;
    const char *name; /* "swim.ping" */
    const struct ppdb_wire_field *fields;
    uint32_t nfields;
};

/* Caller-owned table of known types (one per node or process; no globals). */
struct ppdb_wire_registry {
    const struct ppdb_wire_schema *types[256];
};

void ppdb_wire_registry_init(struct ppdb_wire_registry *r); /* + messaging types */
/* ERANGE: type outside every module range; EEXIST: already registered. */
int ppdb_wire_registry_add(struct ppdb_wire_registry *r, const struct ppdb_wire_schema *s);
const struct ppdb_wire_schema *ppdb_wire_registry_find(const struct ppdb_wire_registry *r,
                                                       uint32_t type);
enum ppdb_wire_module ppdb_wire_module_of(uint32_t type);
const char *ppdb_wire_module_name(enum ppdb_wire_module m);

/* --------------------------------------------------------------- envelope */

/* Envelope map keys. */
#define PPDB_ENV_K_VERSION 0
#define PPDB_ENV_K_TYPE    1
#define PPDB_ENV_K_SENDER  2
#define PPDB_ENV_K_REQID   3
#define PPDB_ENV_K_BODY    4

struct ppdb_envelope_hdr {
    uint32_t version;           /* PPDB_WIRE_VERSION */
    uint32_t type;              /* registry type */
    struct ppdb_node_id sender; /* claimed by the sender; trust = cluster key */
    uint64_t request_id;        /* 0: no reply expected; replies echo it */
};

/* A decoded envelope. `body` points into `doc`, which points into the
 * input bytes: both must outlive it. */
struct ppdb_envelope {
    struct ppdb_envelope_hdr hdr;
    const msgpack_object *body; /* a map, checked against `schema` */
    const struct ppdb_wire_schema *schema;
    struct ppdb_mp_doc doc;
    bool live; /* doc needs ppdb_envelope_deinit */
};

/* Writes the map header, the four header fields and the body key: the
 * caller then writes exactly one object (the body map) with w. */
void ppdb_envelope_begin(struct ppdb_mpw *w, const struct ppdb_envelope_hdr *h);
/* Appends a whole envelope to b with an already encoded body (one msgpack
 * map; an empty body is body == NULL, body_len == 0, written as {}). */
int ppdb_envelope_encode(struct ppdb_buf *b, const struct ppdb_envelope_hdr *h, const uint8_t *body,
                         size_t body_len);

/* Decodes and checks an envelope. Errors: ETRUNC/EPROTO/ELIMIT (malformed
 * msgpack), ETYPE (a field of the wrong type), EPROTO (a required field
 * missing), ERANGE (a length out of bounds), EVERSION (another protocol
 * version), ENOTSUP (a type nobody registered: out->hdr is filled so the
 * caller can count or answer it, but there is no body). On any error out
 * needs no deinit. */
int ppdb_envelope_decode(const struct ppdb_wire_registry *reg, const uint8_t *p, size_t n,
                         struct ppdb_envelope *out);
void ppdb_envelope_deinit(struct ppdb_envelope *e);

/* ------------------------------------------------------------ replay window */

#define PPDB_REPLAY_EPOCH_LEN 16
#define PPDB_REPLAY_WINDOW    128 /* counters tracked below the highest seen */

struct ppdb_replay_entry {
    uint8_t epoch[PPDB_REPLAY_EPOCH_LEN]; /* the sender boot */
    uint64_t top;                         /* highest counter accepted */
    uint64_t bits[2];                     /* bit i: counter top - i seen */
    int64_t floor_ms;                     /* reject sent_wall_ms < floor_ms */
    int64_t max_wall_ms;                  /* highest sent_wall_ms accepted */
    uint32_t prev, next;                  /* LRU list (most recent at head) */
    uint32_t chain;                       /* hash chain */
    uint32_t hash;                        /* low 32 bits of the epoch's hash */
};

/* Per-boot sliding windows in a bounded LRU, plus a hashed table of wall
 * clock watermarks left behind by evicted boots. Memory is fixed at init:
 * ppdb_replay_memory() bytes, whatever the number of peers. */
struct ppdb_replay {
    struct ppdb_replay_entry *entries;
    uint32_t cap, len;
    uint32_t *heads; /* hash heads, nheads a power of two */
    uint32_t nheads;
    int64_t *marks; /* watermark per bucket, nmarks a power of two */
    uint32_t nmarks;
    uint32_t lru_head, lru_tail;
    int64_t boot_floor_ms; /* nothing sent before this node started is accepted */
    uint64_t evictions;
};

/* cap senders (>= 1), nmarks watermark buckets (power of two >= 1). */
int ppdb_replay_init(struct ppdb_replay *r, uint32_t cap, uint32_t nmarks, int64_t boot_wall_ms);
void ppdb_replay_deinit(struct ppdb_replay *r);
/* Accepts (and records) or rejects with PPDB_EREPLAY: a counter already
 * seen or below the window, or a sent_wall_ms below the boot's floor. Only
 * call it for authenticated datagrams. */
int ppdb_replay_accept(struct ppdb_replay *r, const uint8_t epoch[PPDB_REPLAY_EPOCH_LEN],
                       uint64_t counter, int64_t sent_wall_ms);
size_t ppdb_replay_memory(const struct ppdb_replay *r);

/* --------------------------------------------------------------- datagrams */

/* Clear header (all integers big-endian), then ciphertext, then tag:
 *   0  1  magic/version 0xD1
 *   1  1  flags (PPDB_DGRAM_F_*; unknown bits are rejected)
 *   2  4  key id (0 when insecure)
 *   6 24  nonce = boot epoch (8: wall ms at boot ‖ 8: random) ‖ counter (8)
 *  30  8  sender wall ms (int64)
 *  38  n  ciphertext of the envelope
 *  38+n 16 Poly1305 tag (null cipher: CRC-32C, then 12 zero bytes) */
#define PPDB_DGRAM_MAX        1400
#define PPDB_DGRAM_MAGIC      0xD1
#define PPDB_DGRAM_F_INSECURE 0x01 /* no cluster key: null cipher, key id 0 */
#define PPDB_DGRAM_F_NULL     0x02 /* simulator "encryption off": null cipher */
#define PPDB_DGRAM_F_KNOWN    0x03
#define PPDB_DGRAM_HDR_LEN    38
#define PPDB_DGRAM_NONCE_OFF  6
#define PPDB_DGRAM_NONCE_LEN  24
#define PPDB_DGRAM_WALL_OFF   30
#define PPDB_DGRAM_TAG_LEN    16
#define PPDB_DGRAM_OVERHEAD   (PPDB_DGRAM_HDR_LEN + PPDB_DGRAM_TAG_LEN)
#define PPDB_DGRAM_MAX_PLAIN  (PPDB_DGRAM_MAX - PPDB_DGRAM_OVERHEAD) /* envelope bytes */

struct ppdb_dgram_options {
    uint32_t max_age_ms;     /* older datagrams are stale (default 30000) */
    uint32_t max_future_ms;  /* further ahead is a clock error (default 10000) */
    uint32_t replay_senders; /* LRU of sender boots (default 1024) */
    uint32_t replay_marks;   /* watermark buckets, power of two (default 4096) */
    bool null_cipher;        /* simulator only: swap the AEAD for a checksum */
};
void ppdb_dgram_options_default(struct ppdb_dgram_options *o);

/* Every outcome of ppdb_dgram_open is counted under exactly one reason. */
struct ppdb_dgram_stats {
    uint64_t sealed, seal_errors;
    uint64_t opened;       /* accepted */
    uint64_t oversized;    /* longer than PPDB_DGRAM_MAX (ELIMIT) */
    uint64_t truncated;    /* shorter than header + tag (ETRUNC) */
    uint64_t bad_version;  /* wrong magic/version byte (EVERSION) */
    uint64_t bad_flags;    /* unknown flag bits (EPROTO) */
    uint64_t mode_refused; /* insecure / null cipher not enabled here (EAUTH) */
    uint64_t unknown_key;  /* key id not installed (ENOKEY) */
    uint64_t auth_failed;  /* tag mismatch (EAUTH) */
    uint64_t stale;        /* older than max_age_ms (EREPLAY) */
    uint64_t future;       /* ahead by more than max_future_ms (ECLOCK) */
    uint64_t replayed;     /* seen before or below a watermark (EREPLAY) */
    uint64_t bad_envelope; /* sealed fine, envelope malformed */
    uint64_t unknown_type; /* sealed fine, type not registered (ENOTSUP) */
    uint64_t insecure_in;  /* accepted without a key (also in `opened`) */
};

/* A node's datagram endpoint state: the boot epoch and counter it seals
 * with, and the replay state it opens with. Caller-owned; the keyring and
 * registry are borrowed and must outlive it (the keyring may change between
 * calls: rotation). */
struct ppdb_dgram {
    struct ppdb_env *env;
    const struct ppdb_keyring *kr;
    const struct ppdb_wire_registry *reg;
    struct ppdb_node_id self;
    uint8_t epoch[PPDB_REPLAY_EPOCH_LEN];
    uint64_t counter; /* last counter used */
    struct ppdb_dgram_options opt;
    struct ppdb_replay replay;
    struct ppdb_dgram_stats stats;
    struct ppdb_buf scratch; /* envelope encoding for ppdb_dgram_seal_msg */
};

/* o may be NULL (defaults). Draws the boot epoch from env. */
int ppdb_dgram_init(struct ppdb_dgram *d, struct ppdb_env *env, const struct ppdb_keyring *kr,
                    const struct ppdb_wire_registry *reg, const struct ppdb_node_id *self,
                    const struct ppdb_dgram_options *o);
void ppdb_dgram_deinit(struct ppdb_dgram *d);

/* Seals an encoded envelope into out (cap >= its length + overhead).
 * ENOKEY: no primary key and insecure mode off. ELIMIT: the datagram would
 * exceed PPDB_DGRAM_MAX. */
int ppdb_dgram_seal(struct ppdb_dgram *d, const uint8_t *envelope, size_t len, uint8_t *out,
                    size_t cap, size_t *len_out);
/* Encodes an envelope from d->self, type, request id and an encoded body
 * (NULL/0: empty map), then seals it into out[PPDB_DGRAM_MAX]. */
int ppdb_dgram_seal_msg(struct ppdb_dgram *d, uint32_t type, uint64_t request_id,
                        const uint8_t *body, size_t body_len, uint8_t *out, size_t *len_out);

/* An opened datagram: the plaintext and the envelope decoded from it. */
struct ppdb_dgram_msg {
    struct ppdb_envelope env;
    uint32_t key_id;
    int64_t sent_wall_ms;
    bool insecure;
    size_t plain_len;
    uint8_t plain[PPDB_DGRAM_MAX];
};

/* Checks, decrypts, replay-checks and decodes one datagram. On success the
 * caller must ppdb_dgram_msg_deinit(m). Every failure is counted in
 * d->stats and leaves m needing no deinit (on ENOTSUP, m->env.hdr holds the
 * header of the unknown message). */
int ppdb_dgram_open(struct ppdb_dgram *d, const uint8_t *pkt, size_t len, struct ppdb_dgram_msg *m);
void ppdb_dgram_msg_deinit(struct ppdb_dgram_msg *m);
/* Total rejections of all reasons. */
uint64_t ppdb_dgram_stats_rejected(const struct ppdb_dgram_stats *s);

#endif /* PPDB_WIRE_H */
