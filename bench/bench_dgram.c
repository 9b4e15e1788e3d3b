/*
 * bench_dgram.c - what sealing costs: ns to seal and to open one 1,200-byte
 * datagram, and datagrams per second between two UDP sockets on 127.0.0.1
 * through the libuv env, for raw (no envelope, no crypto), null-cipher
 * (envelope, framing, replay checks) and sealed (XChaCha20-Poly1305)
 * datagrams.
 *
 * The throughput runs are closed-loop: the sender keeps at most WINDOW
 * datagrams in flight (so the receive buffer never overflows and the
 * figure is the cost of the per-datagram work, not of drops); a stall timer
 * writes off datagrams lost anyway and counts them.
 *
 * usage: bench_dgram [seconds per throughput run, default 2]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

#include "ppdb_wire.h"

#define PAYLOAD     1200 /* envelope bytes per datagram */
#define SEAL_ROUNDS 200000
#define OPEN_BATCH  20000
#define WINDOW      128
#define STALL_MS    20

enum mode { MODE_RAW, MODE_NULL, MODE_SEALED };
static const char *const mode_names[] = {"raw", "null-cipher", "sealed"};

struct side {
    struct ppdb_env_uv *uv;
    struct ppdb_env *env;
    struct ppdb_keyring kr;
    struct ppdb_wire_registry reg;
    struct ppdb_dgram d;
    struct ppdb_udp *udp;
    struct ppdb_addr addr;
};

struct run {
    uv_loop_t loop;
    enum mode mode;
    struct side tx, rx;
    uint8_t envelope[PAYLOAD];
    uint64_t sent, received, lost, errors, last_received;
    uint64_t start_ms, duration_ms;
    struct ppdb_timer stall;
    bool done;
};

static uint8_t cluster_key[PPDB_CLUSTER_KEY_LEN];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_dgram: %s: %s\n", what, ppdb_strerror(rc));
    exit(1);
}

/* A PING envelope whose payload makes it exactly PAYLOAD bytes. */
static size_t make_envelope(const struct ppdb_node_id *self, uint8_t *out)
{
    struct ppdb_buf b;
    ppdb_buf_init(&b);
    struct ppdb_envelope_hdr h = {PPDB_WIRE_VERSION, PPDB_MSG_PING, *self, 1};
    for (size_t payload = PAYLOAD - 40;; payload++) {
        static uint8_t zeros[PAYLOAD];
        struct ppdb_mpw w;
        ppdb_buf_reset(&b);
        ppdb_mpw_init(&w, &b);
        ppdb_envelope_begin(&w, &h);
        ppdb_mpw_map(&w, 1);
        ppdb_mpw_uint(&w, 0);
        ppdb_mpw_bin(&w, zeros, payload);
        if (ppdb_mpw_error(&w) || b.len >= PAYLOAD)
            break;
    }
    size_t n = PPDB_MIN(b.len, (size_t)PAYLOAD);
    memcpy(out, b.data, n);
    ppdb_buf_deinit(&b);
    return n;
}

static void side_init(struct side *s, uv_loop_t *loop, bool null_cipher, ppdb_udp_recv_cb cb,
                      void *data)
{
    struct ppdb_dgram_options o;
    struct ppdb_node_id id;
    uint32_t key_id;
    int rc = ppdb_env_uv_new(loop, NULL, NULL, &s->uv);
    if (rc)
        die("env", rc);
    s->env = ppdb_env_uv_env(s->uv);
    ppdb_keyring_init(&s->kr);
    ppdb_keyring_install(&s->kr, cluster_key, &key_id);
    ppdb_keyring_use(&s->kr, key_id);
    ppdb_wire_registry_init(&s->reg);
    ppdb_dgram_options_default(&o);
    o.null_cipher = null_cipher;
    ppdb_env_random(s->env, id.b, sizeof(id.b));
    if ((rc = ppdb_dgram_init(&s->d, s->env, &s->kr, &s->reg, &id, &o)) != 0)
        die("dgram", rc);
    struct ppdb_addr bind;
    ppdb_addr_ipv4(&bind, 127, 0, 0, 1, 0);
    s->udp = NULL;
    if (!cb)
        return; /* CPU-only runs need no socket */
    if ((rc = ppdb_env_udp_open(s->env, &bind, cb, data, &s->udp)) != 0)
        die("udp_open", rc);
    ppdb_env_udp_local_addr(s->env, s->udp, &s->addr);
}

static void side_deinit(struct side *s)
{
    if (s->udp)
        ppdb_env_udp_close(s->env, s->udp);
    ppdb_dgram_deinit(&s->d);
    ppdb_keyring_deinit(&s->kr);
    ppdb_env_uv_free(s->uv);
}

/* ------------------------------------------------------------ throughput */

static void send_one(struct run *r)
{
    uint8_t pkt[PPDB_DGRAM_MAX];
    size_t len = PAYLOAD;
    const uint8_t *p = r->envelope;
    if (r->mode != MODE_RAW) {
        int rc = ppdb_dgram_seal(&r->tx.d, r->envelope, PAYLOAD, pkt, sizeof(pkt), &len);
        if (rc)
            die("seal", rc);
        p = pkt;
    }
    if (ppdb_env_udp_send(r->tx.env, r->tx.udp, &r->rx.addr, p, len) != 0)
        r->errors++;
    r->sent++;
}

static void refill(struct run *r)
{
    while (!r->done && r->sent - r->received - r->lost < WINDOW)
        send_one(r);
}

