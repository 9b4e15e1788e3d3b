/*
 * test_fs_posix.c - the POSIX ppdb_fs: the shared contract suite in a
 * fresh mkdtemp directory, then what only a real file system shows: locks
 * held against another process, close-on-exec descriptors, errno mapping
 * (ENOSPC from /dev/full), and logs (PPDB_FS_LOG): space reserved ahead,
 * what a process killed while appending leaves (every appended byte, then
 * only zeros), a full disk (a small tmpfs), and the contract again on ramfs
 * where logs are not mapped; the last two in a private mount namespace of
 * a child, skipped without the privilege. The directory is removed at the
 * end.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fs_internal.h"
#include "test_fs_contract.h"

static char root[64];

static int make_posix(struct ppdb_fs **fs_out)
{
    return ppdb_fs_posix_new(fs_out);
}

/* Runs `lock` in a child process; returns the child's PPDB code. */
static int lock_in_child(const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct ppdb_fs *fs;
        struct ppdb_file *l;
        if (ppdb_fs_posix_new(&fs))
            _exit(100);
        int rc = fs->ops->lock(fs, path, &l);
        if (rc == 0)
            fs->ops->unlock(fs, l);
        _exit(-rc); /* PPDB codes are small negatives */
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    return -WEXITSTATUS(status);
}

static void t_cross_process_lock(void)
{
    struct ppdb_alloc_stats base;
    struct ppdb_fs *fs;
    struct ppdb_file *l;
    char p[600];
    ppdb_alloc_stats(&base);
    CHECK_OK(ppdb_fs_posix_new(&fs));
    fs_path(p, sizeof(p), root, "LOCK");
    CHECK_EQ(lock_in_child(p), 0); /* nobody holds it yet */
    CHECK_OK(fs->ops->lock(fs, p, &l));
    CHECK_ERR(lock_in_child(p), PPDB_EBUSY);
    CHECK_OK(fs->ops->unlock(fs, l));
    CHECK_EQ(lock_in_child(p), 0);
    ppdb_fs_destroy(fs);
    check_no_leaks(&base);
}

/* Every descriptor open on `path` in this process has FD_CLOEXEC. */
static int cloexec_fds_on(const char *path)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        check_skip("no /proc/self/fd");
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char link[300], target[700];
        if (de->d_name[0] == '.')
            continue;
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, path) != 0)
            continue;
        int fl = fcntl(atoi(de->d_name), F_GETFD);
        CHECK(fl >= 0 && (fl & FD_CLOEXEC));
        found++;
    }
    closedir(d);
    return found;
}

static void t_cloexec_and_errors(void)
{
    struct ppdb_alloc_stats base;
    struct ppdb_fs *fs;
    struct ppdb_file *f, *l;
    char p[600], q[600];
    ppdb_alloc_stats(&base);
    CHECK_OK(ppdb_fs_posix_new(&fs));
    fs_path(p, sizeof(p), root, "cloexec");
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_APPEND | PPDB_FS_CREATE, &f));
    CHECK_OK(fs->ops->lock(fs, fs_path(q, sizeof(q), root, "LOCK.cloexec"), &l));
    CHECK_EQ(cloexec_fds_on(p), 1);
    CHECK_EQ(cloexec_fds_on(q), 1);
    CHECK_OK(fs->ops->unlock(fs, l));
    CHECK_OK(fs->ops->close(fs, f));
    /* A full device reports ENOSPC, not a generic error. */
    if (access("/dev/full", W_OK) == 0) {
        CHECK_OK(fs->ops->open(fs, "/dev/full", PPDB_FS_APPEND, &f));
        CHECK_ERR(fs->ops->append(fs, f, "x", 1), PPDB_ENOSPC);
        CHECK_OK(fs->ops->close(fs, f));
    }
    ppdb_fs_destroy(fs);
    check_no_leaks(&base);
}

/* ---------------------------------------------------------------- logs */

static bool log_reserved; /* the file system here took the log's reservation */

