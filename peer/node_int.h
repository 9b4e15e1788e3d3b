/*
 * node_int.h - the node's private state, shared by peer/node.c and the
 * stream transport in peer/xfer.c. Not part of the public API.
 */
#ifndef PPDB_NODE_INT_H
#define PPDB_NODE_INT_H

#include "swim.h"

/* A handler registered for a type range (datagram or stream table). */
struct node_module {
    uint32_t first, last;
    void *cb; /* ppdb_node_dgram_cb or ppdb_node_request_cb */
    void *data;
};

struct xfer_conn; /* peer/xfer.c */

struct ppdb_node {
    struct ppdb_env *env;
    const struct ppdb_identity *idn;
    const struct ppdb_keyring *kr;
    struct ppdb_node_config cfg;
    struct ppdb_swim_params params;
    struct ppdb_wire_registry reg;
    struct ppdb_udp *udp;
    struct ppdb_listener *listener;
    struct ppdb_addr bound;
    struct ppdb_dgram dg;  /* seals datagrams, opens datagrams and stream chunks */
    struct ppdb_dgram sdg; /* seals stream chunks: its own epoch and counter */
    bool dg_live, sdg_live, swim_live;
    struct node_module *dgram_mods, *stream_mods;
    uint32_t ndgram_mods, nstream_mods;
    struct ppdb_swim swim;
    struct {
        ppdb_node_change_cb cb;
        void *data;
    } subs[4];
    uint32_t nsubs;
    struct xfer_conn *conns; /* live stream connections (list) */
    uint32_t nconns;
    uint64_t next_conn_id;
    struct ppdb_node_stats stats;
    struct ppdb_dgram_msg rx;     /* scratch for an opened datagram */
    struct ppdb_member_info info; /* scratch for callbacks */
};

const struct node_module *node_module_find(const struct node_module *tab, uint32_t count,
                                           uint32_t type);

/* peer/xfer.c: request/response over env streams, each message cut into
 * sealed chunks ([u16be length][sealed datagram]). Stands in for the
 * stream layer until push/pull moves onto it; SWIM does not see it. */
int node_request(struct ppdb_node *n, const struct ppdb_addr *to, uint32_t type,
                 const uint8_t *body, size_t len, uint32_t timeout_ms, ppdb_swim_sync_done_cb cb,
                 void *cb_data);
void node_accept_cb(void *data, struct ppdb_listener *l, struct ppdb_stream *s);
void node_xfer_close_all(struct ppdb_node *n);

#endif /* PPDB_NODE_INT_H */
