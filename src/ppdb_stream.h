/*
 * ppdb_stream.h - encrypted streams between PPDB nodes (and from the CLI):
 * a Noise handshake, sealed length-prefixed frames, request/response with
 * back-pressure, over the env seam's byte streams.
 *
 * Layers, bottom up (byte layouts in docs/formats/wire.md, "Streams"):
 *
 *   noise    CipherState, SymmetricState and HandshakeState of the Noise
 *            Protocol Framework (revision 34) built from libsodium: X25519,
 *            ChaCha20-Poly1305 (or AES-256-GCM), BLAKE2b with HMAC-HKDF.
 *            Patterns NN, XX and XXpsk3. Pure functions of their inputs.
 *   hs       the PPDB handshake: Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b with
 *            msgpack payloads (version, role, Ed25519 public key, ciphers,
 *            cluster key id); checks that each static X25519 key is the one
 *            derived from the claimed Ed25519 key, so node ids are
 *            authenticated; picks the transport cipher. I/O-free.
 *   frame    [u32be length][AEAD(batch of messages)], counter nonces per
 *            direction, periodic rekey, bounded size; a decoder that
 *            accepts bytes in any split and reports every rejection.
 *   ep       an endpoint on an env: listens, connects (one outbound
 *            connection per peer address, reused, closed when idle), runs
 *            the handshake, batches outgoing messages into frames once per
 *            loop turn, matches replies to requests (ids, timeouts, a bound
 *            on requests in flight), and applies back-pressure both ways.
 *
 * Threading: everything runs on the env's loop thread. No globals.
 * TRUST BOUNDARY: as for datagrams, the cluster key. A client (the CLI)
 * proves it holds the key but is told apart by its role and never enters
 * membership: the layer above reads ppdb_stream_peer.role.
 */
#ifndef PPDB_STREAM_H
#define PPDB_STREAM_H

#include "ppdb_base.h"
#include "ppdb_env.h"
#include "ppdb_wire.h"

/* ================================================================= noise */

#define PPDB_NOISE_KEY_LEN  32
#define PPDB_NOISE_DH_LEN   32
#define PPDB_NOISE_HASH_LEN 64 /* BLAKE2b */
#define PPDB_NOISE_TAG_LEN  16
#define PPDB_NOISE_MSG_MAX  65535 /* Noise's limit on any message */
#define PPDB_NOISE_NAME_MAX 64

/* Cipher functions; also the bits of the "ciphers" field in the handshake. */
enum ppdb_noise_cipher {
    PPDB_NOISE_CHACHAPOLY = 1,
    PPDB_NOISE_AESGCM = 2,
    PPDB_NOISE_NULL = 4 /* benchmarks and the simulator only: no secrecy */
};

enum ppdb_noise_pattern {
    PPDB_NOISE_NN = 0,     /* -> e; <- e, ee (test vectors only) */
    PPDB_NOISE_XX = 1,     /* -> e; <- e, ee, s, es; -> s, se */
    PPDB_NOISE_XXPSK3 = 2, /* XX with psk after se in message 3 */
};

#define PPDB_NOISE_AES_STATE_LEN 512 /* libsodium's crypto_aead_aes256gcm_state */

struct ppdb_noise_cs {
    uint8_t k[PPDB_NOISE_KEY_LEN];
    uint64_t n; /* next nonce; UINT64_MAX is reserved (rekey) */
    bool has_key;
    uint8_t cipher; /* enum ppdb_noise_cipher */
    /* AES-GCM key schedule and GHASH powers of k, expanded on first use
     * after each set_key/rekey instead of on every frame. Self-contained
     * (no pointers), so a cs may be copied by value. */
    bool aes_ready;
    _Alignas(16) uint8_t aes_state[PPDB_NOISE_AES_STATE_LEN];
};

void ppdb_noise_cs_init(struct ppdb_noise_cs *cs, uint8_t cipher);
void ppdb_noise_cs_set_key(struct ppdb_noise_cs *cs, const uint8_t k[PPDB_NOISE_KEY_LEN]);
/* EncryptWithAd: out gets n + TAG_LEN bytes (n bytes without a key); out
 * may equal pt. ELIMIT when the nonce space is exhausted. */