/* The file's real size runs ahead of the log while it is open. */
static void t_log_reserve(void)
{
    struct ppdb_alloc_stats base;
    struct ppdb_fs *fs;
    struct ppdb_file *w;
    char p[600];
    uint64_t size, real;
    ppdb_alloc_stats(&base);
    CHECK_OK(ppdb_fs_posix_new(&fs));
    fs_path(p, sizeof(p), root, "reserve.log");
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_LOG, &w));
    CHECK_OK(fs->ops->append(fs, w, "record", 6));
    CHECK_OK(fs->ops->size(fs, w, &size));
    CHECK_EQ(size, 6);
    CHECK_OK(fs->ops->file_size(fs, p, &real));
    log_reserved = real > size;
    fprintf(stderr, "  posix/log_reserve: %" PRIu64 " bytes reserved for 6 (%s)\n", real,
            log_reserved ? "mapped appends" : "no fallocate here: write(2) appends");
    CHECK(real == size || real >= PPDB_FS__LOG_CHUNK);
    CHECK_OK(fs->ops->close(fs, w));
    CHECK_OK(fs->ops->file_size(fs, p, &real));
    CHECK_EQ(real, 6);
    ppdb_fs_destroy(fs);
    check_no_leaks(&base);
}

/* Appends records to a log until killed, reporting the log's size through
 * fd after each append. */
static void log_child(const char *path, int fd, uint64_t seed)
{
    struct ppdb_fs *fs;
    struct ppdb_file *w;
    static uint8_t rec[300000];
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    if (ppdb_fs_posix_new(&fs) ||
        fs->ops->open(fs, path, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_LOG, &w))
        _exit(2);
    for (uint64_t size = 0; size < (512u << 20);) {
        size_t n = ppdb_rng_below(&rng, 500) == 0 ? sizeof(rec) : 1 + ppdb_rng_below(&rng, 3000);
        fs_log_fill(rec, size, n);
        if (fs->ops->append(fs, w, rec, n))
            _exit(3);
        size += n;
        if (write(fd, &size, sizeof(size)) != (ssize_t)sizeof(size))
            _exit(4);
    }
    _exit(0);
}

/* After the kill: the acknowledged bytes, possibly more of the same, then
 * only zeros. Returns whether there were zeros. */
static bool check_killed_log(const char *path, uint64_t acked)
{
    FILE *f = fopen(path, "rb");
    if (!f && acked == 0)
        return false; /* killed before it created the log */
    CHECK(f != NULL);
    uint64_t off = 0, data_end = UINT64_MAX;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (data_end == UINT64_MAX && c == 0)
            data_end = off;
        if (data_end == UINT64_MAX && c != fs_log_byte(off))
            CHECK_FAIL_("byte %" PRIu64 " is %d, not %d", off, c, fs_log_byte(off));
        if (data_end != UINT64_MAX && c != 0)
            CHECK_FAIL_("byte %" PRIu64 " after zero fill at %" PRIu64 " is %d", off, data_end, c);
        off++;
    }
    fclose(f);
    CHECK_GE(PPDB_MIN(off, data_end), acked);
    return data_end < off;
}

/* kill -9 of a process appending to a log, a few times at random moments. */
static void t_log_killed(uint64_t seed)
{
    struct ppdb_rng rng;
    ppdb_rng_seed(&rng, seed);
    int zero_tails = 0, rounds = 8;
    for (int round = 0; round < rounds; round++) {
        char p[600], name[32];
        snprintf(name, sizeof(name), "killed-%d.log", round);
        fs_path(p, sizeof(p), root, name);
        int fds[2];
        CHECK_EQ(pipe(fds), 0);
        uint64_t child_seed = ppdb_rng_next(&rng);
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            log_child(p, fds[1], child_seed);
        }
        close(fds[1]);
        usleep((useconds_t)(5000 + ppdb_rng_below(&rng, 40000)));
        CHECK_EQ(kill(pid, SIGKILL), 0);
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFSIGNALED(status));
        uint64_t acked = 0, got;
        while (read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got))
            acked = got;
        close(fds[0]);
        zero_tails += check_killed_log(p, acked);
    }
    fprintf(stderr, "  posix/log_killed: %d of %d killed logs end in zero fill\n", zero_tails,
            rounds);
    if (log_reserved)
        CHECK_GT(zero_tails, 0);
}

/* In a child: mounts a file system of type `type` at dir in a private mount
 * namespace, or exits with the skip code. */
static void private_mount(const char *dir, const char *type, const char *opts)
{
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount(type, dir, type, 0, opts) != 0)
        _exit(CHECK_SKIP_CODE);
}

