/*
 * discovery_avahi.c - LAN discovery (mDNS / DNS-SD) through avahi-client,
 * driven by the env's libuv loop.
 *
 * Why this shape: avahi-client talks to the Avahi daemon over D-Bus and
 * needs a main loop. Instead of a second thread (avahi's threaded poll) we
 * give it an AvahiPoll whose watches are uv_poll_t and whose timeouts are
 * uv_timer_t, so every Avahi callback runs on the env's loop thread like
 * everything else the env delivers. libuv allows one uv_poll_t per fd while
 * libdbus adds separate read and write watches on one socket, so watches
 * share a per-fd `struct fd_poll` that polls the union of their events.
 *
 * What it does: publishes the env's one announcement as a `_ppdb._udp`
 * service (on a name collision renamed "NAME #K", K drawn from the
 * announcement and the rename count, and re-registered), browses the requested types, resolves every instance it
 * sees, drops those whose TXT lacks the configured match entry (the cluster
 * key fingerprint), and hands the rest to the browse callback: up=true when
 * found or changed, up=false when the daemon reports it gone. Discovery
 * only proposes join candidates; liveness comes from membership (a vanished
 * host's records live on in caches for up to 120 s).
 *
 * Client state machine: the client is created with AVAHI_CLIENT_NO_FAIL, so
 * an absent daemon leaves it CONNECTING (state "waiting") until the daemon
 * appears. When the daemon or the bus goes away (AVAHI_CLIENT_FAILURE, e.g.
 * AVAHI_ERR_DISCONNECTED) the client is freed and recreated from a timer
 * (never inside Avahi's own callback), with a backoff while the bus is
 * unreachable; on RUNNING the announcement is re-published and every browse
 * restarted. If no client can be made at start (no D-Bus), discovery is
 * "unavailable" for the life of the env: one warning, and announce/browse
 * answer PPDB_EUNAVAIL so callers carry on with seeds.
 *
 * Invariants:
 *   - Avahi objects (group, browsers, resolvers) exist only while `client`
 *     does and are dropped before it is freed or recreated;
 *   - a watch freed during its fd's dispatch is only marked dead and swept
 *     when the dispatch ends; uv handle memory is freed in close callbacks,
 *     and ppdb_disc_free requires live_handles == 0;
 *   - bounds: MAX_BROWSES browses, max_found tracked instances, MAX_RENAMES
 *     renames, MAX_RESOLVE_TRIES resolver attempts per instance; each hit
 *     is counted in the stats.
 */
#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/domain.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/timeval.h>
#include <avahi-common/watch.h>

#include "discovery_avahi.h"

#define MAX_BROWSES       4
#define MAX_RENAMES       32
#define MAX_RESOLVE_TRIES 3
#define TYPE_MAX          64
#define DOMAIN_MAX        256
#define RESTART_MIN_MS    250
#define RESTART_MAX_MS    30000
#define DEFAULT_SVC_NAME  "ppdb"

static const char COMP[] = "mdns";

/* ------------------------------------------------------------- types */

struct fd_poll {
    uv_poll_t h;
    struct ppdb_disc *d;
    struct fd_poll *next;       /* d->polls */
    struct AvahiWatch *watches; /* sharing this fd */
    int fd;
    uint32_t dispatching; /* inside poll_cb */
};

struct AvahiWatch {
    struct fd_poll *p;
    struct AvahiWatch *next;
    AvahiWatchEvent events;  /* wanted */
    AvahiWatchEvent revents; /* during its callback */
    AvahiWatchCallback cb;
    void *userdata;
    bool dead;
};

struct AvahiTimeout {
    uv_timer_t h;
    struct ppdb_disc *d;
    AvahiTimeoutCallback cb;
    void *userdata;
};

struct browse {
    struct ppdb_disc *d;
    char type[TYPE_MAX];
    ppdb_discovery_cb cb;
    void *data;
    AvahiServiceBrowser *sb;
};

/* One service instance a browser reported, in the order they appeared. */
struct found {
    struct found *next;
    struct browse *b;
    AvahiServiceResolver *r;
    AvahiIfIndex iface;
    AvahiProtocol proto;
    char name[AVAHI_LABEL_MAX];
    char domain[DOMAIN_MAX];
    uint32_t tries;          /* resolver attempts */
    bool delivered;          /* svc was handed to the callback with up=true */
    bool filtered;           /* dropped by the match entry */
    struct ppdb_service svc; /* as last delivered */
};