int ppdb_noise_cs_encrypt(struct ppdb_noise_cs *cs, const uint8_t *ad, size_t ad_len,
                          const uint8_t *pt, size_t n, uint8_t *out);
/* DecryptWithAd: out gets n - TAG_LEN bytes; may equal ct. EAUTH on a bad
 * tag (the nonce is then not advanced), ETRUNC when n < TAG_LEN. */
int ppdb_noise_cs_decrypt(struct ppdb_noise_cs *cs, const uint8_t *ad, size_t ad_len,
                          const uint8_t *ct, size_t n, uint8_t *out);
/* REKEY(k) = first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zeros). */
void ppdb_noise_cs_rekey(struct ppdb_noise_cs *cs);

struct ppdb_noise_ss {
    struct ppdb_noise_cs cs;
    uint8_t ck[PPDB_NOISE_HASH_LEN];
    uint8_t h[PPDB_NOISE_HASH_LEN];
};

/* HMAC-BLAKE2b and HKDF exactly as Noise section 4.3 defines them;
 * exported for the tests. outputs: 2 or 3 blocks of HASH_LEN. */
void ppdb_noise_hmac(const uint8_t key[PPDB_NOISE_HASH_LEN], const uint8_t *data, size_t n,
                     uint8_t out[PPDB_NOISE_HASH_LEN]);
void ppdb_noise_hkdf(const uint8_t ck[PPDB_NOISE_HASH_LEN], const uint8_t *ikm, size_t ikm_len,
                     int outputs, uint8_t *o1, uint8_t *o2, uint8_t *o3);

struct ppdb_noise_hs {
    struct ppdb_noise_ss ss;
    uint8_t pattern;
    bool initiator;
    uint8_t msg_index; /* next message of the pattern */
    bool has_s, has_e, has_rs, has_re, has_psk;
    uint8_t s_sk[32], s_pk[32];
    uint8_t e_sk[32], e_pk[32];
    uint8_t rs[32], re[32];
    uint8_t psk[32];
    int failed; /* first error; a failed handshake stays failed */
};

/* Initialize(protocol, initiator, prologue, s, e): s_sk may be NULL (NN);
 * s_pk is its public key when the caller has it (an identity keeps it: one
 * X25519 base multiplication less per handshake, a fifth of a side's
 * work), else NULL to derive it. e_sk is the ephemeral private key, drawn
 * by the caller from the env RNG (so the simulator replays it). hs_cipher
 * names the handshake's cipher. */
int ppdb_noise_hs_init(struct ppdb_noise_hs *hs, enum ppdb_noise_pattern pattern, uint8_t hs_cipher,
                       bool initiator, const uint8_t *prologue, size_t prologue_len,
                       const uint8_t *s_sk, const uint8_t *s_pk, const uint8_t e_sk[32]);
/* The psk may be set any time before its token is processed. */
void ppdb_noise_hs_set_psk(struct ppdb_noise_hs *hs, const uint8_t psk[32]);
/* WriteMessage: out has cap bytes; ELIMIT if the message would not fit or
 * exceed PPDB_NOISE_MSG_MAX; EPROTO when it is not our turn. */
int ppdb_noise_hs_write(struct ppdb_noise_hs *hs, const uint8_t *payload, size_t n, uint8_t *out,
                        size_t cap, size_t *len_out);
/* ReadMessage: payload_out has cap bytes (n is enough). EAUTH on any
 * failed decryption or a low-order DH result, ETRUNC on short input,
 * ENOKEY when a psk is needed but not set. */
int ppdb_noise_hs_read(struct ppdb_noise_hs *hs, const uint8_t *msg, size_t n, uint8_t *payload_out,
                       size_t cap, size_t *len_out);
bool ppdb_noise_hs_done(const struct ppdb_noise_hs *hs);
bool ppdb_noise_hs_my_turn(const struct ppdb_noise_hs *hs);
/* Split(): send/recv cipher states for this side (initiator sends with c1). */
void ppdb_noise_hs_split(struct ppdb_noise_hs *hs, struct ppdb_noise_cs *send,
                         struct ppdb_noise_cs *recv);
void ppdb_noise_hs_wipe(struct ppdb_noise_hs *hs);
/* "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b" etc. into out[PPDB_NOISE_NAME_MAX]. */
void ppdb_noise_protocol_name(enum ppdb_noise_pattern p, uint8_t cipher, char *out);

