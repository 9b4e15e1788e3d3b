/*
 * env_uv.c - the real environment: struct ppdb_env_ops on a libuv loop.
 *
 * Every real node (membership, DHT, encrypted streams, client protocols)
 * runs on this file. The loop belongs to the caller; an env only adds
 * handles to it, so several envs may share a loop, and envs on different
 * loops (threads) share nothing.
 *
 * Timers: ONE uv_timer_t per env drives a struct ppdb_timer_heap ordered by
 * (due_ms, seq). The uv timer is always set to the earliest due time (or
 * stopped when the heap is empty). When it fires, every timer that was
 * armed before the run began and is due at or before now runs in heap
 * order; timers armed from inside a timer callback run on a later loop turn
 * (at least 1 ms later), so a callback that re-arms itself with delay 0
 * cannot starve I/O. mono_ms is uv_now() after uv_update_time(); the heap
 * and the uv timer use that one clock.
 *
 * Datagrams: one uv_udp_t per socket with a 64 KiB receive buffer inside the
 * socket. Every send copies the payload into a request (no try_send fast
 * path: the copy is small next to the syscall, ordering is then trivially
 * the send order, and the queue bound counts every datagram not yet handed
 * to the kernel and reported back). At most max_udp_queue requests are in
 * flight per socket; beyond that udp_send fails with PPDB_ELIMIT.
 * udp_close stops receiving at once but lets that bounded queue flush before
 * the handle closes, so a message sent just before close is not dropped.
 *
 * Streams: uv_tcp_t with Nagle off. Reads land in one 64 KiB buffer per env
 * (a read callback borrows it; libuv reads one buffer at a time and calls
 * back before the next read). Writes borrow the caller's buffer until their
 * callback; the bytes of unfinished writes are bounded by
 * max_stream_pending (PPDB_ELIMIT beyond). stream_close lets libuv cancel
 * pending writes (PPDB_ECANCELED) before the close callback.
 *
 * Discovery: with options.discovery, announce/withdraw/browse go to
 * src/discovery_avahi.c, an avahi-client driven by an AvahiPoll adapter on
 * this same loop (no second thread). Without it, or with no D-Bus, they
 * return PPDB_EUNAVAIL and callers carry on with seeds.
 *
 * Invariants:
 *   - no callback runs inside the call that armed it: libuv defers connect,
 *     write and send completions to the loop, and timers fire from the loop;
 *   - a handle's memory is freed only in its uv close callback, after libuv
 *     has delivered the last callback of its requests;
 *   - after udp_close / stream_close / listener_close no receive, read or
 *     accept callback is delivered (a `closing` flag guards each one);
 *   - every user-visible handle is on the env's list until its close
 *     callback; ppdb_env_uv_free closes leftovers (and logs them), then runs
 *     the loop until the env's handles, requests and work are all gone;
 *     while it does, callbacks that try to arm, open, connect or submit get
 *     PPDB_ECANCELED.
 */
#include <netinet/in.h>
#include <sodium.h>
#include <uv.h>

#include "discovery_avahi.h"
#include "ppdb_env.h"

#define UDP_RECV_BUF_SIZE    65536
#define STREAM_READ_BUF_SIZE 65536
#define LISTEN_BACKLOG       128
/* Bound of work_submit jobs in flight per env (libuv's pool queue has none). */
#define MAX_WORK_INFLIGHT 4096
/* Bound of loop turns ppdb_env_uv_free waits for its handles to close. */
#define FREE_MAX_TURNS 10000000

enum handle_kind { KIND_UDP = 1, KIND_LISTENER, KIND_STREAM };

/* Intrusive list of an env's handles, in open order. */
struct handle_link {
    struct handle_link *prev;
    struct handle_link *next;
    enum handle_kind kind;
};

struct env_counters {
    uint64_t timer_limit;      /* timer_arm refused: heap full */
    uint64_t udp_queue_limit;  /* udp_send refused: queue full */
    uint64_t udp_send_errors;  /* udp_send failed locally (sync or async) */
    uint64_t udp_recv_errors;  /* recv errors and truncated datagrams */
    uint64_t stream_limit;     /* stream_write refused: too many bytes pending */
    uint64_t accept_errors;    /* failed accepts */
    uint64_t work_limit;       /* work_submit refused: too many in flight */
    uint64_t leftover_handles; /* handles ppdb_env_uv_free had to close */
};

struct ppdb_env_uv {
    struct ppdb_env env; /* first: a struct ppdb_env * is a struct ppdb_env_uv * */
    uv_loop_t *loop;
    struct ppdb_env_uv_options opt;
    struct ppdb_logger *log;
    uv_timer_t timer;            /* drives `heap` */
    struct ppdb_timer_heap heap; /* caller-owned timers */
    bool firing;                 /* inside fire_cb: re-arm the uv timer at its end */
    bool timer_closed;           /* the uv timer's close callback ran */
    bool freeing;                /* in ppdb_env_uv_free: new work is refused */
    struct handle_link handles;  /* list head: every open user handle */
    uint32_t live_handles;       /* uv handles initialised, close callback not yet run */
    uint32_t work_inflight;      /* work_submit jobs not yet done */
    struct ppdb_disc *disc;      /* LAN discovery; NULL when off */
    struct env_counters count;
    uint8_t read_buf[STREAM_READ_BUF_SIZE]; /* shared by every stream's reads */
};

