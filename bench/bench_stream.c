/*
 * bench_stream.c - throughput of encrypted streams between two processes
 * over loopback: messages/s and MB/s, encrypted against the null cipher.
 *
 * The parent forks a receiver (a node endpoint on 127.0.0.1:0), connects
 * as a sender and floods one-way messages with back-pressure (it sends
 * until refused and resumes on the writable callback), then sends one
 * request: its reply, on the same ordered connection, proves every message
 * before it was received and decoded. The clock runs from the first send
 * (after a warm-up round trip: connect and handshake are not timed) to
 * that reply. Each configuration uses a fresh receiver process. CPU time
 * (user + system) of each process per payload byte is printed too: unlike
 * wall-clock MB/s it barely moves when other work shares the CPUs, and
 * 1000 / max(tx, rx) is the MB/s the pair reaches with a core each.
 *
 * usage: bench_stream [--quick] [--size B --count N --cipher null|chacha|aes [--repeat R]]
 * (environment BENCH_MAX_FRAME=bytes: max_frame of both ends, default 1 MiB)
 * Prints the single-thread seal and open rates of each cipher (the ceiling
 * of any encrypted run), one line per run, and the ratios encrypted / plaintext.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <sodium.h>

#include "ppdb_stream.h"

#define BENCH_MSG_BLOB 0x9E /* admin range: {0: bin} one-way, benchmark only */

static const struct ppdb_wire_field blob_fields[] = {
    {.key = 0, .kind = PPDB_WK_BIN, .required = true, .max_len = 1u << 20},
};
static const struct ppdb_wire_schema blob_schema = {BENCH_MSG_BLOB, "bench.blob", blob_fields, 1};

struct side {
    uv_loop_t loop;
    struct ppdb_env_uv *envu;
    struct ppdb_env *env;
    struct ppdb_identity idn;
    struct ppdb_keyring kr;
    struct ppdb_wire_registry reg;
    struct ppdb_stream_ep ep;
    struct ppdb_addr peer;
    struct ppdb_buf body;
    uint64_t total, sent, received;
    uint64_t t0_ns, t1_ns;
    bool done;
};

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_stream: %s: %s\n", what, ppdb_strerror(rc));
    exit(1);
}

static void on_msg(void *data, const struct ppdb_stream_peer *peer, const struct ppdb_envelope *m)
{
    struct side *s = data;
    s->received++;
    if (m->hdr.request_id != 0)
        (void)ppdb_stream_reply(&s->ep, peer->conn_id, m->hdr.request_id, PPDB_MSG_PONG, NULL, 0);
}

static void flood(struct side *s);
static void on_writable(void *data, const struct ppdb_addr *addr)
{
    flood(data);
}

static void side_open(struct side *s, const uint8_t key[32], bool null_cipher, uint32_t ciphers)
{
    uint32_t id;
    struct ppdb_stream_options o;
    int rc;
    memset(s, 0, sizeof(*s));
    uv_loop_init(&s->loop);
    if ((rc = ppdb_env_uv_new(&s->loop, NULL, NULL, &s->envu)) < 0)
        die("env", rc);
    s->env = ppdb_env_uv_env(s->envu);
    if ((rc = ppdb_identity_generate(&s->idn, s->env)) < 0)
        die("identity", rc);
    ppdb_keyring_init(&s->kr);
    (void)ppdb_keyring_install(&s->kr, key, &id);
    (void)ppdb_keyring_use(&s->kr, id);
    ppdb_wire_registry_init(&s->reg);
    (void)ppdb_wire_registry_add(&s->reg, &blob_schema);
    ppdb_stream_options_default(&o);
    o.null_cipher = null_cipher;
    o.ciphers = null_cipher ? 0 : ciphers;
    o.request_timeout_ms = 600000;
    if (getenv("BENCH_MAX_FRAME"))
        o.max_frame = (uint32_t)strtoul(getenv("BENCH_MAX_FRAME"), NULL, 10);
    if ((rc = ppdb_stream_ep_init(&s->ep, s->env, &s->idn, &s->kr, &s->reg, &o, on_msg, on_writable,
                                  s)) < 0)
        die("endpoint", rc);
}

