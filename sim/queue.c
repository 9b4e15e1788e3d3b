/*
 * queue.c - the world's one event queue: a timing wheel of 1 ms buckets
 * in front of a small heap, ordered exactly by (due_ms, seq).
 *
 * Why not a binary heap of timer pointers: at 10,000 nodes the queue holds
 * ~10^5 entries spread over gigabytes of node memory, and every sift step
 * of such a heap reads a timer it does not own (a cache and TLB miss per
 * level, 17 levels; the heap was ~17% of a 10,000-node run). Here an entry
 * is a 16-byte record in one array; push and pop touch the bucket, the
 * record and the timer being armed or run, nothing else.
 *
 *   base                                        base + SIM_WHEEL_MS
 *    |  bucket[due % SIM_WHEEL_MS]: FIFO list of records, one due_ms each  |
 *    +---------------------------------------------------------------------+
 *    far heap: (due_ms, seq, id) inline, for due_ms >= base + SIM_WHEEL_MS
 *
 * Order. seq is the push counter, as in ppdb_timer_heap, so a run orders
 * (and hashes) exactly as it did with the heap. Every due_ms in
 * [base, base + SIM_WHEEL_MS) has its own bucket, and a bucket's list is in
 * push order, i.e. in seq order, because of when entries reach it: a direct
 * push lands there only once due_ms < base + SIM_WHEEL_MS, and every far
 * entry with that due_ms was moved in (in heap order) at the moment base
 * advanced far enough, before any such direct push. So the earliest entry
 * is the head of the first non-empty bucket at or after base (a bitmap
 * finds it), or the top of the far heap when the wheel is empty.
 *
 * Invariants: every wheel entry has base <= due_ms < base + SIM_WHEEL_MS;
 * every far entry has due_ms >= base + SIM_WHEEL_MS; bit b of `bits` is set
 * iff bucket b is non-empty; an armed timer's heap_index is its record id
 * and the record points back at it; free records form one list.
 */
#include "sim_internal.h"

#define NIL     UINT32_MAX
#define FAR     (UINT32_MAX - 1u) /* rec.next of a record in the far heap */
#define MASK    (SIM_WHEEL_MS - 1u)
#define NWORDS  (SIM_WHEEL_MS / 64u)
#define REC_MIN 1024u

_Static_assert((SIM_WHEEL_MS & MASK) == 0 && SIM_WHEEL_MS >= 64, "a power of two");
_Static_assert(sizeof(struct sim_qrec) == 16, "record size");

int sim_queue_init(struct sim_queue *q, uint32_t cap)
{
    PPDB_ASSERT(cap > 0 && cap < SIM_TIMER_HELD);
    memset(q, 0, sizeof(*q));
    q->cap = cap;
    q->free = NIL;
    for (uint32_t b = 0; b < SIM_WHEEL_MS; b++)
        q->head[b] = q->tail[b] = NIL;
    return 0;
}

void sim_queue_deinit(struct sim_queue *q)
{
    for (uint32_t i = 0; i < q->used; i++)
        if (q->rec[i].t)
            q->rec[i].t->heap_index = PPDB_TIMER_IDLE;
    ppdb_free(q->rec);
    ppdb_free(q->far);
    memset(q, 0, sizeof(*q));
}

static int rec_alloc(struct sim_queue *q, uint32_t *id_out)
{
    if (q->free != NIL) {
        *id_out = q->free;
        q->free = q->rec[q->free].next;
        return 0;
    }
    if (q->used == q->rec_cap) {
        uint32_t cap = q->rec_cap ? q->rec_cap * 2 : REC_MIN;
        if (cap > q->cap)
            cap = q->cap;
        struct sim_qrec *r = ppdb_realloc(q->rec, (size_t)cap * sizeof(*r));
        if (!r)
            return PPDB_ENOMEM;
        q->rec = r;
        q->rec_cap = cap;
    }
    *id_out = q->used++;
    return 0;
}

static void rec_free(struct sim_queue *q, uint32_t id)
{
    q->rec[id].t = NULL;
    q->rec[id].next = q->free;
    q->free = id;
}

/* ------------------------------------------------------------ far heap */

static bool far_before(const struct sim_qfar *a, const struct sim_qfar *b)
{
    return a->due_ms != b->due_ms ? a->due_ms < b->due_ms : a->seq < b->seq;
}

static void far_place(struct sim_queue *q, uint32_t pos, struct sim_qfar it)
{
    q->far[pos] = it;
    q->rec[it.id].prev = pos;
}

static void far_up(struct sim_queue *q, uint32_t pos)
{
    struct sim_qfar it = q->far[pos];
    while (pos > 0 && far_before(&it, &q->far[(pos - 1) / 2])) {
        far_place(q, pos, q->far[(pos - 1) / 2]);
        pos = (pos - 1) / 2;
    }
    far_place(q, pos, it);
}

static void far_down(struct sim_queue *q, uint32_t pos)
{
    struct sim_qfar it = q->far[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= q->far_len)
            break;
        if (c + 1 < q->far_len && far_before(&q->far[c + 1], &q->far[c]))
            c++;
        if (!far_before(&q->far[c], &it))
            break;
        far_place(q, pos, q->far[c]);
        pos = c;
    }
    far_place(q, pos, it);
}

static int far_push(struct sim_queue *q, uint32_t id, const struct ppdb_timer *t)
{
    if (q->far_len == q->far_cap) {
        uint32_t cap = q->far_cap ? q->far_cap * 2 : 256;
        struct sim_qfar *f = ppdb_realloc(q->far, (size_t)cap * sizeof(*f));
        if (!f)
            return PPDB_ENOMEM;
        q->far = f;
        q->far_cap = cap;
    }
    q->rec[id].next = FAR;
    q->far[q->far_len] = (struct sim_qfar){.due_ms = t->due_ms, .seq = t->seq, .id = id};
    far_up(q, q->far_len++);
    return 0;
}