struct ppdb_udp {
    uv_udp_t h;
    struct handle_link link;
    struct ppdb_env_uv *env;
    ppdb_udp_recv_cb cb;
    void *data;
    uint8_t family; /* 4 or 6, of the bound address */
    bool closing;
    uint32_t queued; /* send requests not yet completed */
    uint8_t recv_buf[UDP_RECV_BUF_SIZE];
};

struct udp_send_req {
    uv_udp_send_t req;
    struct ppdb_udp *u;
    size_t len;
    uint8_t payload[]; /* the copied datagram */
};

struct ppdb_listener {
    uv_tcp_t h;
    struct handle_link link;
    struct ppdb_env_uv *env;
    ppdb_accept_cb cb;
    void *data;
    bool closing;
};

struct ppdb_stream {
    uv_tcp_t h;
    struct handle_link link;
    struct ppdb_env_uv *env;
    ppdb_read_cb read_cb;
    void *read_data;
    ppdb_close_cb close_cb;
    void *close_data;
    size_t pending;  /* bytes of writes not yet completed */
    bool connecting; /* connect in progress: not yet handed to the user */
    bool reading;    /* uv_read_start is active */
    bool read_ended; /* end of stream or error delivered */
    bool shut;       /* stream_shutdown called */
    bool closing;    /* stream_close called (or connect failed) */
};

struct stream_write_req {
    uv_write_t req;
    struct ppdb_stream *s;
    size_t len;
    ppdb_write_cb cb;
    void *data;
};

struct connect_req {
    uv_connect_t req;
    struct ppdb_stream *s;
    ppdb_connect_cb cb;
    void *data;
};

struct work_req {
    uv_work_t req;
    struct ppdb_env_uv *env;
    ppdb_work_fn work;
    ppdb_work_done_cb done;
    void *data;
};

static const char COMP[] = "env";

static struct ppdb_env_uv *from_env(struct ppdb_env *env)
{
    return (struct ppdb_env_uv *)env;
}

/* ------------------------------------------------------------ errors */

/* The one place libuv error codes become PPDB_E* codes. */
static int map_uv_err(int uv_err)
{
    switch (uv_err) {
    case 0:
        return 0;
    case UV_ECONNREFUSED:
        return PPDB_ECONNREFUSED;
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_ECONNABORTED:
        return PPDB_ECONNRESET;
    case UV_EADDRINUSE:
        return PPDB_EADDRINUSE;
    case UV_ETIMEDOUT:
        return PPDB_ETIMEDOUT;
    case UV_ECANCELED:
        return PPDB_ECANCELED;
    case UV_ENOMEM:
    case UV_ENOBUFS:
        return PPDB_ENOMEM;
    case UV_EOF:
    case UV_ENOTCONN:
        return PPDB_ECLOSED;
    case UV_EAGAIN:
        return PPDB_EAGAIN;
    case UV_EINVAL:
    case UV_EAFNOSUPPORT:
        return PPDB_EINVAL;
    case UV_EACCES:
    case UV_EPERM:
        return PPDB_EPERM;
    case UV_EMSGSIZE:
        return PPDB_ERANGE;
    case UV_EMFILE:
    case UV_ENFILE:
        return PPDB_ELIMIT;
    default:
        return PPDB_EIO;
    }
}

/* ---------------------------------------------------------- addresses */

static const uint8_t V4_MAPPED_PREFIX[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* as_family 6 with an IPv4 address gives the v4-mapped IPv6 form (for a
 * dual-stack socket); 0 keeps the address's own family. */
static int addr_to_sockaddr(const struct ppdb_addr *a, int as_family, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == 4 && as_family != 6) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        memcpy(&sin->sin_addr, a->ip, 4);
        return 0;
    }
    if (a->family == 4 || a->family == 6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a->port);
        if (a->family == 4) {
            memcpy(sin6->sin6_addr.s6_addr, V4_MAPPED_PREFIX, 12);
            memcpy(sin6->sin6_addr.s6_addr + 12, a->ip, 4);
        } else {
            memcpy(sin6->sin6_addr.s6_addr, a->ip, 16);
        }
        return 0;
    }
    return PPDB_EINVAL;
}

/* v4-mapped IPv6 addresses come back as IPv4. */
static int addr_from_sockaddr(const struct sockaddr *sa, struct ppdb_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        out->family = 4;
        out->port = ntohs(sin->sin_port);
        memcpy(out->ip, &sin->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        out->port = ntohs(sin6->sin6_port);
        if (memcmp(sin6->sin6_addr.s6_addr, V4_MAPPED_PREFIX, 12) == 0) {
            out->family = 4;
            memcpy(out->ip, sin6->sin6_addr.s6_addr + 12, 4);
        } else {
            out->family = 6;
            memcpy(out->ip, sin6->sin6_addr.s6_addr, 16);
        }
        return 0;
    }
    return PPDB_EINVAL;
}

/* ------------------------------------------------------- handle list */

static void link_add(struct ppdb_env_uv *e, struct handle_link *l, enum handle_kind kind)
{
    l->kind = kind;
    l->prev = e->handles.prev;
    l->next = &e->handles;
    e->handles.prev->next = l;
    e->handles.prev = l;
}

