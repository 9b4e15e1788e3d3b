/*
 * admin.h - the admin queries a running node answers over encrypted streams
 * (`ppdb-peer status`, `ppdb-peer members`), server and client halves.
 *
 * Message types (admin range 0x80-0x9F; docs/protocols/admin.md):
 *
 *   0x80 admin.status       {}                               -> 0x81
 *   0x81 admin.status.reply {0 id bin20, 1 addr str, 2 incarnation, 3 state,
 *                            4 counts [alive, suspect, dead, left],
 *                            5 health, 6 profile str, 7 insecure bool,
 *                            8 key id, 9 uptime ms, 10 version str,
 *                            11 wire version, 12 discovery str,
 *                            13 datagrams rejected, 14 bytes per member,
 *                            15 stream rejections}
 *   0x82 admin.members      {0 offset, 1 limit}              -> 0x83
 *   0x83 admin.members.reply {0 total, 1 [member, ...]} where a member is
 *                            {0 id bin20, 1 addr str, 2 incarnation, 3 state,
 *                             4 version, 5 state age ms, 6 [tag str],
 *                             7 [client addr str], 8 self bool,
 *                             9 rtt ms (last direct probe; 0 = unknown)}
 *
 * Members come in pages (limit <= PPDB_ADMIN_PAGE_MAX) so a reply stays far
 * below the frame bound even at 10,000 members.
 */
#ifndef PPDB_ADMIN_H
#define PPDB_ADMIN_H

#include "ppdb_peer.h"

#define PPDB_MSG_ADMIN_STATUS        0x80
#define PPDB_MSG_ADMIN_STATUS_REPLY  0x81
#define PPDB_MSG_ADMIN_MEMBERS       0x82
#define PPDB_MSG_ADMIN_MEMBERS_REPLY 0x83
#define PPDB_ADMIN_PAGE_MAX          512
#define PPDB_ADMIN_TEXT_MAX          64

/* What the daemon knows that the node does not. */
struct ppdb_admin_info {
    const char *version;   /* "0.1.0" */
    const char *discovery; /* "mdns", "off", "unavailable: no avahi daemon", ... */
    uint32_t key_id;       /* primary cluster key id, 0 when insecure only */
    bool insecure;
};

struct ppdb_admin {
    struct ppdb_node *node;      /* borrowed */
    struct ppdb_admin_info info; /* strings borrowed */
    uint64_t started_ms;
    uint64_t served;
};

/* Registers the admin request types on the node. info's strings must
 * outlive the node. */
int ppdb_admin_attach(struct ppdb_admin *a, struct ppdb_node *node,
                      const struct ppdb_admin_info *info);

/* Client half: registers the reply types in a registry (the CLI's). */
int ppdb_admin_register_replies(struct ppdb_wire_registry *reg);

struct ppdb_admin_status {
    struct ppdb_node_id id;
    char addr[PPDB_ADDR_STRLEN];
    uint64_t incarnation;
    uint32_t state;
    uint64_t counts[4];
    uint64_t health;
    char profile[PPDB_ADMIN_TEXT_MAX];
    bool insecure;
    uint32_t key_id;
    uint64_t uptime_ms;
    char version[PPDB_ADMIN_TEXT_MAX];
    uint32_t wire_version;
    char discovery[PPDB_ADMIN_TEXT_MAX];
    uint64_t dgram_rejected;
    uint64_t bytes_per_member;
    uint64_t stream_rejected;
};
int ppdb_admin_decode_status(const struct ppdb_envelope *msg, struct ppdb_admin_status *out);

struct ppdb_admin_member {
    struct ppdb_node_id id;
    char addr[PPDB_ADDR_STRLEN];
    uint64_t incarnation;
    uint32_t state;
    uint32_t version;
    uint64_t state_age_ms;
    uint32_t ntags;
    char tags[PPDB_NODE_MAX_TAGS][PPDB_NODE_TAG_LEN];
    uint32_t nclients;
    char clients[PPDB_NODE_MAX_CLIENTS][PPDB_ADDR_STRLEN];
    bool self;
    uint32_t rtt_ms;
};
/* Decodes a members page: *total_out members exist; cb runs for each one on
 * this page. */
typedef void (*ppdb_admin_member_cb)(void *data, const struct ppdb_admin_member *m);
int ppdb_admin_decode_members(const struct ppdb_envelope *msg, uint64_t *total_out,
                              uint32_t *count_out, ppdb_admin_member_cb cb, void *data);
/* Encodes a members request body {offset, limit} into b. */
int ppdb_admin_encode_members_req(struct ppdb_buf *b, uint64_t offset, uint32_t limit);

#endif /* PPDB_ADMIN_H */