static void far_remove(struct sim_queue *q, uint32_t pos)
{
    PPDB_ASSERT_CMP(pos, <, q->far_len);
    struct sim_qfar last = q->far[--q->far_len];
    if (pos == q->far_len)
        return;
    far_place(q, pos, last);
    if (pos > 0 && far_before(&last, &q->far[(pos - 1) / 2]))
        far_up(q, pos);
    else
        far_down(q, pos);
}

/* --------------------------------------------------------------- wheel */

static void bucket_append(struct sim_queue *q, uint32_t id, uint64_t due_ms)
{
    uint32_t b = (uint32_t)(due_ms & MASK);
    struct sim_qrec *r = &q->rec[id];
    r->next = NIL;
    r->prev = q->tail[b];
    if (q->tail[b] == NIL) {
        q->head[b] = id;
        q->bits[b / 64] |= 1ull << (b % 64);
    } else {
        q->rec[q->tail[b]].next = id;
    }
    q->tail[b] = id;
    q->wheel_len++;
}

static void bucket_unlink(struct sim_queue *q, uint32_t id, uint64_t due_ms)
{
    uint32_t b = (uint32_t)(due_ms & MASK);
    struct sim_qrec *r = &q->rec[id];
    if (r->prev == NIL)
        q->head[b] = r->next;
    else
        q->rec[r->prev].next = r->next;
    if (r->next == NIL)
        q->tail[b] = r->prev;
    else
        q->rec[r->next].prev = r->prev;
    if (q->head[b] == NIL)
        q->bits[b / 64] &= ~(1ull << (b % 64));
    q->wheel_len--;
}

/* Far entries now inside the window move to their buckets, earliest first. */
static void far_migrate(struct sim_queue *q)
{
    while (q->far_len > 0 && q->far[0].due_ms - q->base < SIM_WHEEL_MS) {
        struct sim_qfar top = q->far[0];
        far_remove(q, 0);
        bucket_append(q, top.id, top.due_ms);
    }
}

/* The first non-empty bucket at or after base's, as a due time. */
static uint64_t wheel_first_due(const struct sim_queue *q)
{
    PPDB_ASSERT(q->wheel_len > 0);
    uint32_t start = (uint32_t)(q->base & MASK);
    uint32_t w = start / 64;
    uint64_t word = q->bits[w] & (~0ull << (start % 64));
    for (uint32_t k = 0; k <= NWORDS; k++) {
        if (word) {
            uint32_t b = (w * 64 + (uint32_t)__builtin_ctzll(word)) & MASK;
            return q->base + ((b - start) & MASK);
        }
        w = (w + 1) % NWORDS;
        word = q->bits[w];
    }
    PPDB_ASSERT(!"wheel_len > 0 but no bucket set");
    return 0;
}

static void set_base(struct sim_queue *q, uint64_t base_ms)
{
    q->base = base_ms;
    far_migrate(q);
}

void sim_queue_advance(struct sim_queue *q, uint64_t now_ms)
{
    if (now_ms <= q->base)
        return;
    PPDB_ASSERT(q->wheel_len == 0 || wheel_first_due(q) >= now_ms);
    set_base(q, now_ms);
}

/* ----------------------------------------------------------------- API */

int sim_queue_push(struct sim_queue *q, struct ppdb_timer *t, uint64_t due_ms)
{
    PPDB_ASSERT_CMP(due_ms, >=, q->base);
    if (ppdb_timer_armed(t))
        sim_queue_remove(q, t);
    if (q->len == q->cap)
        return PPDB_ELIMIT;
    uint32_t id;
    int rc = rec_alloc(q, &id);
    if (rc)
        return rc;
    q->rec[id].t = t;
    t->due_ms = due_ms;
    t->seq = q->next_seq++;
    if (due_ms - q->base < SIM_WHEEL_MS) {
        bucket_append(q, id, due_ms);
    } else if ((rc = far_push(q, id, t)) != 0) {
        rec_free(q, id);
        return rc;
    }
    t->heap_index = id;
    q->len++;
    return 0;
}

void sim_queue_remove(struct sim_queue *q, struct ppdb_timer *t)
{
    if (!ppdb_timer_armed(t))
        return;
    uint32_t id = t->heap_index;
    PPDB_ASSERT_CMP(id, <, q->used);
    PPDB_ASSERT(q->rec[id].t == t);
    if (q->rec[id].next == FAR)
        far_remove(q, q->rec[id].prev);
    else
        bucket_unlink(q, id, t->due_ms);
    rec_free(q, id);
    t->heap_index = PPDB_TIMER_IDLE;
    q->len--;
}

struct ppdb_timer *sim_queue_peek(const struct sim_queue *q)
{
    if (q->wheel_len > 0)
        return q->rec[q->head[wheel_first_due(q) & MASK]].t;
    return q->far_len > 0 ? q->rec[q->far[0].id].t : NULL;
}

struct ppdb_timer *sim_queue_pop(struct sim_queue *q)
{
    if (q->len == 0)
        return NULL;
    if (q->wheel_len == 0)
        set_base(q, q->far[0].due_ms);
    uint64_t due_ms = wheel_first_due(q);
    if (due_ms != q->base)
        set_base(q, due_ms);
    uint32_t id = q->head[due_ms & MASK];
    struct ppdb_timer *t = q->rec[id].t;
    PPDB_ASSERT(t->due_ms == due_ms);
    sim_queue_remove(q, t);
    return t;
}

struct ppdb_timer *sim_queue_at(const struct sim_queue *q, uint32_t i)
{
    return i < q->used ? q->rec[i].t : NULL;
}
