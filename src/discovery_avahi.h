/*
 * discovery_avahi.h - internal: LAN discovery through avahi-client on a
 * libuv loop, used by src/env_uv.c to implement the env's announce,
 * withdraw and browse (docs/protocols/discovery.md).
 *
 * Lifecycle: ppdb_disc_new always succeeds unless out of memory; with no
 * D-Bus or Avahi it comes up in PPDB_DISCOVERY_UNAVAILABLE and says so in
 * one warning. Teardown is two-step because uv handles close
 * asynchronously: ppdb_disc_close frees the Avahi client and starts closing
 * every uv handle; the owner runs the loop until ppdb_disc_busy is false,
 * then calls ppdb_disc_free.
 */
#ifndef PPDB_DISCOVERY_AVAHI_H
#define PPDB_DISCOVERY_AVAHI_H

#include <uv.h>

#include "ppdb_env.h"

struct ppdb_disc;

/* match: see ppdb_env_uv_options.discovery_match (copied). */
int ppdb_disc_new(uv_loop_t *loop, struct ppdb_logger *log, const char *match, uint32_t max_found,
                  struct ppdb_disc **out);
/* The env ops. announce replaces a previous announcement. */
int ppdb_disc_announce(struct ppdb_disc *d, const struct ppdb_service *svc);
void ppdb_disc_withdraw(struct ppdb_disc *d);
int ppdb_disc_browse(struct ppdb_disc *d, const char *type, ppdb_discovery_cb cb, void *data);

int ppdb_disc_state(const struct ppdb_disc *d);
void ppdb_disc_stats(const struct ppdb_disc *d, struct ppdb_discovery_stats *out);

void ppdb_disc_close(struct ppdb_disc *d);
bool ppdb_disc_busy(const struct ppdb_disc *d);
void ppdb_disc_free(struct ppdb_disc *d);

#endif /* PPDB_DISCOVERY_AVAHI_H */