/* ============================================================ handshake */

#define PPDB_STREAM_VERSION   1
#define PPDB_STREAM_PROLOGUE  "ppdb stream v1"
#define PPDB_STREAM_PSK_LABEL "ppdb stream psk v1"

enum ppdb_stream_role {
    PPDB_ROLE_NODE = 0,   /* a mesh member */
    PPDB_ROLE_CLIENT = 1, /* the CLI: throwaway key, never a member */
};

/* Handshake payload map keys (docs/formats/wire.md, "Streams"). */
#define PPDB_HS_K_VERSION   0
#define PPDB_HS_K_ROLE      1
#define PPDB_HS_K_SIGN_PK   2
#define PPDB_HS_K_CIPHERS   3
#define PPDB_HS_K_KEY_ID    4
#define PPDB_HS_K_CIPHER    5
#define PPDB_HS_PAYLOAD_MAX 1024 /* a longer handshake payload is refused */

/* psk = BLAKE2b-256 keyed by the cluster key over PPDB_STREAM_PSK_LABEL. */
void ppdb_stream_psk(const uint8_t key[PPDB_CLUSTER_KEY_LEN], uint8_t psk_out[32]);
/* Cipher bits this host can run: ChaChaPoly, plus AES-GCM when the CPU has it. */
uint32_t ppdb_stream_ciphers_local(void);

/* A decoded handshake payload (fields absent from a message stay 0). */
struct ppdb_hs_payload {
    uint32_t version, role, ciphers, key_id, cipher;
    bool has_sign_pk;
    uint8_t sign_pk[32];
};
/* Strict: a map with the fields message `msg` (1..3) requires. */
int ppdb_hs_payload_decode(int msg, const uint8_t *p, size_t n, struct ppdb_hs_payload *out);

/* One side of the PPDB handshake; messages without the length prefix. */
struct ppdb_stream_hs {
    struct ppdb_noise_hs noise;
    const struct ppdb_identity *idn; /* borrowed */
    const struct ppdb_keyring *kr;   /* borrowed */
    uint8_t role;                    /* ours */
    uint32_t ciphers;                /* offered / accepted by us */
    /* Results, valid when done: */
    uint8_t peer_role;
    uint8_t peer_sign_pk[32];
    struct ppdb_node_id peer_id;
    uint32_t key_id;
    uint8_t cipher; /* transport cipher */
    bool done;
};

/* e_sk: 32 random bytes from the env. ENOKEY: initiator without a primary
 * key (and not insecure). */
int ppdb_stream_hs_init(struct ppdb_stream_hs *hs, bool initiator, uint8_t role,
                        const struct ppdb_identity *idn, const struct ppdb_keyring *kr,
                        uint32_t ciphers, const uint8_t e_sk[32]);
/* Next outgoing message (out: PPDB_NOISE_MSG_MAX bytes is always enough). */
int ppdb_stream_hs_write(struct ppdb_stream_hs *hs, uint8_t *out, size_t cap, size_t *len_out);
/* Errors: EAUTH (bad tag, wrong psk, static key not derived from the
 * claimed Ed25519 key), ENOKEY (key id not installed), EVERSION, EPROTO
 * (malformed payload, no common cipher, a client posing as responder). */
int ppdb_stream_hs_read(struct ppdb_stream_hs *hs, const uint8_t *msg, size_t n);
bool ppdb_stream_hs_my_turn(const struct ppdb_stream_hs *hs);
void ppdb_stream_hs_split(struct ppdb_stream_hs *hs, struct ppdb_noise_cs *send,
                          struct ppdb_noise_cs *recv);
void ppdb_stream_hs_wipe(struct ppdb_stream_hs *hs);

/* ================================================================ frames */

#define PPDB_FRAME_HDR_LEN     4
#define PPDB_FRAME_OVERHEAD    (PPDB_FRAME_HDR_LEN + PPDB_NOISE_TAG_LEN)
#define PPDB_FRAME_MSG_HDR     4 /* u32be: bit 31 reply flag, bits 0..30 length */
#define PPDB_FRAME_REPLY_BIT   0x80000000u
#define PPDB_FRAME_MIN_MAX     4096       /* smallest allowed max_frame */
#define PPDB_FRAME_DEFAULT_MAX (1u << 20) /* 1 MiB, header and tag included */
#define PPDB_FRAME_REPLAY_TAGS 16         /* recent tags kept to name replays */