static void side_close(struct side *s)
{
    ppdb_stream_ep_close(&s->ep);
    while (!ppdb_stream_ep_idle(&s->ep))
        uv_run(&s->loop, UV_RUN_ONCE);
    ppdb_stream_ep_deinit(&s->ep);
    ppdb_env_uv_free(s->envu);
    uv_loop_close(&s->loop);
    ppdb_buf_deinit(&s->body);
}

static void receiver(int fd, const uint8_t key[32], bool null_cipher, uint32_t ciphers)
{
    struct side s;
    struct ppdb_addr bind, bound;
    side_open(&s, key, null_cipher, ciphers);
    ppdb_addr_ipv4(&bind, 127, 0, 0, 1, 0);
    int rc = ppdb_stream_ep_listen(&s.ep, &bind, &bound);
    if (rc < 0)
        die("listen", rc);
    if (write(fd, &bound.port, sizeof(bound.port)) != sizeof(bound.port))
        exit(1);
    close(fd);
    alarm(600);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    exit(0);
}

/* Warm-up: connect, handshake and one round trip happen before the clock. */
static void warm_cb(void *data, int status, const struct ppdb_envelope *reply)
{
    struct side *s = data;
    if (status < 0)
        die("warm-up request", status);
    uv_stop(&s->loop);
}

static void reply_cb(void *data, int status, const struct ppdb_envelope *reply)
{
    struct side *s = data;
    if (status < 0)
        die("final request", status);
    s->t1_ns = uv_hrtime();
    s->done = true;
    uv_stop(&s->loop);
}

static void flood(struct side *s)
{
    while (s->sent < s->total) {
        int rc = ppdb_stream_send(&s->ep, &s->peer, BENCH_MSG_BLOB, s->body.data, s->body.len);
        if (rc == PPDB_EAGAIN)
            return;
        if (rc < 0)
            die("send", rc);
        s->sent++;
    }
    if (s->sent == s->total) {
        s->sent++; /* once */
        int rc =
            ppdb_stream_request(&s->ep, &s->peer, PPDB_MSG_PING, NULL, 0, 0, reply_cb, s, NULL);
        if (rc < 0)
            die("request", rc);
    }
}

struct result {
    double msgs_per_s, mb_per_s, secs;
    double tx_ns_per_b, rx_ns_per_b; /* CPU time (user + sys) per payload byte */
    double frame_kib;                /* mean size of the frames sent */
};

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static struct result run(size_t msg_size, uint64_t count, bool null_cipher, uint32_t ciphers)
{
    uint8_t key[32];
    int fds[2];
    uint16_t port;
    randombytes_buf(key, sizeof(key));
    if (pipe(fds) < 0)
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        receiver(fds[1], key, null_cipher, ciphers);
    }
    close(fds[1]);
    if (read(fds[0], &port, sizeof(port)) != sizeof(port))
        die("receiver start", PPDB_EIO);
    close(fds[0]);
    struct side s;
    side_open(&s, key, null_cipher, ciphers);
    ppdb_addr_ipv4(&s.peer, 127, 0, 0, 1, port);
    uint8_t *payload = calloc(1, msg_size);
    struct ppdb_mpw w;
    ppdb_buf_init(&s.body);
    ppdb_mpw_init(&w, &s.body);
    ppdb_mpw_map(&w, 1);
    ppdb_mpw_uint(&w, 0);
    ppdb_mpw_bin(&w, payload, msg_size);
    free(payload);
    s.total = count;
    int rc = ppdb_stream_request(&s.ep, &s.peer, PPDB_MSG_PING, NULL, 0, 0, warm_cb, &s, NULL);
    if (rc < 0)
        die("warm-up request", rc);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    struct ppdb_stream_stats st0;
    ppdb_stream_ep_stats(&s.ep, &st0);
    double tx0 = cpu_s(RUSAGE_SELF), rx0 = cpu_s(RUSAGE_CHILDREN);
    s.t0_ns = uv_hrtime();
    flood(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    struct result r = {0};
    r.secs = (double)(s.t1_ns - s.t0_ns) / 1e9;
    r.msgs_per_s = (double)count / r.secs;
    r.mb_per_s = (double)count * (double)msg_size / r.secs / 1e6;
    double bytes = (double)count * (double)msg_size;
    r.tx_ns_per_b = (cpu_s(RUSAGE_SELF) - tx0) * 1e9 / bytes;
    struct ppdb_stream_stats st1;
    ppdb_stream_ep_stats(&s.ep, &st1);
    uint64_t frames = st1.frames_out - st0.frames_out;
    r.frame_kib = frames ? (double)(st1.bytes_out - st0.bytes_out) / (double)frames / 1024 : 0;
    side_close(&s);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    r.rx_ns_per_b = (cpu_s(RUSAGE_CHILDREN) - rx0) * 1e9 / bytes;
    return r;
}