struct ppdb_disc {
    uv_loop_t *loop;
    struct ppdb_logger *log;
    AvahiPoll poll;
    AvahiClient *client;
    AvahiEntryGroup *group;
    int state;    /* enum ppdb_discovery_state */
    bool dead;    /* no client could be made at start */
    bool warned;  /* the one absent-daemon warning was logged */
    bool failing; /* a restart episode is under way (log once) */
    bool closing;
    bool in_new; /* inside avahi_client_new: its failure is returned */
    bool have_svc;
    struct ppdb_service svc;    /* the announcement asked for */
    char name[AVAHI_LABEL_MAX]; /* its current name (after renames) */
    uint32_t renames;
    struct browse browses[MAX_BROWSES];
    uint32_t nbrowses;
    struct found *found;
    uint32_t nfound;
    uint32_t max_found;
    char match[PPDB_SVC_TXT_LEN];
    uv_timer_t restart;
    uint32_t backoff_ms;
    struct fd_poll *polls;
    uint32_t live_handles; /* uv handles whose close callback has not run */
    struct ppdb_discovery_stats st;
};

/* ------------------------------------------------- AvahiPoll: watches */

static int to_uv_events(AvahiWatchEvent ev)
{
    int out = 0;
    if (ev & AVAHI_WATCH_IN)
        out |= UV_READABLE;
    if (ev & AVAHI_WATCH_OUT)
        out |= UV_WRITABLE;
    if (ev & AVAHI_WATCH_HUP)
        out |= UV_DISCONNECT;
    return out;
}

static AvahiWatchEvent from_uv_events(int ev)
{
    AvahiWatchEvent out = 0;
    if (ev & UV_READABLE)
        out |= AVAHI_WATCH_IN;
    if (ev & UV_WRITABLE)
        out |= AVAHI_WATCH_OUT;
    if (ev & UV_DISCONNECT)
        out |= AVAHI_WATCH_HUP;
    return out;
}

static void handle_closed_cb(uv_handle_t *h)
{
    struct ppdb_disc *d = h->data;
    PPDB_ASSERT_CMP(d->live_handles, >, 0);
    d->live_handles--;
    if (h->type == UV_POLL)
        ppdb_free(PPDB_CONTAINER_OF((uv_poll_t *)h, struct fd_poll, h));
    else if (h != (uv_handle_t *)&d->restart)
        ppdb_free(PPDB_CONTAINER_OF((uv_timer_t *)h, struct AvahiTimeout, h));
}

static void poll_cb(uv_poll_t *h, int status, int events);

/* Frees dead watches and polls the union of the live ones' events; closes
 * the fd's poll when no watch is left. Not during a dispatch. */
static void poll_sync(struct fd_poll *p)
{
    PPDB_ASSERT(p->dispatching == 0);
    AvahiWatchEvent want = 0;
    for (struct AvahiWatch **pw = &p->watches; *pw;) {
        struct AvahiWatch *w = *pw;
        if (w->dead) {
            *pw = w->next;
            ppdb_free(w);
            continue;
        }
        want |= w->events;
        pw = &w->next;
    }
    if (p->watches == NULL) {
        struct fd_poll **pp = &p->d->polls;
        while (*pp != p)
            pp = &(*pp)->next;
        *pp = p->next;
        uv_close((uv_handle_t *)&p->h, handle_closed_cb);
    } else if (to_uv_events(want) == 0) {
        uv_poll_stop(&p->h);
    } else {
        int rc = uv_poll_start(&p->h, to_uv_events(want), poll_cb);
        PPDB_ASSERT(rc == 0);
    }
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct fd_poll *p = PPDB_CONTAINER_OF(h, struct fd_poll, h);
    AvahiWatchEvent got = status < 0 ? AVAHI_WATCH_ERR : from_uv_events(events);
    p->dispatching++;
    /* New watches are pushed at the head, so this walk sees only those that
     * existed when the events arrived; freed ones are marked dead. */
    for (struct AvahiWatch *w = p->watches; w; w = w->next) {
        AvahiWatchEvent ev = got & (w->events | AVAHI_WATCH_ERR | AVAHI_WATCH_HUP);
        if (w->dead || ev == 0)
            continue;
        w->revents = ev;
        w->cb(w, p->fd, ev, w->userdata);
        w->revents = 0;
    }
    p->dispatching--;
    if (p->dispatching == 0)
        poll_sync(p);
}