/* Runs fn(dir) in a child with its own mount namespace; false if skipped. */
static bool in_child(const char *name, void (*fn)(const char *dir))
{
    char dir[600];
    fs_path(dir, sizeof(dir), root, name);
    CHECK_EQ(mkdir(dir, 0755), 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        fn(dir);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    if (WEXITSTATUS(status) == CHECK_SKIP_CODE) {
        fprintf(stderr, "  posix/%s: skipped (no private mount: not root?)\n", name);
        return false;
    }
    CHECK_EQ(WEXITSTATUS(status), 0);
    return true;
}

/* A 4 MiB tmpfs, 2.5 MiB of it taken: a log fills the rest, to within a
 * page or two (its 1 MiB reservations shrink as space runs out), then
 * ENOSPC, with nothing half-appended. */
static void log_full_disk(const char *dir)
{
    private_mount(dir, "tmpfs", "size=4m");
    struct ppdb_fs *fs;
    struct ppdb_file *w;
    char p[600];
    static uint8_t rec[300000];
    uint64_t size = 0, got;
    CHECK_OK(ppdb_fs_posix_new(&fs));
    CHECK_OK(fs->ops->open(fs, fs_path(p, sizeof(p), dir, "filler"),
                           PPDB_FS_APPEND | PPDB_FS_CREATE, &w));
    for (int i = 0; i < 10; i++)
        CHECK_OK(fs->ops->append(fs, w, rec, 1u << 18));
    CHECK_OK(fs->ops->close(fs, w));
    fs_path(p, sizeof(p), dir, "full.log");
    int flags = PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_LOG;
    CHECK_OK(fs->ops->open(fs, p, flags, &w));
    int rc = 0;
    while (rc == 0) {
        fs_log_fill(rec, size, 1000);
        if ((rc = fs->ops->append(fs, w, rec, 1000)) == 0)
            size += 1000;
    }
    CHECK_ERR(rc, PPDB_ENOSPC);
    CHECK_GT(size, (3u << 19) - 8192);
    fs_log_fill(rec, size, sizeof(rec));
    CHECK_ERR(fs->ops->append(fs, w, rec, sizeof(rec)), PPDB_ENOSPC);
    CHECK_OK(fs->ops->size(fs, w, &got));
    CHECK_EQ_U64(got, size);
    CHECK_OK(fs->ops->sync(fs, w));
    /* Cut back (what the engine does to resume), and appends work again. */
    size /= 2;
    CHECK_OK(fs->ops->truncate(fs, w, size));
    for (int i = 0; i < 100; i++) {
        fs_log_fill(rec, size, 1000);
        CHECK_OK(fs->ops->append(fs, w, rec, 1000));
        size += 1000;
    }
    CHECK_OK(fs->ops->close(fs, w));
    CHECK_OK(fs->ops->file_size(fs, p, &got));
    CHECK_EQ_U64(got, size);
    check_killed_log(p, size);
    ppdb_fs_destroy(fs);
    _exit(0);
}

/* ramfs has no fallocate and is not one where logs are mapped: the whole
 * contract again, logs taking pwrite appends. */
static void contract_on_ramfs(const char *dir)
{
    private_mount(dir, "ramfs", "");
    struct fs_contract c = {.name = "posix-ramfs", .make = make_posix, .root = dir};
    fs_contract_run(&c);
    struct ppdb_fs *fs;
    struct ppdb_file *w;
    char p[600];
    uint64_t real;
    CHECK_OK(ppdb_fs_posix_new(&fs));
    fs_path(p, sizeof(p), dir, "unmapped.log");
    CHECK_OK(fs->ops->open(fs, p, PPDB_FS_APPEND | PPDB_FS_CREATE | PPDB_FS_LOG, &w));
    CHECK_OK(fs->ops->append(fs, w, "record", 6));
    CHECK_OK(fs->ops->file_size(fs, p, &real));
    CHECK_EQ(real, 6); /* nothing reserved ahead */
    CHECK_OK(fs->ops->close(fs, w));
    ppdb_fs_destroy(fs);
    _exit(0);
}

static void t_private_mounts(void)
{
    if (in_child("small", log_full_disk))
        fprintf(stderr, "  posix/log_full_disk: ENOSPC from append on a full tmpfs\n");
    in_child("ramfs", contract_on_ramfs);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int main(int argc, char **argv)
{
    uint64_t seed = check_seed(argc, argv, 4711);
    snprintf(root, sizeof(root), "/tmp/ppdb-test-fs-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    fprintf(stderr, "root=%s\n", root);
    struct fs_contract c = {.name = "posix", .make = make_posix, .root = root};
    fs_contract_run(&c);
    t_cross_process_lock();
    t_cloexec_and_errors();
    t_log_reserve();
    t_log_killed(seed);
    t_private_mounts();
    CHECK_EQ(nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
    fprintf(stderr, "ok\n");
    return 0;
}
