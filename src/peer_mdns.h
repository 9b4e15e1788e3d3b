/*
 * peer_mdns.h - `ppdb-peer run --mdns on`: the node's LAN discovery glue.
 *
 * Announces the node as a `_ppdb._udp` service (TXT: node id, wire version,
 * cluster key id) through its env, browses for the others of the same mesh
 * (the env drops every service whose key id differs) and hands each one
 * found to membership as a join candidate (ppdb_node_add_seed). Discovery
 * never decides liveness: a withdrawn service is only logged.
 * docs/protocols/discovery.md has the whole story.
 */
#ifndef PPDB_PEER_MDNS_H
#define PPDB_PEER_MDNS_H

#include "ppdb_env.h"
#include "ppdb_peer.h"

struct ppdb_peer_mdns {
    struct ppdb_env_uv *envu;
    struct ppdb_env *env;
    struct ppdb_node *node;
    char self_id[2 * PPDB_NODE_ID_LEN + 1];
    struct ppdb_timer tick; /* refreshes `status` */
    uint64_t candidates;    /* services handed to membership */
    uint64_t refused;       /* candidates membership refused (seed table full) */
    char status[96];        /* for `ppdb-peer status`; lives as long as this struct */
};

/* Turns discovery on in env options, filtered on key_id (the primary
 * cluster key's id; PPDB_KEY_ID_NONE for an insecure mesh). */
void ppdb_peer_mdns_options(struct ppdb_env_uv_options *o, uint32_t key_id);
/* Announces and browses. Not an error when the LAN has no Avahi: status
 * then says so and the node carries on with its seeds. */
int ppdb_peer_mdns_start(struct ppdb_peer_mdns *m, struct ppdb_env_uv *envu, struct ppdb_node *node,
                         uint32_t key_id);
void ppdb_peer_mdns_stop(struct ppdb_peer_mdns *m);

#endif /* PPDB_PEER_MDNS_H */