static struct fd_poll *poll_get(struct ppdb_disc *d, int fd)
{
    for (struct fd_poll *p = d->polls; p; p = p->next)
        if (p->fd == fd)
            return p;
    struct fd_poll *p = ppdb_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (uv_poll_init(d->loop, &p->h, fd) < 0) {
        ppdb_free(p);
        return NULL;
    }
    uv_unref((uv_handle_t *)&p->h); /* discovery alone does not keep a loop alive */
    p->h.data = d;
    p->d = d;
    p->fd = fd;
    p->next = d->polls;
    d->polls = p;
    d->live_handles++;
    return p;
}

static AvahiWatch *watch_new(const AvahiPoll *api, int fd, AvahiWatchEvent events,
                             AvahiWatchCallback cb, void *userdata)
{
    struct ppdb_disc *d = api->userdata;
    struct AvahiWatch *w = ppdb_calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    struct fd_poll *p = poll_get(d, fd);
    if (!p) {
        ppdb_free(w);
        return NULL;
    }
    w->p = p;
    w->events = events;
    w->cb = cb;
    w->userdata = userdata;
    w->next = p->watches;
    p->watches = w;
    if (p->dispatching == 0)
        poll_sync(p);
    return w;
}

static void watch_update(AvahiWatch *w, AvahiWatchEvent events)
{
    w->events = events;
    if (w->p->dispatching == 0)
        poll_sync(w->p);
}

static AvahiWatchEvent watch_get_events(AvahiWatch *w)
{
    return w->revents;
}

static void watch_free(AvahiWatch *w)
{
    w->dead = true;
    if (w->p->dispatching == 0)
        poll_sync(w->p);
}

/* ----------------------------------------------- AvahiPoll: timeouts */

static void timeout_cb(uv_timer_t *h)
{
    struct AvahiTimeout *t = PPDB_CONTAINER_OF(h, struct AvahiTimeout, h);
    t->cb(t, t->userdata);
}

/* Avahi's times are absolute gettimeofday() values. */
static uint64_t delay_until_ms(const struct timeval *tv)
{
    AvahiUsec age_us = avahi_age(tv); /* now - tv */
    if (age_us >= 0)
        return 0;
    return (uint64_t)((-age_us + 999) / 1000);
}

static void timeout_update(AvahiTimeout *t, const struct timeval *tv)
{
    if (!tv) {
        uv_timer_stop(&t->h);
        return;
    }
    int rc = uv_timer_start(&t->h, timeout_cb, delay_until_ms(tv), 0);
    PPDB_ASSERT(rc == 0);
}

static AvahiTimeout *timeout_new(const AvahiPoll *api, const struct timeval *tv,
                                 AvahiTimeoutCallback cb, void *userdata)
{
    struct ppdb_disc *d = api->userdata;
    struct AvahiTimeout *t = ppdb_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    int rc = uv_timer_init(d->loop, &t->h);
    PPDB_ASSERT(rc == 0);
    uv_unref((uv_handle_t *)&t->h);
    t->h.data = d;
    t->d = d;
    t->cb = cb;
    t->userdata = userdata;
    d->live_handles++;
    timeout_update(t, tv);
    return t;
}

static void timeout_free(AvahiTimeout *t)
{
    uv_timer_stop(&t->h);
    uv_close((uv_handle_t *)&t->h, handle_closed_cb);
}

/* -------------------------------------------------------- publishing */

static void publish(struct ppdb_disc *d);

/* Avahi's alternative names ("x #2", "x #3", ...) are the same sequence on
 * every host, so services that start together under one name collide, all
 * rename to the same next name, and collide again, round after round. The
 * suffix here is drawn from this announcement (its TXT carries the node id
 * and its port) and the rename count, so colliding hosts part at once. */
