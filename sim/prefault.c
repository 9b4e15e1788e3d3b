/*
 * prefault.c - the heap's fresh pages faulted in on the other core.
 *
 * A 10,000-node run grows its heap to ~11 GiB during the join, and the
 * kernel zeroes every page on first touch: a quarter of the join phase's
 * samples were clear_page on the simulation's only thread. Here glibc is
 * told to extend the heap PREFAULT_PAD bytes at a time (M_TOP_PAD), and a
 * helper thread asks the kernel to populate each new stretch
 * (MADV_POPULATE_WRITE) before the allocator hands it out, so the zeroing
 * runs on the second core. Populating never writes a byte the program
 * sees (a page already present is left alone), so runs are bit-identical
 * with or without it; the cost is up to PREFAULT_PAD of resident memory
 * beyond what the run uses.
 *
 * The thread learns the heap's end from the kernel (brk(0)) and lags one
 * poll behind it, so glibc has already marked a new stretch for huge pages
 * when it is populated. Errors (an old kernel, a heap that shrank) end or
 * skip the work; they never fail the run.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "prefault.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PREFAULT_PAD     (256u << 20)
#define PREFAULT_POLL_NS 2000000 /* 2 ms */
#define PREFAULT_STEP    (32u << 20)

/* glibc's allocator only; the sanitizers bring their own */
#if defined(__GLIBC__) && !defined(PPDB_SANITIZE)
#define PREFAULT_ON 1
#else
#define PREFAULT_ON 0
#endif

static pthread_t thread;
static atomic_bool stop, running;

#if PREFAULT_ON
static uintptr_t heap_end(void)
{
    return (uintptr_t)syscall(SYS_brk, 0);
}

static void *prefault_main(void *arg)
{
    (void)arg;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t done = (heap_end() + page - 1) & ~(page - 1), seen = done;
    struct timespec poll = {0, PREFAULT_POLL_NS};
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uintptr_t end = seen & ~(page - 1); /* what glibc had one poll ago */
        seen = heap_end();
        if (end < done)
            done = end; /* the heap shrank */
        while (done < end && !atomic_load_explicit(&stop, memory_order_relaxed)) {
            uintptr_t n = end - done < PREFAULT_STEP ? end - done : PREFAULT_STEP;
            if (madvise((void *)done, n, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
                return NULL; /* a kernel without it (before 5.14) */
            done += n;
        }
        nanosleep(&poll, NULL);
    }
    return NULL;
}
#endif

void ppdb_sim_prefault_start(void)
{
#if PREFAULT_ON
    if (atomic_load(&running))
        return;
    /* grow the heap far ahead, never give it back, and keep blocks below
     * glibc's largest dynamic mmap threshold in the heap (setting one
     * option fixes the others' dynamic adjustment) */
    if (!mallopt(M_TOP_PAD, (int)PREFAULT_PAD) || !mallopt(M_TRIM_THRESHOLD, INT32_MAX) ||
        !mallopt(M_MMAP_THRESHOLD, 32 << 20))
        return;
    atomic_store(&stop, false);
    if (pthread_create(&thread, NULL, prefault_main, NULL) == 0)
        atomic_store(&running, true);
#endif
}

void ppdb_sim_prefault_stop(void)
{
    if (!atomic_load(&running))
        return;
    atomic_store(&stop, true);
    pthread_join(thread, NULL);
    atomic_store(&running, false);
}