static void link_remove(struct handle_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = NULL;
}

/* -------------------------------------------------------------- time */

static uint64_t env_mono_ms(struct ppdb_env *env)
{
    struct ppdb_env_uv *e = from_env(env);
    uv_update_time(e->loop);
    return uv_now(e->loop);
}

static int64_t env_wall_ms(struct ppdb_env *env)
{
    uv_timeval64_t tv;
    int rc = uv_gettimeofday(&tv);
    PPDB_ASSERT(rc == 0);
    return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void fire_cb(uv_timer_t *h);

/* Points the uv timer at the earliest armed timer, or stops it. `min_ms`
 * is the smallest delay allowed (1 at the end of a run, see fire_cb). */
static void schedule_uv_timer(struct ppdb_env_uv *e, uint64_t min_ms)
{
    struct ppdb_timer *first = ppdb_timer_heap_peek(&e->heap);
    if (!first) {
        uv_timer_stop(&e->timer);
        return;
    }
    uint64_t now = uv_now(e->loop);
    uint64_t delay = first->due_ms > now ? first->due_ms - now : 0;
    uv_timer_start(&e->timer, fire_cb, PPDB_MAX(delay, min_ms), 0);
}

static void fire_cb(uv_timer_t *h)
{
    struct ppdb_env_uv *e = PPDB_CONTAINER_OF(h, struct ppdb_env_uv, timer);
    uv_update_time(e->loop);
    uint64_t now = uv_now(e->loop);
    uint64_t seq_end = e->heap.next_seq; /* timers armed from here on wait */
    /* Bounded: each turn removes one timer armed before the run began. */
    e->firing = true;
    for (;;) {
        struct ppdb_timer *t = ppdb_timer_heap_peek(&e->heap);
        if (!t || t->due_ms > now || t->seq >= seq_end)
            break;
        ppdb_timer_heap_pop(&e->heap);
        t->cb(t);
    }
    e->firing = false;
    schedule_uv_timer(e, 1);
}

static int env_timer_arm(struct ppdb_env *env, struct ppdb_timer *t, uint64_t delay_ms)
{
    struct ppdb_env_uv *e = from_env(env);
    PPDB_ASSERT(t->cb != NULL);
    if (e->freeing)
        return PPDB_ECANCELED; /* e.g. a retry armed from a canceled callback */
    uint64_t due = env_mono_ms(env) + delay_ms;
    if (due < delay_ms)
        due = UINT64_MAX; /* saturate: "never" */
    int rc = ppdb_timer_heap_push(&e->heap, t, due);
    if (rc < 0) {
        if (e->count.timer_limit++ % 1024 == 0)
            PPDB_LOG(e->log, PPDB_LOG_WARN, COMP, "timer heap full", "max_timers=%u refused=%llu",
                     e->opt.max_timers, (unsigned long long)e->count.timer_limit);
        if (!e->firing)
            schedule_uv_timer(e, 0); /* t may have been the earliest */
        return rc;
    }
    if (!e->firing && ppdb_timer_heap_peek(&e->heap) == t)
        schedule_uv_timer(e, 0);
    return 0;
}

static void env_timer_cancel(struct ppdb_env *env, struct ppdb_timer *t)
{
    struct ppdb_env_uv *e = from_env(env);
    if (!ppdb_timer_armed(t))
        return;
    ppdb_timer_heap_remove(&e->heap, t);
    /* An early wake-up is harmless; only stop the uv timer when idle so the
     * loop can exit. */
    if (!e->firing && e->heap.len == 0)
        uv_timer_stop(&e->timer);
}

static void env_random(struct ppdb_env *env, void *buf, size_t len)
{
    randombytes_buf(buf, len);
}

/* --------------------------------------------------------------- udp */

static void udp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ppdb_udp *u = PPDB_CONTAINER_OF(h, struct ppdb_udp, h);
    *buf = uv_buf_init((char *)u->recv_buf, sizeof(u->recv_buf));
}

static void udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
    struct ppdb_udp *u = PPDB_CONTAINER_OF(h, struct ppdb_udp, h);
    struct ppdb_env_uv *e = u->env;
    if (u->closing || (nread == 0 && from == NULL))
        return;
    if (nread < 0 || (flags & UV_UDP_PARTIAL) || from == NULL) {
        e->count.udp_recv_errors++;
        PPDB_LOG(e->log, PPDB_LOG_DEBUG, COMP, "udp receive failed", "err=%s",
                 nread < 0 ? uv_err_name((int)nread) : "truncated");
        return;
    }
    struct ppdb_addr src;
    if (addr_from_sockaddr(from, &src) < 0)
        return;
    u->cb(u->data, u, &src, (const uint8_t *)buf->base, (size_t)nread);
}

static void udp_closed_cb(uv_handle_t *h)
{
    struct ppdb_udp *u = PPDB_CONTAINER_OF(h, struct ppdb_udp, h);
    PPDB_ASSERT_CMP(u->queued, ==, 0);
    if (u->link.next)
        link_remove(&u->link);
    u->env->live_handles--;
    ppdb_free(u);
}