/* Every outcome of the decoder lands in exactly one counter. */
struct ppdb_frame_stats {
    uint64_t frames, messages, bytes;
    uint64_t auth_failed; /* bad tag: tampering, reordering, wrong key */
    uint64_t replayed;    /* bad tag, and the tag of a recent frame */
    uint64_t oversized;   /* length above max_frame */
    uint64_t truncated;   /* stream ended inside a frame */
    uint64_t malformed;   /* bad batch inside an authentic frame */
    uint64_t rekeys;
};

/* Seal state of one direction. */
struct ppdb_frame_tx {
    struct ppdb_noise_cs cs;
    uint64_t rekey_frames; /* rekey after this many frames (0: never) */
    uint64_t since_rekey;
    uint64_t rekeys;
};

/* Seal `plain` (n bytes at buf + PPDB_FRAME_HDR_LEN, room for the tag after
 * it) in place: writes the header, encrypts, appends the tag. Returns the
 * frame length. */
size_t ppdb_frame_seal(struct ppdb_frame_tx *tx, uint8_t *buf, size_t n);

/* Receive side: the open cipher state, rekey schedule and recent tags. */
struct ppdb_frame_rx {
    struct ppdb_noise_cs cs;
    uint32_t max_frame;
    uint64_t rekey_frames;
    uint64_t since_rekey;
    uint8_t tags[PPDB_FRAME_REPLAY_TAGS][PPDB_NOISE_TAG_LEN];
    uint32_t ntags;
    struct ppdb_frame_stats stats;
};

/* Called for each message of an opened frame; returning non-zero stops
 * the walk (the rest of that frame is dropped) and is passed back. */
typedef int (*ppdb_frame_msg_cb)(void *data, const uint8_t *msg, size_t n, bool reply);

/* Length of the frame at p[0..n): 0 when more bytes are needed, else the
 * whole frame length. ELIMIT (counted oversized) when the header announces
 * more than max_frame, ETRUNC (counted malformed) for a length under the tag. */
int ppdb_frame_peek(struct ppdb_frame_rx *rx, const uint8_t *p, size_t n, size_t *frame_len_out);
/* Opens one whole frame in place and walks its messages. EAUTH (counted
 * auth_failed or replayed), EPROTO (counted malformed), or the callback's
 * non-zero value. */
int ppdb_frame_open(struct ppdb_frame_rx *rx, uint8_t *frame, size_t len, ppdb_frame_msg_cb cb,
                    void *data);
/* The same for a frame in read-only memory (an env read buffer): decrypts
 * into out (len - PPDB_FRAME_OVERHEAD bytes, not overlapping the frame),
 * whose bytes the callback then sees; frame is not modified. */
int ppdb_frame_open_from(struct ppdb_frame_rx *rx, const uint8_t *frame, size_t len, uint8_t *out,
                         ppdb_frame_msg_cb cb, void *data);
/* Walks a batch of messages (plaintext). EPROTO when malformed. */
int ppdb_frame_walk(const uint8_t *p, size_t n, ppdb_frame_msg_cb cb, void *data);

/* ============================================================== endpoint */

struct ppdb_stream_ep;
struct ppdb_stream_conn;

struct ppdb_stream_options {
    uint8_t role;                  /* PPDB_ROLE_NODE or PPDB_ROLE_CLIENT */
    uint32_t max_frame;            /* bytes per frame, header+tag included (1 MiB) */
    uint64_t rekey_frames;         /* frames per direction between rekeys (65536) */
    uint32_t handshake_timeout_ms; /* connect + handshake (5000) */
    uint32_t request_timeout_ms;   /* default per request (10000) */
    uint32_t max_inflight;         /* outgoing requests per connection (256) */
    uint32_t max_inbound;          /* unanswered incoming requests before reads pause (256) */
    uint32_t max_conns;            /* connections of the endpoint (1024) */
    uint32_t idle_ms;              /* close a connection idle this long (60000) */
    uint32_t inbound_idle_ms;      /* ... one a peer opened (0: idle_ms); see ppdb_stream_ep_keep */
    size_t high_water;             /* queued + pending bytes that refuse sends (8 MiB) */
    size_t low_water;              /* ... and that resume them (2 MiB) */
    uint32_t ciphers;              /* offered; 0: ppdb_stream_ciphers_local() */
    bool null_cipher;              /* benchmarks/simulator: offer (only) the null cipher */
};
void ppdb_stream_options_default(struct ppdb_stream_options *o);