static void rename_service(struct ppdb_disc *d)
{
    uint64_t h = ppdb_hash64(&d->renames, sizeof(d->renames), d->svc.addr.port);
    for (uint32_t i = 0; i < d->svc.txt_count; i++)
        h = ppdb_hash64(d->svc.txt[i], strlen(d->svc.txt[i]), h);
    char alt[AVAHI_LABEL_MAX];
    const char *base = d->svc.name[0] ? d->svc.name : DEFAULT_SVC_NAME;
    int room = (int)sizeof(alt) - 8; /* " #" and up to 5 digits */
    snprintf(alt, sizeof(alt), "%.*s #%u", room, base, (unsigned)(2 + h % 65534));
    if (avahi_is_valid_service_name(alt)) {
        snprintf(d->name, sizeof(d->name), "%s", alt);
    } else {
        char *next = avahi_alternative_service_name(d->name);
        if (next) {
            snprintf(d->name, sizeof(d->name), "%s", next);
            avahi_free(next);
        }
    }
    d->renames++;
    d->st.name_collisions++;
    PPDB_LOG(d->log, PPDB_LOG_INFO, COMP, "service name taken; renamed", "name=\"%s\"", d->name);
}

static void group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state, void *userdata)
{
    struct ppdb_disc *d = userdata;
    switch (state) {
    case AVAHI_ENTRY_GROUP_ESTABLISHED:
        d->st.published++;
        PPDB_LOG(d->log, PPDB_LOG_INFO, COMP, "service published", "name=\"%s\" port=%u", d->name,
                 (unsigned)d->svc.addr.port);
        break;
    case AVAHI_ENTRY_GROUP_COLLISION:
        if (d->renames >= MAX_RENAMES) {
            PPDB_LOG(d->log, PPDB_LOG_ERROR, COMP, "service name collisions; gave up", "renames=%u",
                     d->renames);
            avahi_entry_group_reset(g);
            break;
        }
        rename_service(d);
        avahi_entry_group_reset(g);
        publish(d);
        break;
    case AVAHI_ENTRY_GROUP_FAILURE:
        PPDB_LOG(d->log, PPDB_LOG_WARN, COMP, "service publication failed", "err=\"%s\"",
                 avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
        break;
    default:
        break;
    }
}

/* The announcement's TXT as an Avahi string list, in svc order. */
static AvahiStringList *txt_list(const struct ppdb_service *svc)
{
    AvahiStringList *l = NULL;
    for (uint32_t i = svc->txt_count; i-- > 0;) {
        AvahiStringList *n = avahi_string_list_add(l, svc->txt[i]);
        if (!n) {
            avahi_string_list_free(l);
            return NULL;
        }
        l = n;
    }
    return l;
}

static int add_service(struct ppdb_disc *d, AvahiStringList *txt)
{
    int rc = AVAHI_ERR_COLLISION;
    for (uint32_t i = 0; i <= MAX_RENAMES && rc == AVAHI_ERR_COLLISION; i++) {
        rc = avahi_entry_group_add_service_strlst(d->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, 0,
                                                  d->name, PPDB_SVC_TYPE, NULL, NULL,
                                                  d->svc.addr.port, txt);
        if (rc == AVAHI_ERR_COLLISION)
            rename_service(d); /* a local service holds the name */
    }
    return rc;
}

/* (Re)registers the announcement when there is one and the daemon runs. */
static void publish(struct ppdb_disc *d)
{
    if (!d->have_svc || !d->client || avahi_client_get_state(d->client) != AVAHI_CLIENT_S_RUNNING)
        return;
    if (!d->group && !(d->group = avahi_entry_group_new(d->client, group_cb, d))) {
        PPDB_LOG(d->log, PPDB_LOG_WARN, COMP, "cannot create entry group", "err=\"%s\"",
                 avahi_strerror(avahi_client_errno(d->client)));
        return;
    }
    if (!avahi_entry_group_is_empty(d->group))
        return; /* registered already */
    AvahiStringList *txt = txt_list(&d->svc);
    int rc = (txt || d->svc.txt_count == 0) ? add_service(d, txt) : AVAHI_ERR_NO_MEMORY;
    avahi_string_list_free(txt);
    if (rc == 0)
        rc = avahi_entry_group_commit(d->group);
    if (rc < 0)
        PPDB_LOG(d->log, PPDB_LOG_WARN, COMP, "cannot publish service", "name=\"%s\" err=\"%s\"",
                 d->name, avahi_strerror(rc));
}

/* ---------------------------------------------------------- browsing */

static void resolver_start(struct found *f);

static void found_free(struct ppdb_disc *d, struct found *f)
{
    struct found **pp = &d->found;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    if (f->r)
        avahi_service_resolver_free(f->r);
    d->nfound--;
    ppdb_free(f);
}

static struct found *found_find(struct browse *b, AvahiIfIndex iface, AvahiProtocol proto,
                                const char *name, const char *domain)
{
    for (struct found *f = b->d->found; f; f = f->next)
        if (f->b == b && f->iface == iface && f->proto == proto && strcmp(f->name, name) == 0 &&
            strcmp(f->domain, domain) == 0)
            return f;
    return NULL;
}

/* IPv4, or IPv6 that is not link-local (a ppdb_addr carries no scope). */
static int addr_from_avahi(const AvahiAddress *a, uint16_t port, struct ppdb_addr *out)
{
    memset(out, 0, sizeof(*out));
    out->port = port;
    if (a->proto == AVAHI_PROTO_INET) {
        out->family = 4;
        memcpy(out->ip, &a->data.ipv4.address, 4);
        return 0;
    }
    if (a->proto == AVAHI_PROTO_INET6 &&
        !(a->data.ipv6.address[0] == 0xfe && (a->data.ipv6.address[1] & 0xc0) == 0x80)) {
        out->family = 6;
        memcpy(out->ip, a->data.ipv6.address, 16);
        return 0;
    }
    return PPDB_ENOTSUP;
}

static void service_from_result(struct ppdb_service *svc, const char *name, AvahiStringList *txt)
{
    snprintf(svc->name, sizeof(svc->name), "%s", name);
    for (AvahiStringList *t = txt; t && svc->txt_count < PPDB_SVC_TXT_MAX;
         t = avahi_string_list_get_next(t)) {
        size_t len = avahi_string_list_get_size(t);
        const uint8_t *text = avahi_string_list_get_text(t);
        if (len >= PPDB_SVC_TXT_LEN || memchr(text, '\0', len))
            continue; /* not one of ours */
        memcpy(svc->txt[svc->txt_count], text, len);
        svc->txt[svc->txt_count++][len] = '\0';
    }
}

static void resolved(struct found *f, const AvahiAddress *a, uint16_t port, AvahiStringList *txt)
{
    struct ppdb_disc *d = f->b->d;
    struct ppdb_service svc;
    memset(&svc, 0, sizeof(svc));
    if (addr_from_avahi(a, port, &svc.addr) < 0)
        return; /* a link-local IPv6 record; the IPv4 one arrives on its own */
    service_from_result(&svc, f->name, txt);
    /* The resolver stays open in both cases: a service name can change
     * owner (names collide and one side renames, a host leaves and another
     * takes its name), and the resolver reports the new owner's records. */
    if (d->match[0] && !ppdb_service_txt_has(&svc, d->match)) {
        if (!f->filtered) {
            d->st.filtered++;
            f->filtered = true;
            PPDB_LOG(d->log, PPDB_LOG_DEBUG, COMP, "service of another mesh ignored",
                     "name=\"%s\"", f->name);
        }
        if (f->delivered) { /* the name now belongs to another mesh */
            struct ppdb_service gone = f->svc;
            f->delivered = false;
            d->st.removed++;
            f->b->cb(f->b->data, &gone, false);
        }
        return;
    }
    f->filtered = false;
    if (f->delivered && memcmp(&svc, &f->svc, sizeof(svc)) == 0)
        return;
    f->svc = svc;
    f->delivered = true;
    d->st.found++;
    char buf[PPDB_ADDR_STRLEN];
    PPDB_LOG(d->log, PPDB_LOG_DEBUG, COMP, "service found", "name=\"%s\" addr=%s", f->name,
             ppdb_addr_format(&svc.addr, buf));
    f->b->cb(f->b->data, &f->svc, true);
}

static void resolve_cb(AvahiServiceResolver *r, AvahiIfIndex iface, AvahiProtocol proto,
                       AvahiResolverEvent event, const char *name, const char *type,
                       const char *domain, const char *host, const AvahiAddress *a, uint16_t port,
                       AvahiStringList *txt, AvahiLookupResultFlags flags, void *userdata)
{
    struct found *f = userdata;
    if (event == AVAHI_RESOLVER_FOUND) {
        resolved(f, a, port, txt);
        return;
    }
    struct ppdb_disc *d = f->b->d;
    d->st.resolve_failures++;
    PPDB_LOG(d->log, PPDB_LOG_DEBUG, COMP, "resolve failed", "name=\"%s\" err=\"%s\"", f->name,
             avahi_strerror(avahi_client_errno(d->client)));
    avahi_service_resolver_free(r);
    f->r = NULL;
    if (f->tries < MAX_RESOLVE_TRIES)
        resolver_start(f);
}

static void resolver_start(struct found *f)
{
    struct ppdb_disc *d = f->b->d;
    f->tries++;
    f->r = avahi_service_resolver_new(d->client, f->iface, f->proto, f->name, f->b->type, f->domain,
                                      f->proto, 0, resolve_cb, f);
    if (!f->r)
        d->st.resolve_failures++;
}

static void found_add(struct browse *b, AvahiIfIndex iface, AvahiProtocol proto, const char *name,
                      const char *domain)
{
    struct ppdb_disc *d = b->d;
    if (found_find(b, iface, proto, name, domain))
        return;
    if (d->nfound >= d->max_found || strlen(name) >= AVAHI_LABEL_MAX ||
        strlen(domain) >= DOMAIN_MAX) {
        if (d->st.table_full++ % 1024 == 0)
            PPDB_LOG(d->log, PPDB_LOG_WARN, COMP, "too many services; ignoring", "max=%u",
                     d->max_found);
        return;
    }
    struct found *f = ppdb_calloc(1, sizeof(*f));
    if (!f)
        return;
    f->b = b;
    f->iface = iface;
    f->proto = proto;
    snprintf(f->name, sizeof(f->name), "%s", name);
    snprintf(f->domain, sizeof(f->domain), "%s", domain);
    struct found **pp = &d->found;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    d->nfound++;
    resolver_start(f);
}

static void schedule_restart(struct ppdb_disc *d, uint64_t delay_ms);

static void browse_cb(AvahiServiceBrowser *sb, AvahiIfIndex iface, AvahiProtocol proto,
                      AvahiBrowserEvent event, const char *name, const char *type,
                      const char *domain, AvahiLookupResultFlags flags, void *userdata)
{
    struct browse *b = userdata;
    struct ppdb_disc *d = b->d;
    struct found *f;
    switch (event) {
    case AVAHI_BROWSER_NEW:
        found_add(b, iface, proto, name, domain);
        break;
    case AVAHI_BROWSER_REMOVE:
        if (!(f = found_find(b, iface, proto, name, domain)))
            break;
        if (f->delivered) {
            d->st.removed++;
            struct ppdb_service gone = f->svc;
            found_free(d, f);
            b->cb(b->data, &gone, false);
        } else {
            found_free(d, f);
        }
        break;
    case AVAHI_BROWSER_FAILURE:
        PPDB_LOG(d->log, PPDB_LOG_WARN, COMP, "browse failed", "type=%s err=\"%s\"", b->type,
                 avahi_strerror(avahi_client_errno(d->client)));
        schedule_restart(d, RESTART_MIN_MS);
        break;
    default: /* ALL_FOR_NOW, CACHE_EXHAUSTED */
        break;
    }
}

static void browse_start(struct browse *b)
{
    struct ppdb_disc *d = b->d;
    if (b->sb || !d->client || avahi_client_get_state(d->client) != AVAHI_CLIENT_S_RUNNING)
        return;
    b->sb = avahi_service_browser_new(d->client, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, b->type, NULL,
                                      0, browse_cb, b);
    if (!b->sb)
        PPDB_LOG(d->log, PPDB_LOG_WARN, COMP, "cannot browse", "type=%s err=\"%s\"", b->type,
                 avahi_strerror(avahi_client_errno(d->client)));
}

/* ------------------------------------------------------------ client */

/* Frees every Avahi object hanging off the client (not the client). The
 * tracked instances go too: a new session reports them again. */
static void drop_objects(struct ppdb_disc *d)
{
    while (d->found)
        found_free(d, d->found);
    for (uint32_t i = 0; i < d->nbrowses; i++) {
        if (d->browses[i].sb)
            avahi_service_browser_free(d->browses[i].sb);
        d->browses[i].sb = NULL;
    }
    if (d->group)
        avahi_entry_group_free(d->group);
    d->group = NULL;
}

static void session_start(struct ppdb_disc *d)
{
    if (d->state != PPDB_DISCOVERY_RUNNING)
        PPDB_LOG(d->log, PPDB_LOG_INFO, COMP, "avahi daemon connected", "restarts=%llu",
                 (unsigned long long)d->st.client_restarts);
    d->state = PPDB_DISCOVERY_RUNNING;
    d->failing = false;
    d->backoff_ms = 0;
    d->renames = 0;
    publish(d);
    for (uint32_t i = 0; i < d->nbrowses; i++)
        browse_start(&d->browses[i]);
}

static void client_cb(AvahiClient *c, AvahiClientState state, void *userdata)
{
    struct ppdb_disc *d = userdata;
    d->client = c; /* callbacks may come from inside avahi_client_new */
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
        session_start(d);
        break;
    case AVAHI_CLIENT_S_COLLISION:
    case AVAHI_CLIENT_S_REGISTERING:
        /* The daemon is (re)claiming its host name: services are withdrawn
         * and registered again once it runs. */
        if (d->group)
            avahi_entry_group_reset(d->group);
        break;
    case AVAHI_CLIENT_CONNECTING:
        drop_objects(d);
        d->state = PPDB_DISCOVERY_WAITING;
        if (!d->warned && !d->failing)
            PPDB_LOG(d->log, PPDB_LOG_WARN, COMP,
                     "avahi daemon not running; LAN discovery waits for it, seeds only meanwhile",
                     NULL);
        d->warned = true;
        break;
    case AVAHI_CLIENT_FAILURE:
        if (d->in_new)
            break; /* avahi_client_new returns NULL; client_start handles it */
        d->state = PPDB_DISCOVERY_WAITING;
        if (!d->failing)
            PPDB_LOG(d->log, PPDB_LOG_WARN, COMP, "avahi client failed; recreating it",
                     "err=\"%s\"", avahi_strerror(avahi_client_errno(c)));
        d->failing = true;
        schedule_restart(d, 0);
        break;
    }
}

