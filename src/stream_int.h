/*
 * stream_int.h - internals shared by stream.c (connections: connect,
 * accept, handshake, frames in and out, back-pressure) and rpc.c (the
 * request/response layer and the public send functions).
 *
 * A connection's life:
 *
 *   CONNECTING --connect_cb--> HANDSHAKE --3 messages--> OPEN
 *        \______________________\____________________\___--> closing -> freed
 *
 * `closing` is set exactly once (conn_close): the connection leaves the
 * endpoint's table, its timers are canceled, its requests fail, and the
 * env stream is closed; the memory is freed in the env's close callback
 * (or in connect_cb when the close raced a connect), never earlier, so a
 * pointer held across an application callback stays valid: callers check
 * `closing` after every callback. The one exception is ppdb_stream_ep_drop,
 * for an env that will never call back: it frees every connection at once.
 */
#ifndef PPDB_STREAM_INT_H
#define PPDB_STREAM_INT_H

#include "ppdb_stream.h"

/* Bound on the frame buffers a busy connection keeps for reuse: enough to
 * cover high_water of in-flight frames (8 MiB / 1 MiB by default, plus 2). */
#define STREAM_SPARES_MAX 16

enum conn_state { CONN_CONNECTING = 0, CONN_HANDSHAKE, CONN_OPEN };

struct stream_req {
    struct stream_req *prev, *next;
    struct ppdb_stream_conn *conn;
    struct ppdb_timer timer;
    uint64_t id;
    ppdb_stream_reply_cb cb;
    void *data;
};

struct ppdb_stream_conn {
    struct ppdb_stream_ep *ep;
    /* The endpoint's list of every connection not freed yet (ep->owned):
     * linked in conn_new, unlinked in conn_free; what ppdb_stream_ep_drop
     * walks. */
    struct ppdb_stream_conn *owned_prev, *owned_next;
    struct ppdb_stream *s; /* NULL until connected */
    struct ppdb_addr addr;
    uint64_t id;
    uint8_t state;
    bool inbound;
    bool closing;
    bool rejecting; /* responder: refusal notice sent, lingering until the peer hangs up */
    bool connect_pending; /* connect_cb still to come */
    bool reading, read_ended;
    bool paused_app, paused_inbound;
    bool want_writable;
    bool in_dispatch;
    struct ppdb_stream_hs hs;
    struct ppdb_frame_tx tx;
    struct ppdb_frame_rx rx;
    struct ppdb_buf rbuf;  /* received, not yet consumed */
    struct ppdb_buf batch; /* [frame header][messages...] being batched */
    /* Written frames' buffers kept for the next batches while the
     * connection is busy (see recycle() in stream.c); nspares <= spares_max. */
    struct ppdb_buf spares[STREAM_SPARES_MAX];
    uint32_t nspares;
    uint32_t batch_msgs;
    size_t pending; /* bytes handed to the env, not yet completed */
    /* Those writes, newest first: ppdb_stream_ep_drop frees them when the
     * env will never complete them (a crashed node's). */
    struct write_ctx *writes;
    struct stream_req *reqs_head, *reqs_tail;
    uint32_t inflight;
    uint32_t inbound_unanswered;
    struct ppdb_timer hs_timer, idle_timer, flush_timer;
    uint64_t last_active_ms;
    struct ppdb_stream_peer peer;
};

/* stream.c */
struct ppdb_stream_conn *conn_find_addr(struct ppdb_stream_ep *ep, const struct ppdb_addr *a);
struct ppdb_stream_conn *conn_find_id(const struct ppdb_stream_ep *ep, uint64_t id);
int conn_open_out(struct ppdb_stream_ep *ep, const struct ppdb_addr *a,
                  struct ppdb_stream_conn **out);
void conn_close(struct ppdb_stream_conn *c, int status);
/* Appends one message (envelope from hdr and body) to the batch. ERANGE:
 * larger than a frame can carry. */
int conn_append(struct ppdb_stream_conn *c, bool reply, const struct ppdb_envelope_hdr *h,
                const uint8_t *body, size_t body_len);
size_t conn_out_bytes(const struct ppdb_stream_conn *c);
void conn_update_reading(struct ppdb_stream_conn *c);
void conn_inbound_done(struct ppdb_stream_conn *c);

/* rpc.c */
void rpc_fail_all(struct ppdb_stream_conn *c, int status);
/* Frees every pending request without calling back (ppdb_stream_ep_drop). */
void rpc_drop_all(struct ppdb_stream_conn *c);
/* A reply arrived: completes the request (or counts a late reply). */
void rpc_complete(struct ppdb_stream_conn *c, const struct ppdb_envelope *reply);

#endif /* PPDB_STREAM_INT_H */