/* Who is on the other end: authenticated by the handshake. */
struct ppdb_stream_peer {
    uint64_t conn_id; /* handle for replies; never reused by an endpoint */
    uint8_t role;     /* enum ppdb_stream_role */
    struct ppdb_node_id id;
    uint8_t sign_pk[32];
    struct ppdb_addr addr; /* the remote socket address */
    bool inbound;
    uint32_t key_id;
    uint8_t cipher;
};

struct ppdb_stream_stats {
    uint64_t accepted, connected, connect_failed;
    uint64_t handshakes;       /* completed */
    uint64_t handshake_failed; /* all reasons, of which: */
    uint64_t hs_auth, hs_unknown_key, hs_proto, hs_timeout;
    uint64_t conn_limit; /* accept/connect refused: max_conns */
    uint64_t msgs_out, msgs_in, frames_out, bytes_out;
    uint64_t bad_envelope, unknown_type;
    uint64_t requests, replies, req_timeouts, req_limit, late_replies, req_failed;
    uint64_t send_refused; /* EAGAIN: above the high-water mark */
    uint64_t too_large;    /* a message that cannot fit in a frame */
    uint64_t read_pauses, write_errors;
    uint64_t idle_closed, reset;    /* idle timeouts; peers gone mid-stream */
    size_t peak_out_bytes;          /* max queued+pending on one connection */
    size_t peak_in_bytes;           /* max buffered unread bytes on one connection */
    struct ppdb_frame_stats frames; /* summed over closed and live connections */
};
/* The endpoint's counters with the frame counters of live connections
 * added in (ep->stats.frames holds those of closed ones). */
void ppdb_stream_ep_stats(const struct ppdb_stream_ep *ep, struct ppdb_stream_stats *out);
/* Total rejections (handshake failures and fatal frame errors). */
uint64_t ppdb_stream_stats_rejected(const struct ppdb_stream_stats *s);

/* A message arrived. msg (and everything it points to) is borrowed for the
 * call. A request (msg->hdr.request_id != 0) must be answered exactly once
 * with ppdb_stream_reply (now or later), or released with
 * ppdb_stream_release; until then it counts against max_inbound. */
typedef void (*ppdb_stream_msg_cb)(void *data, const struct ppdb_stream_peer *peer,
                                   const struct ppdb_envelope *msg);
/* A request finished: status 0 and the reply (borrowed for the call), or
 * ETIMEDOUT, ECONNRESET (the peer went away), ECANCELED (endpoint closed),
 * or the connection's failure (ECONNREFUSED, EAUTH, ...) with reply NULL. */
typedef void (*ppdb_stream_reply_cb)(void *data, int status, const struct ppdb_envelope *reply);
/* Sends to addr were refused (EAGAIN) and it has drained below low water. */
typedef void (*ppdb_stream_writable_cb)(void *data, const struct ppdb_addr *addr);

struct ppdb_stream_conn;

/* Caller-owned. env, identity, keyring and registry are borrowed and must
 * outlive the endpoint. */
struct ppdb_stream_ep {
    struct ppdb_env *env;
    const struct ppdb_identity *idn;
    const struct ppdb_keyring *kr;
    const struct ppdb_wire_registry *reg;
    struct ppdb_stream_options opt;
    ppdb_stream_msg_cb on_msg;
    ppdb_stream_writable_cb on_writable;
    void *data;
    struct ppdb_listener *listener;
    struct ppdb_stream_conn **conns; /* live, in creation order; opt.max_conns slots */
    uint32_t nconns;
    uint32_t live;                  /* conns whose memory is not freed yet (closing ones too) */
    struct ppdb_stream_conn *owned; /* those `live` conns, a list (stream.c) */
    uint64_t next_conn_id;
    uint64_t next_request_id;
    bool closing;
    bool has_keep;
    struct ppdb_addr keep; /* ppdb_stream_ep_keep */
    struct ppdb_stream_stats stats;
};