static int client_start(struct ppdb_disc *d, int *avahi_err_out)
{
    PPDB_ASSERT(d->client == NULL);
    d->in_new = true;
    AvahiClient *c = avahi_client_new(&d->poll, AVAHI_CLIENT_NO_FAIL, client_cb, d, avahi_err_out);
    d->in_new = false;
    if (!c) {
        d->client = NULL; /* a callback may have stored the dying client */
        return PPDB_EUNAVAIL;
    }
    d->client = c;
    return 0;
}

static void restart_cb(uv_timer_t *h)
{
    struct ppdb_disc *d = h->data;
    drop_objects(d);
    if (d->client)
        avahi_client_free(d->client);
    d->client = NULL;
    d->st.client_restarts++;
    int err = 0;
    if (client_start(d, &err) == 0)
        return; /* the state arrives through client_cb */
    d->state = PPDB_DISCOVERY_UNAVAILABLE;
    if (d->backoff_ms == 0)
        PPDB_LOG(d->log, PPDB_LOG_WARN, COMP, "cannot reach D-Bus; retrying", "err=\"%s\"",
                 avahi_strerror(err));
    d->backoff_ms = PPDB_MIN(PPDB_MAX(d->backoff_ms * 2, RESTART_MIN_MS), RESTART_MAX_MS);
    schedule_restart(d, d->backoff_ms);
}