static int udp_bind_start(struct ppdb_udp *u, const struct ppdb_addr *bind)
{
    struct sockaddr_storage ss;
    int rc = addr_to_sockaddr(bind, 0, &ss);
    if (rc < 0)
        return rc;
    rc = uv_udp_bind(&u->h, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_udp_recv_start(&u->h, udp_alloc_cb, udp_recv_cb);
    return map_uv_err(rc);
}

static int env_udp_open(struct ppdb_env *env, const struct ppdb_addr *bind, ppdb_udp_recv_cb cb,
                        void *data, struct ppdb_udp **u_out)
{
    struct ppdb_env_uv *e = from_env(env);
    PPDB_ASSERT(cb != NULL && u_out != NULL);
    if (e->freeing)
        return PPDB_ECANCELED;
    if (bind->family != 4 && bind->family != 6)
        return PPDB_EINVAL;
    struct ppdb_udp *u = ppdb_calloc(1, sizeof(*u));
    if (!u)
        return PPDB_ENOMEM;
    u->env = e;
    u->cb = cb;
    u->data = data;
    u->family = bind->family;
    int rc = uv_udp_init(e->loop, &u->h);
    if (rc < 0) {
        ppdb_free(u);
        return map_uv_err(rc);
    }
    e->live_handles++;
    rc = udp_bind_start(u, bind);
    if (rc < 0) {
        u->closing = true;
        uv_close((uv_handle_t *)&u->h, udp_closed_cb);
        return rc;
    }
    link_add(e, &u->link, KIND_UDP);
    *u_out = u;
    return 0;
}

static void udp_sent_cb(uv_udp_send_t *req, int status)
{
    struct udp_send_req *r = PPDB_CONTAINER_OF(req, struct udp_send_req, req);
    struct ppdb_udp *u = r->u;
    u->queued--;
    if (status < 0 && status != UV_ECANCELED) {
        u->env->count.udp_send_errors++;
        PPDB_LOG(u->env->log, PPDB_LOG_DEBUG, COMP, "udp send failed", "err=%s len=%zu",
                 uv_err_name(status), r->len);
    }
    ppdb_free(r);
    /* udp_close waits for the queue to flush (see env_udp_close). */
    if (u->closing && u->queued == 0 && !uv_is_closing((uv_handle_t *)&u->h))
        uv_close((uv_handle_t *)&u->h, udp_closed_cb);
}

static int env_udp_send_dgram(struct ppdb_env *env, struct ppdb_udp *u, const struct ppdb_addr *to,
                              const void *buf, size_t len)
{
    struct ppdb_env_uv *e = from_env(env);
    PPDB_ASSERT(!u->closing);
    PPDB_ASSERT(buf != NULL || len == 0);
    struct sockaddr_storage ss;
    if ((u->family == 4 && to->family != 4) || addr_to_sockaddr(to, u->family, &ss) < 0)
        return PPDB_EINVAL;
    if (len > UDP_RECV_BUF_SIZE)
        return PPDB_ERANGE;
    if (u->queued >= e->opt.max_udp_queue) {
        if (e->count.udp_queue_limit++ % 1024 == 0)
            PPDB_LOG(e->log, PPDB_LOG_WARN, COMP, "udp send queue full",
                     "max_udp_queue=%u refused=%llu", e->opt.max_udp_queue,
                     (unsigned long long)e->count.udp_queue_limit);
        return PPDB_ELIMIT;
    }
    struct udp_send_req *r = ppdb_malloc(sizeof(*r) + len);
    if (!r)
        return PPDB_ENOMEM;
    r->u = u;
    r->len = len;
    if (len)
        memcpy(r->payload, buf, len);
    uv_buf_t b = uv_buf_init((char *)r->payload, (unsigned)len);
    int rc = uv_udp_send(&r->req, &u->h, &b, 1, (const struct sockaddr *)&ss, udp_sent_cb);
    if (rc < 0) {
        e->count.udp_send_errors++;
        ppdb_free(r);
        return map_uv_err(rc);
    }
    u->queued++;
    return 0;
}

static int env_udp_local_addr(struct ppdb_env *env, struct ppdb_udp *u, struct ppdb_addr *out)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int rc = uv_udp_getsockname(&u->h, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return map_uv_err(rc);
    return addr_from_sockaddr((struct sockaddr *)&ss, out);
}

/* Receiving stops now; datagrams already accepted by udp_send are still
 * sent (the queue is bounded), then the handle closes. A node's last words
 * (a "leaving" message just before close) are not dropped. */
static void env_udp_close(struct ppdb_env *env, struct ppdb_udp *u)
{
    PPDB_ASSERT(!u->closing);
    u->closing = true;
    uv_udp_recv_stop(&u->h);
    if (u->queued == 0)
        uv_close((uv_handle_t *)&u->h, udp_closed_cb);
}

/* ----------------------------------------------------------- streams */

static void stream_closed_cb(uv_handle_t *h)
{
    struct ppdb_stream *s = PPDB_CONTAINER_OF(h, struct ppdb_stream, h);
    struct ppdb_env_uv *e = s->env;
    PPDB_ASSERT_CMP(s->pending, ==, 0);
    if (s->link.next)
        link_remove(&s->link);
    e->live_handles--;
    ppdb_close_cb cb = s->close_cb;
    void *data = s->close_data;
    ppdb_free(s);
    if (cb)
        cb(data);
}

/* A new stream handle on the loop, counted but not yet on the list. */
static int stream_new(struct ppdb_env_uv *e, struct ppdb_stream **out)
{
    struct ppdb_stream *s = ppdb_calloc(1, sizeof(*s));
    if (!s)
        return PPDB_ENOMEM;
    s->env = e;
    int rc = uv_tcp_init(e->loop, &s->h);
    if (rc < 0) {
        ppdb_free(s);
        return map_uv_err(rc);
    }
    e->live_handles++;
    *out = s;
    return 0;
}

/* Close a stream the user never saw (failed accept or connect). */
static void stream_discard(struct ppdb_stream *s)
{
    s->closing = true;
    uv_close((uv_handle_t *)&s->h, stream_closed_cb);
}

static void read_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ppdb_stream *s = PPDB_CONTAINER_OF(h, struct ppdb_stream, h);
    *buf = uv_buf_init((char *)s->env->read_buf, sizeof(s->env->read_buf));
}