static void rx_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from, const uint8_t *buf,
                  size_t len)
{
    struct run *r = data;
    if (r->mode != MODE_RAW) {
        struct ppdb_dgram_msg m;
        if (ppdb_dgram_open(&r->rx.d, buf, len, &m) != 0)
            return;
        ppdb_dgram_msg_deinit(&m);
    } else if (len != PAYLOAD) {
        return;
    }
    r->received++;
    if (ppdb_env_mono_ms(r->rx.env) - r->start_ms >= r->duration_ms) {
        r->done = true;
        uv_stop(&r->loop);
        return;
    }
    refill(r);
}

static void stall_cb(struct ppdb_timer *t)
{
    struct run *r = t->data;
    if (r->received == r->last_received) { /* nothing arrived: write off */
        r->lost = r->sent - r->received;
        refill(r);
    }
    r->last_received = r->received;
    ppdb_env_timer_arm(r->rx.env, t, STALL_MS);
}

static double run_throughput(enum mode mode, double seconds)
{
    struct run *r = ppdb_calloc(1, sizeof(*r));
    uv_loop_init(&r->loop);
    r->mode = mode;
    r->duration_ms = (uint64_t)(seconds * 1000);
    side_init(&r->rx, &r->loop, mode == MODE_NULL, rx_cb, r);
    side_init(&r->tx, &r->loop, mode == MODE_NULL, rx_cb, r);
    make_envelope(&r->tx.d.self, r->envelope);
    ppdb_timer_init(&r->stall, stall_cb, r);
    ppdb_env_timer_arm(r->rx.env, &r->stall, STALL_MS);
    uint64_t t0 = now_ns();
    r->start_ms = ppdb_env_mono_ms(r->rx.env);
    refill(r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    double secs = (double)(now_ns() - t0) / 1e9;
    double rate = (double)r->received / secs;
    printf("%-12s %10.0f datagrams/s  (%llu received, %llu written off, %llu send errors, "
           "%llu rejected)\n",
           mode_names[mode], rate, (unsigned long long)r->received, (unsigned long long)r->lost,
           (unsigned long long)r->errors,
           (unsigned long long)ppdb_dgram_stats_rejected(&r->rx.d.stats));
    ppdb_env_timer_cancel(r->rx.env, &r->stall);
    side_deinit(&r->tx);
    side_deinit(&r->rx);
    uv_loop_close(&r->loop);
    ppdb_free(r);
    return rate;
}

/* --------------------------------------------------------------- per call */

static void run_cpu(bool null_cipher, double *seal_ns, double *open_ns)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct side tx, rx;
    side_init(&tx, &loop, null_cipher, NULL, NULL);
    side_init(&rx, &loop, null_cipher, NULL, NULL);
    uint8_t env_bytes[PAYLOAD];
    size_t n = make_envelope(&tx.d.self, env_bytes);
    uint8_t pkt[PPDB_DGRAM_MAX];
    size_t len;
    uint64_t t0 = now_ns();
    for (int i = 0; i < SEAL_ROUNDS; i++)
        ppdb_dgram_seal(&tx.d, env_bytes, n, pkt, sizeof(pkt), &len);
    *seal_ns = (double)(now_ns() - t0) / SEAL_ROUNDS;

    uint8_t(*batch)[PPDB_DGRAM_MAX] = ppdb_malloc(sizeof(*batch) * OPEN_BATCH);
    for (int i = 0; i < OPEN_BATCH; i++)
        ppdb_dgram_seal(&tx.d, env_bytes, n, batch[i], PPDB_DGRAM_MAX, &len);
    struct ppdb_dgram_msg *m = ppdb_malloc(sizeof(*m));
    t0 = now_ns();
    for (int i = 0; i < OPEN_BATCH; i++) {
        int rc = ppdb_dgram_open(&rx.d, batch[i], len, m);
        if (rc)
            die("open", rc);
        ppdb_dgram_msg_deinit(m);
    }
    *open_ns = (double)(now_ns() - t0) / OPEN_BATCH;
    ppdb_free(m);
    ppdb_free(batch);
    side_deinit(&tx);
    side_deinit(&rx);
    uv_loop_close(&loop);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    if (seconds <= 0 || seconds > 600)
        seconds = 2.0;
    if (ppdb_wire_init() != 0)
        die("sodium", PPDB_EIO);
    struct ppdb_env_uv *tmp;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ppdb_env_uv_new(&loop, NULL, NULL, &tmp);
    ppdb_cluster_key_generate(ppdb_env_uv_env(tmp), cluster_key);
    ppdb_env_uv_free(tmp);
    uv_loop_close(&loop);

    double seal_ns, open_ns, nseal_ns, nopen_ns;
    run_cpu(false, &seal_ns, &open_ns);
    run_cpu(true, &nseal_ns, &nopen_ns);
    printf("datagram of %d envelope bytes (%d on the wire)\n", PAYLOAD,
           PAYLOAD + PPDB_DGRAM_OVERHEAD);
    printf("seal   sealed %8.0f ns   null-cipher %8.0f ns\n", seal_ns, nseal_ns);
    printf("open   sealed %8.0f ns   null-cipher %8.0f ns  (incl. replay check and decode)\n",
           open_ns, nopen_ns);
    double raw = run_throughput(MODE_RAW, seconds);
    double nul = run_throughput(MODE_NULL, seconds);
    double sealed = run_throughput(MODE_SEALED, seconds);
    printf("ratio  sealed/raw %.2f   null-cipher/raw %.2f   sealed/null-cipher %.2f\n",
           sealed / raw, nul / raw, sealed / nul);
    return 0;
}
