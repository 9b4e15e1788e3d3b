/*
 * timer_heap.c - the (due_ms, seq) min-heap behind every env's timers.
 *
 * Both env implementations (libuv and the simulator) keep their timers here,
 * so "same due time fires in arm order" holds identically in both. Timers are
 * caller-owned; the heap stores pointers and keeps each timer's heap_index up
 * to date so removal is O(log n). Capacity is fixed at init (a configured
 * bound): a full heap refuses with PPDB_ELIMIT instead of growing.
 */
#include "ppdb_env.h"

static bool before(const struct ppdb_timer *a, const struct ppdb_timer *b)
{
    if (a->due_ms != b->due_ms)
        return a->due_ms < b->due_ms;
    return a->seq < b->seq;
}

static void place(struct ppdb_timer_heap *h, uint32_t i, struct ppdb_timer *t)
{
    h->items[i] = t;
    t->heap_index = i;
}

static void sift_up(struct ppdb_timer_heap *h, uint32_t i)
{
    struct ppdb_timer *t = h->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(t, h->items[parent]))
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(struct ppdb_timer_heap *h, uint32_t i)
{
    struct ppdb_timer *t = h->items[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && before(h->items[child + 1], h->items[child]))
            child++;
        if (!before(h->items[child], t))
            break;
        place(h, i, h->items[child]);
        i = child;
    }
    place(h, i, t);
}

int ppdb_timer_heap_init(struct ppdb_timer_heap *h, uint32_t cap)
{
    PPDB_ASSERT(cap > 0 && cap < PPDB_TIMER_IDLE);
    h->items = ppdb_calloc(cap, sizeof(*h->items));
    if (!h->items)
        return PPDB_ENOMEM;
    h->len = 0;
    h->cap = cap;
    h->next_seq = 0;
    return 0;
}

void ppdb_timer_heap_deinit(struct ppdb_timer_heap *h)
{
    for (uint32_t i = 0; i < h->len; i++)
        h->items[i]->heap_index = PPDB_TIMER_IDLE;
    ppdb_free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

int ppdb_timer_heap_push(struct ppdb_timer_heap *h, struct ppdb_timer *t, uint64_t due_ms)
{
    if (ppdb_timer_armed(t))
        ppdb_timer_heap_remove(h, t);
    if (h->len == h->cap)
        return PPDB_ELIMIT;
    t->due_ms = due_ms;
    t->seq = h->next_seq++;
    place(h, h->len++, t);
    sift_up(h, t->heap_index);
    return 0;
}

void ppdb_timer_heap_remove(struct ppdb_timer_heap *h, struct ppdb_timer *t)
{
    if (!ppdb_timer_armed(t))
        return;
    uint32_t i = t->heap_index;
    PPDB_ASSERT_CMP(i, <, h->len);
    PPDB_ASSERT(h->items[i] == t);
    t->heap_index = PPDB_TIMER_IDLE;
    struct ppdb_timer *last = h->items[--h->len];
    if (last == t)
        return;
    place(h, i, last);
    if (i > 0 && before(last, h->items[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

struct ppdb_timer *ppdb_timer_heap_pop(struct ppdb_timer_heap *h)
{
    struct ppdb_timer *t = ppdb_timer_heap_peek(h);
    if (t)
        ppdb_timer_heap_remove(h, t);
    return t;
}