static void stream_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct ppdb_stream *s = PPDB_CONTAINER_OF(h, struct ppdb_stream, h);
    if (s->closing || s->read_ended || nread == 0)
        return;
    if (nread > 0) {
        s->read_cb(s->read_data, s, (const uint8_t *)buf->base, (size_t)nread, 0);
        return;
    }
    /* End of stream or error: delivered once, then reading stops for good. */
    s->read_ended = true;
    s->reading = false;
    uv_read_stop(h);
    s->read_cb(s->read_data, s, NULL, 0, nread == UV_EOF ? PPDB_ECLOSED : map_uv_err((int)nread));
}

static int env_stream_read_start(struct ppdb_env *env, struct ppdb_stream *s, ppdb_read_cb cb,
                                 void *data)
{
    PPDB_ASSERT(!s->closing && !s->connecting);
    PPDB_ASSERT(cb != NULL);
    s->read_cb = cb;
    s->read_data = data;
    if (s->read_ended)
        return PPDB_ECLOSED;
    if (s->reading)
        return 0;
    int rc = uv_read_start((uv_stream_t *)&s->h, read_alloc_cb, stream_read_cb);
    if (rc < 0)
        return map_uv_err(rc);
    s->reading = true;
    return 0;
}

static void env_stream_read_stop(struct ppdb_env *env, struct ppdb_stream *s)
{
    PPDB_ASSERT(!s->closing);
    if (!s->reading)
        return;
    uv_read_stop((uv_stream_t *)&s->h);
    s->reading = false;
}

static void write_done_cb(uv_write_t *req, int status)
{
    struct stream_write_req *w = PPDB_CONTAINER_OF(req, struct stream_write_req, req);
    struct ppdb_stream *s = w->s;
    PPDB_ASSERT_CMP(s->pending, >=, w->len);
    s->pending -= w->len;
    ppdb_write_cb cb = w->cb;
    void *data = w->data;
    ppdb_free(w);
    if (cb)
        cb(data, s, map_uv_err(status));
}

static int env_stream_write(struct ppdb_env *env, struct ppdb_stream *s, const void *buf,
                            size_t len, ppdb_write_cb cb, void *data)
{
    struct ppdb_env_uv *e = from_env(env);
    PPDB_ASSERT(!s->closing && !s->connecting);
    PPDB_ASSERT(buf != NULL || len == 0);
    if (s->shut)
        return PPDB_ECLOSED;
    if (len > UINT32_MAX || s->pending + len > e->opt.max_stream_pending) {
        if (e->count.stream_limit++ % 1024 == 0)
            PPDB_LOG(e->log, PPDB_LOG_WARN, COMP, "stream write refused: pending bound",
                     "pending=%zu len=%zu max_stream_pending=%zu refused=%llu", s->pending, len,
                     e->opt.max_stream_pending, (unsigned long long)e->count.stream_limit);
        return PPDB_ELIMIT;
    }
    struct stream_write_req *w = ppdb_malloc(sizeof(*w));
    if (!w)
        return PPDB_ENOMEM;
    w->s = s;
    w->len = len;
    w->cb = cb;
    w->data = data;
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)buf, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&s->h, &b, 1, write_done_cb);
    if (rc < 0) {
        ppdb_free(w);
        return map_uv_err(rc);
    }
    s->pending += len;
    return 0;
}

static size_t env_stream_pending(struct ppdb_env *env, struct ppdb_stream *s)
{
    return s->pending;
}

static void shutdown_done_cb(uv_shutdown_t *req, int status)
{
    struct ppdb_stream *s = PPDB_CONTAINER_OF(req->handle, struct ppdb_stream, h);
    if (status < 0 && status != UV_ECANCELED)
        PPDB_LOG(s->env->log, PPDB_LOG_DEBUG, COMP, "stream shutdown failed", "err=%s",
                 uv_err_name(status));
    ppdb_free(req);
}

static int env_stream_shutdown(struct ppdb_env *env, struct ppdb_stream *s)
{
    PPDB_ASSERT(!s->closing && !s->connecting);
    if (s->shut)
        return 0;
    uv_shutdown_t *req = ppdb_malloc(sizeof(*req));
    if (!req)
        return PPDB_ENOMEM;
    int rc = uv_shutdown(req, (uv_stream_t *)&s->h, shutdown_done_cb);
    if (rc < 0) {
        ppdb_free(req);
        return map_uv_err(rc);
    }
    s->shut = true;
    return 0;
}

