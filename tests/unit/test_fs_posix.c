/*
 * test_fs_posix.c - the POSIX ppdb_fs: the shared contract suite in a
 * fresh mkdtemp directory, then what only a real file system shows: locks
 * held against another process, close-on-exec descriptors, errno mapping
 * (ENOSPC from /dev/full). The directory is removed at the end.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
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

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/ppdb-test-fs-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    fprintf(stderr, "root=%s\n", root);
    struct fs_contract c = {.name = "posix", .make = make_posix, .root = root};
    fs_contract_run(&c);
    t_cross_process_lock();
    t_cloexec_and_errors();
    CHECK_EQ(nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
    fprintf(stderr, "ok\n");
    return 0;
}
