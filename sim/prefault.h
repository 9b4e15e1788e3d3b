/*
 * prefault.h - the heap's fresh pages faulted in on another core
 * (prefault.c), for ppdb-sim's large runs.
 */
#ifndef PPDB_SIM_PREFAULT_H
#define PPDB_SIM_PREFAULT_H

/* Starts the helper thread (once; a no-op without glibc or under the
 * sanitizers, whose allocator is not glibc's). */
void ppdb_sim_prefault_start(void);
/* Stops and joins it. */
void ppdb_sim_prefault_stop(void);

#endif