static int env_stream_peer_addr(struct ppdb_env *env, struct ppdb_stream *s, struct ppdb_addr *out)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int rc = uv_tcp_getpeername(&s->h, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return map_uv_err(rc);
    return addr_from_sockaddr((struct sockaddr *)&ss, out);
}

static void env_stream_close(struct ppdb_env *env, struct ppdb_stream *s, ppdb_close_cb cb,
                             void *data)
{
    PPDB_ASSERT(!s->closing);
    s->closing = true;
    s->reading = false;
    s->close_cb = cb;
    s->close_data = data;
    uv_close((uv_handle_t *)&s->h, stream_closed_cb);
}

/* ---------------------------------------------------------- listeners */

static void listener_closed_cb(uv_handle_t *h)
{
    struct ppdb_listener *l = PPDB_CONTAINER_OF(h, struct ppdb_listener, h);
    if (l->link.next)
        link_remove(&l->link);
    l->env->live_handles--;
    ppdb_free(l);
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct ppdb_listener *l = PPDB_CONTAINER_OF(server, struct ppdb_listener, h);
    struct ppdb_env_uv *e = l->env;
    struct ppdb_stream *s = NULL;
    if (l->closing)
        return;
    int rc = status < 0 ? map_uv_err(status) : stream_new(e, &s);
    if (rc == 0 && (rc = map_uv_err(uv_accept(server, (uv_stream_t *)&s->h))) < 0)
        stream_discard(s);
    if (rc < 0) {
        e->count.accept_errors++;
        PPDB_LOG(e->log, PPDB_LOG_WARN, COMP, "accept failed", "err=%s count=%llu",
                 ppdb_errname(rc), (unsigned long long)e->count.accept_errors);
        return;
    }
    uv_tcp_nodelay(&s->h, 1);
    link_add(e, &s->link, KIND_STREAM);
    l->cb(l->data, l, s);
    /* The accept callback must start reading or close the stream. */
    PPDB_ASSERT(s->closing || s->read_cb != NULL);
}

static int listen_bind(struct ppdb_listener *l, const struct ppdb_addr *bind)
{
    struct sockaddr_storage ss;
    int rc = addr_to_sockaddr(bind, 0, &ss);
    if (rc < 0)
        return rc;
    /* libuv sets SO_REUSEADDR on every TCP bind (Unix). A bind error may be
     * deferred by libuv and reported by uv_listen: both are synchronous here. */
    rc = uv_tcp_bind(&l->h, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->h, LISTEN_BACKLOG, accept_cb);
    return map_uv_err(rc);
}

static int env_listen_tcp(struct ppdb_env *env, const struct ppdb_addr *bind, ppdb_accept_cb cb,
                          void *data, struct ppdb_listener **l_out)
{
    struct ppdb_env_uv *e = from_env(env);
    PPDB_ASSERT(cb != NULL && l_out != NULL);
    if (e->freeing)
        return PPDB_ECANCELED;
    if (bind->family != 4 && bind->family != 6)
        return PPDB_EINVAL;
    struct ppdb_listener *l = ppdb_calloc(1, sizeof(*l));
    if (!l)
        return PPDB_ENOMEM;
    l->env = e;
    l->cb = cb;
    l->data = data;
    int rc = uv_tcp_init(e->loop, &l->h);
    if (rc < 0) {
        ppdb_free(l);
        return map_uv_err(rc);
    }
    e->live_handles++;
    rc = listen_bind(l, bind);
    if (rc < 0) {
        l->closing = true;
        uv_close((uv_handle_t *)&l->h, listener_closed_cb);
        return rc;
    }
    link_add(e, &l->link, KIND_LISTENER);
    *l_out = l;
    return 0;
}

static int env_listener_addr(struct ppdb_env *env, struct ppdb_listener *l, struct ppdb_addr *out)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int rc = uv_tcp_getsockname(&l->h, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return map_uv_err(rc);
    return addr_from_sockaddr((struct sockaddr *)&ss, out);
}

static void env_listener_close(struct ppdb_env *env, struct ppdb_listener *l)
{
    PPDB_ASSERT(!l->closing);
    l->closing = true;
    uv_close((uv_handle_t *)&l->h, listener_closed_cb);
}

static void connect_done_cb(uv_connect_t *req, int status)
{
    struct connect_req *c = PPDB_CONTAINER_OF(req, struct connect_req, req);
    struct ppdb_stream *s = c->s;
    ppdb_connect_cb cb = c->cb;
    void *data = c->data;
    ppdb_free(c);
    s->connecting = false;
    if (status == 0 && s->closing)
        status = UV_ECANCELED; /* the env is being freed */
    if (status < 0) {
        if (!s->closing)
            stream_discard(s);
        cb(data, NULL, map_uv_err(status));
        return;
    }
    uv_tcp_nodelay(&s->h, 1);
    cb(data, s, 0);
}

