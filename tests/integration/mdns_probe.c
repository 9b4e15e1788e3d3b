/*
 * mdns_probe.c - a discovery-level LAN node for the mDNS tests: one libuv
 * env with discovery on, announcing a PPDB service and browsing for others.
 *
 * It is the program the tests in tests/integration/test_mdns_*.sh start in
 * each network namespace of the LAN harness (tests/lan/lan.sh). It prints
 * one line per event on stdout, with wall-clock milliseconds (all the
 * namespaces share the host's clock, so the harness can subtract times of
 * different processes):
 *
 *   state <name> wall_ms=<t>          discovery state, at start and on change
 *   announce rc=<rc> wall_ms=<t>      announce called (rc 0 or PPDB_E*)
 *   browse rc=<rc>
 *   found id=<hex> name=<n> addr=<a> ck=<ck> v=<v> wall_ms=<t>   (first time)
 *   refound id=<hex> ... wall_ms=<t>  found again after a removal
 *   update id=<hex> addr=<a> wall_ms=<t>  delivered again while up (changed,
 *                                     or found again by a new Avahi session)
 *   lost id=<hex> wall_ms=<t>         the daemon reported it gone
 *   complete peers=<n> wall_ms=<t>    --expect distinct peers were found
 *   stats published=.. found=.. filtered=.. restarts=.. removed=.. collisions=..
 *
 * Usage: mdns_probe --id HEX40 --key KEY --port P [--name N] [--expect K]
 *                   [--run-ms T] [--linger-ms L] [--no-announce]
 * It exits when --expect peers were found and --linger-ms more passed, or
 * at --run-ms; 0 when the expected peers were found (or K is 0), 1 if not.
 * The TXT filter is this probe's own key fingerprint, as a node would use.
 * SIGTERM ends it early (exit as at --run-ms). Counted allocations are
 * checked for leaks at the end.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <uv.h>

#include "check.h"
#include "ppdb_env.h"
#include "ppdb_wire.h"

#define MAX_PEERS 32
#define POLL_MS   20

struct peer {
    char id[2 * PPDB_NODE_ID_LEN + 1];
    bool up;
    bool seen; /* was up at least once */
};

struct probe {
    uv_loop_t loop;
    uv_signal_t sigterm;
    struct ppdb_env_uv *envu;
    struct ppdb_env *env;
    struct ppdb_timer tick;
    char id[2 * PPDB_NODE_ID_LEN + 1];
    char name[PPDB_SVC_NAME_MAX];
    char ck[16];
    uint16_t port;
    uint32_t expect;
    uint64_t run_ms, linger_ms, start_ms, complete_ms;
    bool announce, complete, stop;
    int last_state;
    struct peer peers[MAX_PEERS];
    uint32_t npeers;
};

static long long wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static struct peer *peer_get(struct probe *p, const char *id)
{
    for (uint32_t i = 0; i < p->npeers; i++)
        if (strcmp(p->peers[i].id, id) == 0)
            return &p->peers[i];
    CHECK_LT(p->npeers, MAX_PEERS);
    struct peer *pe = &p->peers[p->npeers++];
    snprintf(pe->id, sizeof(pe->id), "%s", id);
    return pe;
}

static uint32_t peers_up(const struct probe *p)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->npeers; i++)
        n += p->peers[i].up;
    return n;
}

static void found_cb(void *data, const struct ppdb_service *svc, bool up)
{
    struct probe *p = data;
    const char *id = ppdb_service_txt_get(svc, PPDB_SVC_TXT_ID);
    const char *ck = ppdb_service_txt_get(svc, PPDB_SVC_TXT_KEY);
    const char *v = ppdb_service_txt_get(svc, PPDB_SVC_TXT_VERSION);
    CHECK(id != NULL && ck != NULL && v != NULL);
    CHECK_STREQ(ck, p->ck); /* the env filtered every other mesh out */
    if (strcmp(id, p->id) == 0)
        return; /* our own announcement */
    struct peer *pe = peer_get(p, id);
    char addr[PPDB_ADDR_STRLEN];
    if (up && !pe->up)
        printf("%s id=%s name=%s addr=%s ck=%s v=%s wall_ms=%lld\n", pe->seen ? "refound" : "found",
               id, svc->name, ppdb_addr_format(&svc->addr, addr), ck, v, wall_ms());
    else if (up)
        printf("update id=%s addr=%s wall_ms=%lld\n", id, ppdb_addr_format(&svc->addr, addr),
               wall_ms());
    else if (!up && pe->up)
        printf("lost id=%s wall_ms=%lld\n", id, wall_ms());
    pe->up = up;
    pe->seen |= up;
}

static void print_state(struct probe *p)
{
    int st = ppdb_env_uv_discovery_state(p->envu);
    if (st == p->last_state)
        return;
    p->last_state = st;
    printf("state %s wall_ms=%lld\n", ppdb_discovery_state_name(st), wall_ms());
}

static void tick_cb(struct ppdb_timer *t)
{
    struct probe *p = t->data;
    uint64_t now = ppdb_env_mono_ms(p->env);
    print_state(p);
    if (!p->complete && p->expect && peers_up(p) >= p->expect) {
        p->complete = true;
        p->complete_ms = now;
        printf("complete peers=%u wall_ms=%lld\n", peers_up(p), wall_ms());
    }
    bool lingered = p->complete && p->linger_ms && now - p->complete_ms >= p->linger_ms;
    if (p->stop || lingered || now - p->start_ms >= p->run_ms) {
        uv_stop(&p->loop);
        return;
    }
    CHECK_OK(ppdb_env_timer_arm(p->env, &p->tick, POLL_MS));
}