static void schedule_restart(struct ppdb_disc *d, uint64_t delay_ms)
{
    if (d->closing)
        return;
    int rc = uv_timer_start(&d->restart, restart_cb, delay_ms, 0);
    PPDB_ASSERT(rc == 0);
}

/* ------------------------------------------------------------ public */

int ppdb_disc_new(uv_loop_t *loop, struct ppdb_logger *log, const char *match, uint32_t max_found,
                  struct ppdb_disc **out)
{
    PPDB_ASSERT(loop != NULL && log != NULL && out != NULL && max_found > 0);
    if (match && strlen(match) >= PPDB_SVC_TXT_LEN)
        return PPDB_EINVAL;
    struct ppdb_disc *d = ppdb_calloc(1, sizeof(*d));
    if (!d)
        return PPDB_ENOMEM;
    d->loop = loop;
    d->log = log;
    d->max_found = max_found;
    snprintf(d->match, sizeof(d->match), "%s", match ? match : "");
    d->poll = (AvahiPoll){.userdata = d,
                          .watch_new = watch_new,
                          .watch_update = watch_update,
                          .watch_get_events = watch_get_events,
                          .watch_free = watch_free,
                          .timeout_new = timeout_new,
                          .timeout_update = timeout_update,
                          .timeout_free = timeout_free};
    int rc = uv_timer_init(loop, &d->restart);
    PPDB_ASSERT(rc == 0);
    uv_unref((uv_handle_t *)&d->restart);
    d->restart.data = d;
    d->live_handles++;
    d->state = PPDB_DISCOVERY_WAITING;
    int err = 0;
    if (client_start(d, &err) < 0) {
        d->dead = true;
        d->state = PPDB_DISCOVERY_UNAVAILABLE;
        PPDB_LOG(log, PPDB_LOG_WARN, COMP,
                 "LAN discovery unavailable (no D-Bus or Avahi); seeds only", "err=\"%s\"",
                 avahi_strerror(err));
    }
    *out = d;
    return 0;
}

