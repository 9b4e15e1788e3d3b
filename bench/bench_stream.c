/*
 * bench_stream.c - throughput of encrypted streams between two processes
 * over loopback: messages/s and MB/s, encrypted against the null cipher.
 *
 * The parent forks a receiver (a node endpoint on 127.0.0.1:0), connects
 * as a sender and floods one-way messages with back-pressure (it sends
 * until refused and resumes on the writable callback), then sends one
 * request: its reply, on the same ordered connection, proves every message
 * before it was received and decoded. The clock runs from the first send
 * to that reply. Each configuration uses a fresh receiver process.
 *
 * usage: bench_stream [--quick]
 * Prints the single-thread seal rate of each cipher (the ceiling of any
 * encrypted run), one line per run, and the ratios encrypted / plaintext.
 */
#include <signal.h>
#include <stdio.h>
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
};

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
    s.t0_ns = uv_hrtime();
    flood(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    struct result r = {0};
    r.secs = (double)(s.t1_ns - s.t0_ns) / 1e9;
    r.msgs_per_s = (double)count / r.secs;
    r.mb_per_s = (double)count * (double)msg_size / r.secs / 1e6;
    side_close(&s);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
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

static const char *cipher_name(bool null_cipher, uint32_t ciphers)
{
    if (null_cipher)
        return "null (plaintext)";
    return (ciphers & PPDB_NOISE_AESGCM) ? "AES-256-GCM" : "ChaCha20-Poly1305";
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (ppdb_wire_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    ppdb_logger_default()->level = PPDB_LOG_WARN;
    size_t sizes[2] = {100, 64 << 10};
    uint64_t counts[2] = {quick ? 200000 : 2000000, quick ? 4000 : 30000};
    uint32_t local = ppdb_stream_ciphers_local();
    printf("seal only, 1 MiB frames, one thread: ChaCha20-Poly1305 %.0f MB/s", seal_mb_per_s(1));
    if (local & PPDB_NOISE_AESGCM)
        printf(", AES-256-GCM %.0f MB/s", seal_mb_per_s(PPDB_NOISE_AESGCM));
    printf(", null %.0f MB/s\n", seal_mb_per_s(PPDB_NOISE_NULL));
    for (int i = 0; i < 2; i++) {
        struct result plain = run(sizes[i], counts[i], true, 0);
        printf("%6zu B x %-8llu %-18s %10.0f msg/s %9.1f MB/s\n", sizes[i],
               (unsigned long long)counts[i], cipher_name(true, 0), plain.msgs_per_s,
               plain.mb_per_s);
        uint32_t variants[2] = {PPDB_NOISE_CHACHAPOLY, local};
        for (int v = 0; v < ((local & PPDB_NOISE_AESGCM) ? 2 : 1); v++) {
            struct result enc = run(sizes[i], counts[i], false, variants[v]);
            printf("%6zu B x %-8llu %-18s %10.0f msg/s %9.1f MB/s  ratio %.2f\n", sizes[i],
                   (unsigned long long)counts[i], cipher_name(false, variants[v]), enc.msgs_per_s,
                   enc.mb_per_s, enc.msgs_per_s / plain.msgs_per_s);
        }
        fflush(stdout);
    }
    return 0;
}