/* o may be NULL (defaults). on_writable may be NULL. */
int ppdb_stream_ep_init(struct ppdb_stream_ep *ep, struct ppdb_env *env,
                        const struct ppdb_identity *idn, const struct ppdb_keyring *kr,
                        const struct ppdb_wire_registry *reg, const struct ppdb_stream_options *o,
                        ppdb_stream_msg_cb on_msg, ppdb_stream_writable_cb on_writable, void *data);
int ppdb_stream_ep_listen(struct ppdb_stream_ep *ep, const struct ppdb_addr *bind,
                          struct ppdb_addr *bound_out);
/* Closes every connection (requests fail with ECANCELED) and the listener.
 * Memory is released by env callbacks: run the loop until
 * ppdb_stream_ep_idle(ep), then ppdb_stream_ep_deinit. */
void ppdb_stream_ep_close(struct ppdb_stream_ep *ep);
bool ppdb_stream_ep_idle(const struct ppdb_stream_ep *ep);
/* The connection this endpoint opens to addr (NULL: none) is not closed
 * when idle: after idle_ms quiet it only gives its buffers back. One
 * address at a time (a node's delta-sync parent: without it, nearly every
 * backed-off exchange paid a handshake). The peer keeps it as long as its
 * inbound_idle_ms allows. */
void ppdb_stream_ep_keep(struct ppdb_stream_ep *ep, const struct ppdb_addr *addr);
void ppdb_stream_ep_deinit(struct ppdb_stream_ep *ep);
/* Frees the memory of every connection (live and closing) and the
 * endpoint's own, without calling into the env and without running any
 * application callback: pending requests are dropped silently. Only for an
 * env that will never call back again (a crashed simulated node, whose
 * timers are already disarmed); the env reclaims its own handles. Replaces
 * close + deinit; ep is unusable afterwards. */
void ppdb_stream_ep_drop(struct ppdb_stream_ep *ep);

/* Sends a request to addr (connecting or reusing its connection) and calls
 * cb exactly once, unless this returns an error. timeout_ms 0: the default.
 * Errors: ELIMIT (max_inflight or max_conns), EAGAIN (above high water;
 * on_writable follows), ERANGE (too large for a frame), ECANCELED (closing). */
int ppdb_stream_request(struct ppdb_stream_ep *ep, const struct ppdb_addr *addr, uint32_t type,
                        const uint8_t *body, size_t body_len, uint32_t timeout_ms,
                        ppdb_stream_reply_cb cb, void *data, uint64_t *request_id_out);
/* A one-way message (request id 0). Same errors as a request. */
int ppdb_stream_send(struct ppdb_stream_ep *ep, const struct ppdb_addr *addr, uint32_t type,
                     const uint8_t *body, size_t body_len);
/* Drops a pending request: its callback will not run. ENOTFOUND. */
int ppdb_stream_cancel(struct ppdb_stream_ep *ep, uint64_t request_id);
/* Answers a request received on conn_id. ECONNRESET when that connection
 * is gone (the answer is dropped, the slot released). */
int ppdb_stream_reply(struct ppdb_stream_ep *ep, uint64_t conn_id, uint64_t request_id,
                      uint32_t type, const uint8_t *body, size_t body_len);
/* Releases a request without answering (the peer will time out). */
void ppdb_stream_release(struct ppdb_stream_ep *ep, uint64_t conn_id);
/* Stop / resume reading from a connection (the app's own inbound bound). */
int ppdb_stream_pause(struct ppdb_stream_ep *ep, uint64_t conn_id, bool paused);

/* What a connection holds right now (tests, status). ENOTFOUND. */
struct ppdb_stream_conn_info {
    uint64_t conn_id;
    bool established, inbound, paused;
    size_t queued_bytes;  /* batched, not sealed yet */
    size_t pending_bytes; /* handed to the env, not written yet */
    size_t unread_bytes;  /* received, not yet decoded */
    uint32_t inflight, inbound_unanswered;
};
int ppdb_stream_conn_info_by_addr(const struct ppdb_stream_ep *ep, const struct ppdb_addr *addr,
                                  struct ppdb_stream_conn_info *out);
int ppdb_stream_conn_info_by_id(const struct ppdb_stream_ep *ep, uint64_t conn_id,
                                struct ppdb_stream_conn_info *out);

#endif /* PPDB_STREAM_H */