static int env_connect_tcp(struct ppdb_env *env, const struct ppdb_addr *to, ppdb_connect_cb cb,
                           void *data)
{
    struct ppdb_env_uv *e = from_env(env);
    PPDB_ASSERT(cb != NULL);
    if (e->freeing)
        return PPDB_ECANCELED;
    struct sockaddr_storage ss;
    int rc = addr_to_sockaddr(to, 0, &ss);
    if (rc < 0)
        return rc;
    struct connect_req *c = ppdb_malloc(sizeof(*c));
    if (!c)
        return PPDB_ENOMEM;
    struct ppdb_stream *s;
    rc = stream_new(e, &s);
    if (rc < 0) {
        ppdb_free(c);
        return rc;
    }
    uv_tcp_nodelay(&s->h, 1);
    c->s = s;
    c->cb = cb;
    c->data = data;
    rc = uv_tcp_connect(&c->req, &s->h, (const struct sockaddr *)&ss, connect_done_cb);
    if (rc < 0) {
        ppdb_free(c);
        stream_discard(s);
        return map_uv_err(rc);
    }
    s->connecting = true;
    link_add(e, &s->link, KIND_STREAM);
    return 0;
}

/* --------------------------------------------------------- discovery */

/* LAN discovery through Avahi (src/discovery_avahi.c) when enabled. */
static int env_announce(struct ppdb_env *env, const struct ppdb_service *svc)
{
    struct ppdb_env_uv *e = from_env(env);
    if (e->freeing)
        return PPDB_ECANCELED;
    return e->disc ? ppdb_disc_announce(e->disc, svc) : PPDB_EUNAVAIL;
}

static void env_withdraw(struct ppdb_env *env)
{
    struct ppdb_env_uv *e = from_env(env);
    if (e->disc && !e->freeing)
        ppdb_disc_withdraw(e->disc);
}

static int env_browse(struct ppdb_env *env, const char *type, ppdb_discovery_cb cb, void *data)
{
    struct ppdb_env_uv *e = from_env(env);
    if (e->freeing)
        return PPDB_ECANCELED;
    return e->disc ? ppdb_disc_browse(e->disc, type, cb, data) : PPDB_EUNAVAIL;
}

int ppdb_env_uv_discovery_state(struct ppdb_env_uv *e)
{
    return e->disc ? ppdb_disc_state(e->disc) : PPDB_DISCOVERY_OFF;
}

void ppdb_env_uv_discovery_stats(struct ppdb_env_uv *e, struct ppdb_discovery_stats *out)
{
    if (e->disc)
        ppdb_disc_stats(e->disc, out);
    else
        memset(out, 0, sizeof(*out));
}

/* -------------------------------------------------------------- work */

static void work_run_cb(uv_work_t *req)
{
    struct work_req *w = PPDB_CONTAINER_OF(req, struct work_req, req);
    w->work(w->data);
}

static void work_after_cb(uv_work_t *req, int status)
{
    struct work_req *w = PPDB_CONTAINER_OF(req, struct work_req, req);
    ppdb_work_done_cb done = w->done;
    void *data = w->data;
    w->env->work_inflight--;
    ppdb_free(w);
    done(data, status == UV_ECANCELED ? PPDB_ECANCELED : 0);
}

static int env_work_submit(struct ppdb_env *env, ppdb_work_fn work, ppdb_work_done_cb done,
                           void *data)
{
    struct ppdb_env_uv *e = from_env(env);
    PPDB_ASSERT(work != NULL && done != NULL);
    if (e->freeing)
        return PPDB_ECANCELED;
    if (e->work_inflight >= MAX_WORK_INFLIGHT) {
        if (e->count.work_limit++ % 1024 == 0)
            PPDB_LOG(e->log, PPDB_LOG_WARN, COMP, "work queue full", "max=%d refused=%llu",
                     MAX_WORK_INFLIGHT, (unsigned long long)e->count.work_limit);
        return PPDB_ELIMIT;
    }
    struct work_req *w = ppdb_malloc(sizeof(*w));
    if (!w)
        return PPDB_ENOMEM;
    w->env = e;
    w->work = work;
    w->done = done;
    w->data = data;
    int rc = uv_queue_work(e->loop, &w->req, work_run_cb, work_after_cb);
    if (rc < 0) {
        ppdb_free(w);
        return map_uv_err(rc);
    }
    e->work_inflight++;
    return 0;
}

/* ---------------------------------------------------------- lifecycle */

static const struct ppdb_env_ops UV_OPS = {
    .mono_ms = env_mono_ms,
    .wall_ms = env_wall_ms,
    .timer_arm = env_timer_arm,
    .timer_cancel = env_timer_cancel,
    .random = env_random,
    .udp_open = env_udp_open,
    .udp_send = env_udp_send_dgram,
    .udp_local_addr = env_udp_local_addr,
    .udp_close = env_udp_close,
    .listen = env_listen_tcp,
    .listener_addr = env_listener_addr,
    .listener_close = env_listener_close,
    .connect = env_connect_tcp,
    .stream_read_start = env_stream_read_start,
    .stream_read_stop = env_stream_read_stop,
    .stream_write = env_stream_write,
    .stream_pending = env_stream_pending,
    .stream_shutdown = env_stream_shutdown,
    .stream_peer_addr = env_stream_peer_addr,
    .stream_close = env_stream_close,
    .announce = env_announce,
    .withdraw = env_withdraw,
    .browse = env_browse,
    .work_submit = env_work_submit,
};