/* The ceiling: sealing 1 MiB frames in one thread, no I/O. */
static double seal_mb_per_s(uint8_t cipher)
{
    static uint8_t buf[PPDB_FRAME_DEFAULT_MAX];
    struct ppdb_frame_tx tx;
    uint8_t k[32] = {1};
    size_t n = sizeof(buf) - PPDB_FRAME_OVERHEAD;
    memset(&tx, 0, sizeof(tx));
    ppdb_noise_cs_init(&tx.cs, cipher);
    ppdb_noise_cs_set_key(&tx.cs, k);
    uint64_t t0 = uv_hrtime();
    int frames = 0;
    while (uv_hrtime() - t0 < 300000000ull) {
        (void)ppdb_frame_seal(&tx, buf, n);
        frames++;
    }
    return (double)frames * (double)n / ((double)(uv_hrtime() - t0) / 1e9) / 1e6;
}

static int count_cb(void *data, const uint8_t *msg, size_t n, bool reply)
{
    return 0;
}

/* The other half of the ceiling: opening one sealed 1 MiB frame over and
 * over (each time with a copy of the fresh receive state). */
static double open_mb_per_s(uint8_t cipher)
{
    static uint8_t buf[PPDB_FRAME_DEFAULT_MAX], out[PPDB_FRAME_DEFAULT_MAX];
    struct ppdb_frame_tx tx;
    struct ppdb_frame_rx rx0, rx;
    uint8_t k[32] = {1};
    size_t n = sizeof(buf) - PPDB_FRAME_OVERHEAD;
    memset(&tx, 0, sizeof(tx));
    memset(&rx0, 0, sizeof(rx0));
    ppdb_noise_cs_init(&tx.cs, cipher);
    ppdb_noise_cs_set_key(&tx.cs, k);
    ppdb_noise_cs_init(&rx0.cs, cipher);
    ppdb_noise_cs_set_key(&rx0.cs, k);
    rx0.max_frame = PPDB_FRAME_DEFAULT_MAX;
    ppdb_store_u32be(buf + PPDB_FRAME_HDR_LEN, (uint32_t)(n - PPDB_FRAME_MSG_HDR));
    size_t len = ppdb_frame_seal(&tx, buf, n);
    uint64_t t0 = uv_hrtime();
    int frames = 0;
    while (uv_hrtime() - t0 < 300000000ull) {
        rx = rx0;
        if (ppdb_frame_open_from(&rx, buf, len, out, count_cb, NULL) != 0)
            die("open", PPDB_EAUTH);
        frames++;
    }
    return (double)frames * (double)n / ((double)(uv_hrtime() - t0) / 1e9) / 1e6;
}

static const char *cipher_name(bool null_cipher, uint32_t ciphers)
{
    if (null_cipher)
        return "null (plaintext)";
    return (ciphers & PPDB_NOISE_AESGCM) ? "AES-256-GCM" : "ChaCha20-Poly1305";
}