int ppdb_disc_announce(struct ppdb_disc *d, const struct ppdb_service *svc)
{
    PPDB_ASSERT(svc != NULL && !d->closing);
    if (d->dead)
        return PPDB_EUNAVAIL;
    const char *name = svc->name[0] ? svc->name : DEFAULT_SVC_NAME;
    if (svc->addr.port == 0 || svc->txt_count > PPDB_SVC_TXT_MAX ||
        memchr(svc->name, '\0', sizeof(svc->name)) == NULL || !avahi_is_valid_service_name(name))
        return PPDB_EINVAL;
    for (uint32_t i = 0; i < svc->txt_count; i++)
        if (memchr(svc->txt[i], '\0', PPDB_SVC_TXT_LEN) == NULL)
            return PPDB_EINVAL;
    d->svc = *svc;
    d->have_svc = true;
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->renames = 0;
    if (d->group)
        avahi_entry_group_reset(d->group);
    publish(d);
    return 0;
}

void ppdb_disc_withdraw(struct ppdb_disc *d)
{
    d->have_svc = false;
    if (d->group)
        avahi_entry_group_reset(d->group);
}

int ppdb_disc_browse(struct ppdb_disc *d, const char *type, ppdb_discovery_cb cb, void *data)
{
    PPDB_ASSERT(type != NULL && cb != NULL && !d->closing);
    if (d->dead)
        return PPDB_EUNAVAIL;
    if (strlen(type) >= TYPE_MAX || !avahi_is_valid_service_type_generic(type))
        return PPDB_EINVAL;
    if (d->nbrowses >= MAX_BROWSES)
        return PPDB_ELIMIT;
    struct browse *b = &d->browses[d->nbrowses++];
    b->d = d;
    snprintf(b->type, sizeof(b->type), "%s", type);
    b->cb = cb;
    b->data = data;
    browse_start(b);
    return 0;
}

int ppdb_disc_state(const struct ppdb_disc *d)
{
    return d->state;
}

void ppdb_disc_stats(const struct ppdb_disc *d, struct ppdb_discovery_stats *out)
{
    *out = d->st;
}

void ppdb_disc_close(struct ppdb_disc *d)
{
    PPDB_ASSERT(!d->closing);
    d->closing = true;
    drop_objects(d);
    if (d->client)
        avahi_client_free(d->client); /* frees its watches and timeouts */
    d->client = NULL;
    uv_timer_stop(&d->restart);
    uv_close((uv_handle_t *)&d->restart, handle_closed_cb);
}

bool ppdb_disc_busy(const struct ppdb_disc *d)
{
    return d->live_handles > 0;
}

void ppdb_disc_free(struct ppdb_disc *d)
{
    if (!d)
        return;
    PPDB_ASSERT(d->closing && d->live_handles == 0 && d->polls == NULL);
    ppdb_free(d);
}