void ppdb_env_uv_options_default(struct ppdb_env_uv_options *o)
{
    memset(o, 0, sizeof(*o));
    o->max_timers = 65536;
    o->max_udp_queue = 4096;
    o->max_stream_pending = (size_t)64 << 20;
    o->max_discovered = 256;
}

int ppdb_env_uv_new(struct uv_loop_s *loop, const struct ppdb_env_uv_options *o,
                    struct ppdb_logger *log, struct ppdb_env_uv **out)
{
    PPDB_ASSERT(loop != NULL && out != NULL);
    struct ppdb_env_uv_options def;
    if (!o) {
        ppdb_env_uv_options_default(&def);
        o = &def;
    }
    if (o->max_timers == 0 || o->max_udp_queue == 0 || o->max_stream_pending == 0 ||
        (o->discovery && (o->max_discovered == 0 ||
                          !memchr(o->discovery_match, '\0', sizeof(o->discovery_match)))))
        return PPDB_EINVAL;
    if (sodium_init() < 0)
        return PPDB_EIO;
    struct ppdb_env_uv *e = ppdb_calloc(1, sizeof(*e));
    if (!e)
        return PPDB_ENOMEM;
    e->log = log ? log : ppdb_logger_default();
    e->env.ops = &UV_OPS;
    e->env.log = e->log;
    e->loop = loop;
    e->opt = *o;
    e->handles.prev = e->handles.next = &e->handles;
    int rc = ppdb_timer_heap_init(&e->heap, o->max_timers);
    if (rc < 0) {
        ppdb_free(e);
        return rc;
    }
    /* Discovery first: it fails only before opening any handle. */
    if (o->discovery && (rc = ppdb_disc_new(loop, e->log, o->discovery_match,
                                            o->max_discovered, &e->disc)) < 0) {
        ppdb_timer_heap_deinit(&e->heap);
        ppdb_free(e);
        return rc;
    }
    rc = uv_timer_init(loop, &e->timer);
    PPDB_ASSERT(rc == 0); /* cannot fail on Unix */
    *out = e;
    return 0;
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct ppdb_env_uv *e = PPDB_CONTAINER_OF(h, struct ppdb_env_uv, timer);
    e->timer_closed = true;
}

/* Closes handles the user left open; a connect in progress completes with
 * PPDB_ECANCELED. */
static void close_leftovers(struct ppdb_env_uv *e)
{
    for (struct handle_link *l = e->handles.next; l != &e->handles; l = l->next) {
        if (l->kind == KIND_UDP) {
            struct ppdb_udp *u = PPDB_CONTAINER_OF(l, struct ppdb_udp, link);
            if (u->closing)
                continue; /* closed by the user, still flushing */
            env_udp_close(&e->env, u);
        } else if (l->kind == KIND_LISTENER) {
            struct ppdb_listener *ls = PPDB_CONTAINER_OF(l, struct ppdb_listener, link);
            if (ls->closing)
                continue;
            env_listener_close(&e->env, ls);
        } else {
            struct ppdb_stream *s = PPDB_CONTAINER_OF(l, struct ppdb_stream, link);
            if (s->closing)
                continue;
            s->closing = true;
            uv_close((uv_handle_t *)&s->h, stream_closed_cb);
        }
        e->count.leftover_handles++;
    }
    if (e->count.leftover_handles)
        PPDB_LOG(e->log, PPDB_LOG_WARN, COMP, "env freed with open handles; closed them",
                 "handles=%llu", (unsigned long long)e->count.leftover_handles);
}

static void log_counters(struct ppdb_env_uv *e)
{
    const struct env_counters *c = &e->count;
    PPDB_LOG(e->log, PPDB_LOG_DEBUG, COMP, "env closed",
             "timer_limit=%llu udp_queue_limit=%llu udp_send_errors=%llu udp_recv_errors=%llu "
             "stream_limit=%llu accept_errors=%llu work_limit=%llu",
             (unsigned long long)c->timer_limit, (unsigned long long)c->udp_queue_limit,
             (unsigned long long)c->udp_send_errors, (unsigned long long)c->udp_recv_errors,
             (unsigned long long)c->stream_limit, (unsigned long long)c->accept_errors,
             (unsigned long long)c->work_limit);
}

void ppdb_env_uv_free(struct ppdb_env_uv *e)
{
    if (!e)
        return;
    e->freeing = true;
    close_leftovers(e);
    if (e->heap.len)
        PPDB_LOG(e->log, PPDB_LOG_WARN, COMP, "env freed with armed timers; disarmed them",
                 "timers=%u", e->heap.len);
    ppdb_timer_heap_deinit(&e->heap);
    uv_close((uv_handle_t *)&e->timer, timer_closed_cb);
    if (e->disc)
        ppdb_disc_close(e->disc);
    /* Must not be called from a callback of this loop: uv_run does not nest. */
    for (uint64_t turns = 0; e->live_handles || e->work_inflight || !e->timer_closed ||
                             (e->disc && ppdb_disc_busy(e->disc));
         turns++) {
        PPDB_ASSERT_CMP(turns, <, FREE_MAX_TURNS);
        uv_run(e->loop, UV_RUN_ONCE);
    }
    ppdb_disc_free(e->disc);
    log_counters(e);
    ppdb_free(e);
}

struct ppdb_env *ppdb_env_uv_env(struct ppdb_env_uv *e)
{
    return &e->env;
}