static void sigterm_cb(uv_signal_t *h, int signum)
{
    struct probe *p = h->data;
    p->stop = true;
}

static void usage(void)
{
    fprintf(stderr, "usage: mdns_probe --id HEX40 --key KEY --port P [--name N] [--expect K]\n"
                    "                  [--run-ms T] [--linger-ms L] [--no-announce]\n");
    exit(2);
}

static void parse_args(struct probe *p, int argc, char **argv)
{
    uint8_t key[PPDB_CLUSTER_KEY_LEN];
    bool have_key = false;
    p->run_ms = 10000;
    p->announce = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-announce") == 0) {
            p->announce = false;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--id") == 0 && strlen(v) == 2 * PPDB_NODE_ID_LEN)
            snprintf(p->id, sizeof(p->id), "%s", v);
        else if (strcmp(a, "--key") == 0 && ppdb_cluster_key_parse(v, key) == 0)
            have_key = true;
        else if (strcmp(a, "--port") == 0)
            p->port = (uint16_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--name") == 0)
            snprintf(p->name, sizeof(p->name), "%s", v);
        else if (strcmp(a, "--expect") == 0)
            p->expect = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--run-ms") == 0)
            p->run_ms = strtoull(v, NULL, 10);
        else if (strcmp(a, "--linger-ms") == 0)
            p->linger_ms = strtoull(v, NULL, 10);
        else
            usage();
    }
    if (!p->id[0] || !have_key || p->port == 0)
        usage();
    snprintf(p->ck, sizeof(p->ck), "%08x", (unsigned)ppdb_cluster_key_id(key));
}

static void announce(struct probe *p)
{
    struct ppdb_service svc;
    char v[16];
    memset(&svc, 0, sizeof(svc));
    snprintf(svc.name, sizeof(svc.name), "%s", p->name);
    ppdb_addr_ipv4(&svc.addr, 0, 0, 0, 0, p->port);
    snprintf(v, sizeof(v), "%d", PPDB_WIRE_VERSION);
    CHECK_OK(ppdb_service_txt_add(&svc, PPDB_SVC_TXT_ID, p->id));
    CHECK_OK(ppdb_service_txt_add(&svc, PPDB_SVC_TXT_VERSION, v));
    CHECK_OK(ppdb_service_txt_add(&svc, PPDB_SVC_TXT_KEY, p->ck));
    int rc = ppdb_env_announce(p->env, &svc);
    printf("announce rc=%s wall_ms=%lld\n", rc ? ppdb_errname(rc) : "0", wall_ms());
}

static void print_stats(struct probe *p)
{
    struct ppdb_discovery_stats st;
    ppdb_env_uv_discovery_stats(p->envu, &st);
    printf("stats published=%llu found=%llu filtered=%llu restarts=%llu removed=%llu "
           "collisions=%llu resolve_failures=%llu\n",
           (unsigned long long)st.published, (unsigned long long)st.found,
           (unsigned long long)st.filtered, (unsigned long long)st.client_restarts,
           (unsigned long long)st.removed, (unsigned long long)st.name_collisions,
           (unsigned long long)st.resolve_failures);
}

int main(int argc, char **argv)
{
    static struct probe p; /* large; one per process */
    struct ppdb_alloc_stats base;
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_args(&p, argc, argv);
    ppdb_alloc_stats(&base);
    CHECK_EQ(uv_loop_init(&p.loop), 0);
    struct ppdb_env_uv_options o;
    ppdb_env_uv_options_default(&o);
    o.discovery = true;
    snprintf(o.discovery_match, sizeof(o.discovery_match), "%s=%s", PPDB_SVC_TXT_KEY, p.ck);
    CHECK_OK(ppdb_env_uv_new(&p.loop, &o, NULL, &p.envu));
    p.env = ppdb_env_uv_env(p.envu);
    p.last_state = -1;
    print_state(&p);
    CHECK_EQ(uv_signal_init(&p.loop, &p.sigterm), 0);
    p.sigterm.data = &p;
    CHECK_EQ(uv_signal_start(&p.sigterm, sigterm_cb, SIGTERM), 0);
    if (p.announce)
        announce(&p);
    int rc = ppdb_env_browse(p.env, PPDB_SVC_TYPE, found_cb, &p);
    printf("browse rc=%s\n", rc ? ppdb_errname(rc) : "0");
    p.start_ms = ppdb_env_mono_ms(p.env);
    ppdb_timer_init(&p.tick, tick_cb, &p);
    CHECK_OK(ppdb_env_timer_arm(p.env, &p.tick, POLL_MS));
    uv_run(&p.loop, UV_RUN_DEFAULT);
    print_stats(&p);
    ppdb_env_timer_cancel(p.env, &p.tick);
    if (p.announce)
        ppdb_env_withdraw(p.env);
    uv_close((uv_handle_t *)&p.sigterm, NULL);
    ppdb_env_uv_free(p.envu);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&p.loop), 0);
    check_no_leaks(&base);
    printf("exit peers=%u expected=%u\n", peers_up(&p), p.expect);
    return p.expect == 0 || p.complete ? 0 : 1;
}