static void print_run(size_t size, uint64_t count, bool null_cipher, uint32_t ciphers,
                      const struct result *r, double plain_msgs_per_s)
{
    printf("%6zu B x %-8llu %-18s %10.0f msg/s %9.1f MB/s  frames %4.0f KiB  cpu ns/B tx %.3f "
           "rx %.3f",
           size, (unsigned long long)count, cipher_name(null_cipher, ciphers), r->msgs_per_s,
           r->mb_per_s, r->frame_kib, r->tx_ns_per_b, r->rx_ns_per_b);
    if (plain_msgs_per_s > 0)
        printf("  ratio %.2f", r->msgs_per_s / plain_msgs_per_s);
    printf("\n");
    fflush(stdout);
}

/* One configuration only: --size BYTES --count N --cipher null|chacha|aes. */
static int run_one(size_t size, uint64_t count, const char *cipher, int repeat)
{
    bool null_cipher = strcmp(cipher, "null") == 0;
    uint32_t ciphers = strcmp(cipher, "aes") == 0 ? PPDB_NOISE_AESGCM : PPDB_NOISE_CHACHAPOLY;
    if (!null_cipher && strcmp(cipher, "aes") != 0 && strcmp(cipher, "chacha") != 0)
        return 2;
    if (ciphers == PPDB_NOISE_AESGCM && !(ppdb_stream_ciphers_local() & PPDB_NOISE_AESGCM))
        return 2;
    for (int i = 0; i < repeat; i++) {
        struct result r = run(size, count, null_cipher, ciphers);
        print_run(size, count, null_cipher, ciphers, &r, 0);
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool quick = false;
    size_t one_size = 0;
    uint64_t one_count = 0;
    const char *one_cipher = NULL;
    int repeat = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            one_size = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            one_count = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cipher") == 0 && i + 1 < argc)
            one_cipher = argv[++i];
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_stream [--quick] [--size B --count N "
                            "--cipher null|chacha|aes [--repeat R]]\n");
            return 2;
        }
    }
    if (ppdb_wire_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    ppdb_logger_default()->level = PPDB_LOG_WARN;
    if (one_cipher)
        return run_one(one_size ? one_size : 64 << 10, one_count ? one_count : 10000, one_cipher,
                       repeat > 0 ? repeat : 1);
    size_t sizes[2] = {100, 64 << 10};
    uint64_t counts[2] = {quick ? 200000 : 2000000, quick ? 4000 : 30000};
    uint32_t local = ppdb_stream_ciphers_local();
    printf("seal only, 1 MiB frames, one thread: ChaCha20-Poly1305 %.0f MB/s", seal_mb_per_s(1));
    if (local & PPDB_NOISE_AESGCM)
        printf(", AES-256-GCM %.0f MB/s", seal_mb_per_s(PPDB_NOISE_AESGCM));
    printf(", null %.0f MB/s\n", seal_mb_per_s(PPDB_NOISE_NULL));
    printf("open only, 1 MiB frames, one thread: ChaCha20-Poly1305 %.0f MB/s", open_mb_per_s(1));
    if (local & PPDB_NOISE_AESGCM)
        printf(", AES-256-GCM %.0f MB/s", open_mb_per_s(PPDB_NOISE_AESGCM));
    printf(", null %.0f MB/s\n", open_mb_per_s(PPDB_NOISE_NULL));
    for (int i = 0; i < 2; i++) {
        struct result plain = run(sizes[i], counts[i], true, 0);
        print_run(sizes[i], counts[i], true, 0, &plain, 0);
        uint32_t variants[2] = {PPDB_NOISE_CHACHAPOLY, local};
        for (int v = 0; v < ((local & PPDB_NOISE_AESGCM) ? 2 : 1); v++) {
            struct result enc = run(sizes[i], counts[i], false, variants[v]);
            print_run(sizes[i], counts[i], false, variants[v], &enc, plain.msgs_per_s);
        }
    }
    return 0;
}
