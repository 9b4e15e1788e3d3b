/*
 * test_pingpong_uv.c - the ping/pong state machine between two real
 * processes on loopback, over the libuv env.
 *
 * The test re-executes itself with --serve to get a responder process, which
 * binds 127.0.0.1:0 and reports its port through a pipe. The parent pings it
 * many times (all must succeed), then SIGKILLs it and pings again: every
 * ping must now end in PPDB_ETIMEDOUT after exactly max_attempts sends, which
 * shows retries and timeouts run on real time through the env. A guard timer
 * fails the test if anything hangs.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "pingpong.h"

#define PINGS 300
#define GUARD_MS 30000

struct side {
    uv_loop_t *loop;
    struct ppdb_env_uv *envu;
    struct ppdb_env *env;
    struct ppdb_udp *udp;
    struct ppdb_pingpong pp;
    struct ppdb_timer guard;
    struct ppdb_addr peer;
    int phase; /* 1: pinging a live peer, 2: pinging a dead one */
    int done, ok, timed_out, next;
    uint64_t rtt_max_ms;
};

static void recv_cb(void *data, struct ppdb_udp *u, const struct ppdb_addr *from,
                    const uint8_t *buf, size_t len)
{
    struct side *s = data;
    (void)ppdb_pingpong_on_message(&s->pp, from, buf, len);
}

static void open_side(struct side *s, uv_loop_t *loop, ppdb_pingpong_done_cb cb)
{
    struct ppdb_addr bind;
    struct ppdb_pingpong_options o;
    s->loop = loop;
    CHECK_OK(ppdb_env_uv_new(loop, NULL, NULL, &s->envu));
    s->env = ppdb_env_uv_env(s->envu);
    CHECK_OK(ppdb_addr_parse("127.0.0.1:0", &bind));
    CHECK_OK(ppdb_env_udp_open(s->env, &bind, recv_cb, s, &s->udp));
    ppdb_pingpong_options_default(&o);
    o.timeout_ms = 200;
    o.max_attempts = 3;
    o.max_inflight = 16;
    CHECK_OK(ppdb_pingpong_init(&s->pp, s->env, s->udp, &o, cb, s));
}

static int serve(void)
{
    uv_loop_t loop;
    struct side s = {0};
    struct ppdb_addr me;
    char text[PPDB_ADDR_STRLEN];
    uv_loop_init(&loop);
    open_side(&s, &loop, NULL);
    CHECK_OK(ppdb_env_udp_local_addr(s.env, s.udp, &me));
    printf("%u\n", me.port);
    fflush(stdout);
    fprintf(stderr, "responder on %s\n", ppdb_addr_format(&me, text));
    alarm(GUARD_MS / 1000); /* never outlive the test */
    uv_run(&loop, UV_RUN_DEFAULT);
    return 0;
}

static void fire_more(struct side *s)
{
    while (s->next < PINGS && ppdb_pingpong_ping(&s->pp, &s->peer) == 0)
        s->next++;
}

static void done_cb(void *data, const struct ppdb_addr *to, int status, uint64_t rtt_ms,
                    uint32_t attempts)
{
    struct side *s = data;
    s->done++;
    if (s->phase == 1) {
        CHECK_OK(status);
        s->ok++;
        s->rtt_max_ms = PPDB_MAX(s->rtt_max_ms, rtt_ms);
        fire_more(s);
    } else {
        CHECK_ERR(status, PPDB_ETIMEDOUT);
        CHECK_EQ(attempts, 3);
        s->timed_out++;
    }
    if ((s->phase == 1 && s->done == PINGS) || (s->phase == 2 && s->done == 4)) {
        ppdb_env_timer_cancel(s->env, &s->guard);
        uv_stop(s->loop);
    }
}

static void guard_cb(struct ppdb_timer *t)
{
    struct side *s = t->data;
    CHECK_FAIL_("guard timer fired in phase %d after %d of the pings", s->phase, s->done);
}

static pid_t spawn_responder(uint16_t *port_out)
{
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        execl("/proc/self/exe", "test_pingpong_uv", "--serve", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    unsigned port = 0;
    CHECK_EQ(fscanf(f, "%u", &port), 1);
    fclose(f);
    *port_out = (uint16_t)port;
    return pid;
}

static void run_phase(struct side *s, int phase, int pings)
{
    s->phase = phase;
    s->done = 0;
    ppdb_timer_init(&s->guard, guard_cb, s);
    CHECK_OK(ppdb_env_timer_arm(s->env, &s->guard, GUARD_MS));
    if (phase == 1)
        fire_more(s);
    else
        for (int i = 0; i < pings; i++)
            CHECK_OK(ppdb_pingpong_ping(&s->pp, &s->peer));
    uv_run(s->loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--serve") == 0)
        return serve();
    struct ppdb_alloc_stats base;
    ppdb_alloc_stats(&base);
    uint16_t port;
    pid_t child = spawn_responder(&port);
    uv_loop_t loop;
    struct side s = {0};
    uv_loop_init(&loop);
    open_side(&s, &loop, done_cb);
    ppdb_addr_ipv4(&s.peer, 127, 0, 0, 1, port);

    run_phase(&s, 1, PINGS);
    CHECK_EQ(s.ok, PINGS);
    fprintf(stderr, "phase 1: %d/%d pings answered, max rtt %llu ms, retries %llu\n", s.ok,
            PINGS, (unsigned long long)s.rtt_max_ms, (unsigned long long)s.pp.stats.retries);

    kill(child, SIGKILL);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    uint64_t sent_before = s.pp.stats.pings_sent, retries_before = s.pp.stats.retries;
    run_phase(&s, 2, 4);
    CHECK_EQ(s.timed_out, 4);
    CHECK_EQ(s.pp.stats.pings_sent - sent_before, 12); /* 4 pings x 3 attempts */
    CHECK_EQ(s.pp.stats.retries - retries_before, 8);
    CHECK_EQ(s.pp.stats.timeouts, 4);
    fprintf(stderr, "phase 2: %d pings to a dead peer timed out after 3 attempts each\n",
            s.timed_out);

    ppdb_pingpong_deinit(&s.pp);
    ppdb_env_udp_close(s.env, s.udp);
    ppdb_env_uv_free(s.envu);
    uv_loop_close(&loop);
    check_no_leaks(&base);
    printf("pingpong over libuv between two processes: ok\n");
    return 0;
}
