/*
 * pingpong.h - a ping/pong protocol with retries and timeouts.
 *
 * The smallest complete protocol written the way every PPDB protocol is:
 * an I/O-free state machine over the env seam. The caller owns the datagram
 * socket and feeds received packets to ppdb_pingpong_on_message; the state
 * machine sends through the env and arms env timers, and reports each ping's
 * outcome through a callback. It reads time only through the env, so the
 * same code runs between real processes (libuv) and across 1,000 simulated
 * nodes (sim/), where a seed replays it exactly.
 *
 * Wire format (msgpack map, keys are small integers): {0: kind (1 = ping,
 * 2 = pong), 1: request id, 2: attempt number}. A pong echoes id and attempt.
 */
#ifndef PPDB_PINGPONG_H
#define PPDB_PINGPONG_H

#include "ppdb_env.h"

#define PPDB_PINGPONG_MAX_PACKET 64

struct ppdb_pingpong_options {
    uint64_t timeout_ms;   /* per attempt */
    uint32_t max_attempts; /* 1 = no retry */
    uint32_t max_inflight; /* bound on outstanding pings */
};
void ppdb_pingpong_options_default(struct ppdb_pingpong_options *o);

struct ppdb_pingpong_stats {
    uint64_t pings_sent; /* including retries */
    uint64_t retries;
    uint64_t pongs_sent;
    uint64_t successes;
    uint64_t timeouts;    /* pings that used every attempt */
    uint64_t late_pongs;  /* pong for a finished or unknown request */
    uint64_t bad_packets; /* undecodable or of an unknown kind */
    uint64_t send_errors;
    uint64_t rejected; /* ping refused: max_inflight reached */
};

/* A ping finished: status 0 with the round-trip time of the answered
 * attempt, or PPDB_ETIMEDOUT after max_attempts. */
typedef void (*ppdb_pingpong_done_cb)(void *data, const struct ppdb_addr *to, int status,
                                      uint64_t rtt_ms, uint32_t attempts);

struct ppdb_pingpong_req; /* private */

struct ppdb_pingpong {
    struct ppdb_env *env; /* borrowed */
    struct ppdb_udp *udp; /* borrowed; the caller routes its packets here */
    struct ppdb_pingpong_options opts;
    ppdb_pingpong_done_cb done_cb;
    void *done_data;
    struct ppdb_pingpong_req *reqs; /* max_inflight slots */
    uint32_t inflight;
    uint64_t next_id;
    struct ppdb_pingpong_stats stats;
};

/* opts may be NULL (defaults). */
int ppdb_pingpong_init(struct ppdb_pingpong *pp, struct ppdb_env *env, struct ppdb_udp *udp,
                       const struct ppdb_pingpong_options *opts, ppdb_pingpong_done_cb cb,
                       void *data);
/* Cancels outstanding pings without calling their callbacks. */
void ppdb_pingpong_deinit(struct ppdb_pingpong *pp);
/* Starts a ping; PPDB_ELIMIT when max_inflight pings are outstanding. */
int ppdb_pingpong_ping(struct ppdb_pingpong *pp, const struct ppdb_addr *to);
/* Feed one received datagram. Returns 0, or the reason it was dropped. */
int ppdb_pingpong_on_message(struct ppdb_pingpong *pp, const struct ppdb_addr *from,
                             const uint8_t *buf, size_t len);

#endif /* PPDB_PINGPONG_H */
