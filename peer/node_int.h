/*
 * node_int.h - the node's private state (peer/node.c). Not part of the
 * public API.
 */
#ifndef PPDB_NODE_INT_H
#define PPDB_NODE_INT_H

#include "ppdb_stream.h"
#include "swim.h"

/* A handler registered for a type range (datagram or stream table). */
struct node_module {
    uint32_t first, last;
    void *cb; /* ppdb_node_dgram_cb or ppdb_node_request_cb */
    void *data;
};

/* The stream endpoint lives in its own allocation: connections still
 * closing when the node is freed release their memory through env
 * callbacks that reach the endpoint, so it may outlive the node (a timer
 * frees it once idle). */
struct node_ep {
    struct ppdb_stream_ep ep;
    struct ppdb_timer reap_timer;
    bool live;   /* ppdb_stream_ep_init succeeded */
    bool orphan; /* the node is gone */
};

struct ppdb_node {
    struct ppdb_env *env;
    const struct ppdb_identity *idn;
    const struct ppdb_keyring *kr;
    struct ppdb_node_config cfg;
    struct ppdb_swim_params params;
    struct ppdb_wire_registry reg;
    struct ppdb_udp *udp;
    struct ppdb_addr bound;
    struct ppdb_dgram dg; /* seals and opens datagrams */
    bool dg_live, swim_live, freeing;
    struct node_ep *sep;     /* the stream endpoint (role NODE) on the same port */
    struct node_call *calls; /* outgoing requests in flight (ppdb_node_drop frees them) */
    struct node_module *dgram_mods, *stream_mods;
    uint32_t ndgram_mods, nstream_mods;
    struct ppdb_swim swim;
    struct {
        ppdb_node_change_cb cb;
        void *data;
    } subs[4];
    uint32_t nsubs;
    struct ppdb_node_stats stats;
    struct ppdb_dgram_msg rx;     /* scratch for an opened datagram */
    struct ppdb_member_info info; /* scratch for callbacks */
};

const struct node_module *node_module_find(const struct node_module *tab, uint32_t count,
                                           uint32_t type);

#endif /* PPDB_NODE_INT_H */
