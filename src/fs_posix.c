/*
 * fs_posix.c - the ppdb_fs seam over the real POSIX file system.
 *
 * Thin on purpose: each op is one system call (or a loop of them for
 * EINTR and short transfers) with errno mapped to a PPDB_E* code, so what
 * the engine sees is what the kernel said. Durability: sync is fdatasync,
 * sync_dir is fsync on the directory. A failed sync must be treated by the
 * caller as fatal for that file: Linux may already have dropped the dirty
 * pages it could not write.
 *
 * Locks: flock(LOCK_EX|LOCK_NB) on a lock file keeps other processes out;
 * flock locks belong to the open file description, so opening and closing
 * the same file elsewhere in the process never releases them (unlike fcntl
 * locks). On top, a mutex-protected table of held locks keyed by
 * (device, inode) makes a second lock in this process fail with
 * PPDB_EBUSY no matter how the path is spelled.
 *
 * Invariants: every fd is opened O_CLOEXEC; nlocks <= PPDB_FS_POSIX_LOCKS_MAX;
 * live maps <= PPDB_FS__MAP_MAX; destroy happens with no lock held.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_internal.h"

#define PPDB_FS_POSIX_LOCKS_MAX 64

struct lock_id {
    dev_t dev;
    ino_t ino;
};

struct fs_posix {
    struct ppdb_fs base;
    pthread_mutex_t mu; /* guards locks/nlocks */
    struct lock_id locks[PPDB_FS_POSIX_LOCKS_MAX];
    uint32_t nlocks;
    _Atomic int64_t maps; /* live mappings */
    struct ppdb_fs__bg bg;
};

struct ppdb_file {
    int fd;
    int flags;
    bool is_lock;
    struct lock_id id; /* lock files only */
};

static struct fs_posix *to_posix(struct ppdb_fs *fs)
{
    return (struct fs_posix *)fs;
}

/* errno -> PPDB_E*, with the file-system cases ppdb_err_from_errno leaves
 * as EIO: wrong kind of file is EINVAL, a non-empty directory EEXIST. */
static int map_errno(int e)
{
    switch (e) {
    case EISDIR:
    case ENOTDIR:
    case ENAMETOOLONG:
    case ELOOP:
    case EXDEV:
        return PPDB_EINVAL;
    case ENOTEMPTY:
        return PPDB_EEXIST;
    case EMFILE:
    case ENFILE:
        return PPDB_ELIMIT;
    default:
        return ppdb_err_from_errno(e);
    }
}

static int last_err(void)
{
    return map_errno(errno);
}

/* --------------------------------------------------------------- files */

static int to_oflags(int flags)
{
    int o = O_CLOEXEC;
    bool rd = flags & PPDB_FS_READ, wr = flags & (PPDB_FS_APPEND | PPDB_FS_TRUNC);
    o |= rd && wr ? O_RDWR : wr ? O_WRONLY : O_RDONLY;
    if (flags & PPDB_FS_APPEND)
        o |= O_APPEND;
    if (flags & PPDB_FS_CREATE)
        o |= O_CREAT;
    if (flags & PPDB_FS_EXCL)
        o |= O_EXCL;
    if (flags & PPDB_FS_TRUNC)
        o |= O_TRUNC;
    return o;
}

static int posix_open(struct ppdb_fs *fs, const char *path, int flags, struct ppdb_file **f_out)
{
    PPDB_ASSERT(path && f_out);
    PPDB_ASSERT(flags & (PPDB_FS_READ | PPDB_FS_APPEND));
    PPDB_ASSERT(!(flags & PPDB_FS_EXCL) || (flags & PPDB_FS_CREATE));
    struct ppdb_file *f = ppdb_calloc(1, sizeof(*f));
    if (!f)
        return PPDB_ENOMEM;
    int fd;
    do
        fd = open(path, to_oflags(flags), 0644);
    while (fd < 0 && errno == EINTR);
    struct stat st;
    int rc = fd < 0 ? last_err() : fstat(fd, &st) ? last_err() : 0;
    if (rc == 0 && S_ISDIR(st.st_mode))
        rc = PPDB_EINVAL; /* a read-only open of a directory succeeds in POSIX */
    if (rc) {
        if (fd >= 0)
            close(fd);
        ppdb_free(f);
        return rc;
    }
    f->fd = fd;
    f->flags = flags;
    *f_out = f;
    return 0;
}

static int posix_close(struct ppdb_fs *fs, struct ppdb_file *f)
{
    PPDB_ASSERT(f && !f->is_lock);
    /* Never retry close on EINTR: on Linux the fd is gone either way. */
    int rc = close(f->fd) == 0 || errno == EINTR ? 0 : last_err();
    ppdb_free(f);
    return rc;
}

static int posix_pread(struct ppdb_fs *fs, struct ppdb_file *f, void *buf, size_t n, uint64_t off,
                       size_t *n_out)
{
    PPDB_ASSERT(f && (f->flags & PPDB_FS_READ) && (buf || n == 0) && n_out);
    size_t done = 0;
    /* Bounded: each pass moves forward, or ends at EOF or an error. */
    while (done < n) {
        ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *n_out = done;
            return last_err();
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *n_out = done;
    return 0;
}

static int posix_append(struct ppdb_fs *fs, struct ppdb_file *f, const void *buf, size_t n)
{
    PPDB_ASSERT(f && (f->flags & PPDB_FS_APPEND) && (buf || n == 0));
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(f->fd, (const char *)buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return last_err();
        if (r == 0)
            return PPDB_EIO; /* no progress and no errno: do not spin */
        done += (size_t)r;
    }
    return 0;
}

static int posix_sync(struct ppdb_fs *fs, struct ppdb_file *f)
{
    PPDB_ASSERT(f);
    int r;
    do
        r = fdatasync(f->fd);
    while (r != 0 && errno == EINTR);
    if (r != 0 && errno == EINVAL)
        return 0; /* special files (/dev/null) have nothing to sync */
    return r == 0 ? 0 : last_err();
}

static int posix_size(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t *size_out)
{
    PPDB_ASSERT(f && size_out);
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return last_err();
    *size_out = (uint64_t)st.st_size;
    return 0;
}

static int posix_truncate(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t size)
{
    PPDB_ASSERT(f);
    int r;
    do
        r = ftruncate(f->fd, (off_t)size);
    while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : last_err();
}

static int posix_map(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t **p_out,
                     uint64_t *len_out)
{
    PPDB_ASSERT(f && (f->flags & PPDB_FS_READ) && p_out && len_out);
    struct fs_posix *px = to_posix(fs);
    uint64_t len;
    int rc = posix_size(fs, f, &len);
    if (rc)
        return rc;
    if (len == 0) {
        *p_out = NULL;
        *len_out = 0;
        return 0;
    }
    if (len > SIZE_MAX)
        return PPDB_ENOMEM;
    if (atomic_fetch_add(&px->maps, 1) >= PPDB_FS__MAP_MAX) {
        atomic_fetch_sub(&px->maps, 1);
        return PPDB_ELIMIT;
    }
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, f->fd, 0);
    if (p == MAP_FAILED) {
        atomic_fetch_sub(&px->maps, 1);
        return last_err();
    }
    *p_out = p;
    *len_out = len;
    return 0;
}

static void posix_unmap(struct ppdb_fs *fs, struct ppdb_file *f, const uint8_t *p, uint64_t len)
{
    if (!p || len == 0)
        return;
    PPDB_ASSERT(munmap((void *)(uintptr_t)p, (size_t)len) == 0);
    atomic_fetch_sub(&to_posix(fs)->maps, 1);
}

/* ---------------------------------------------------------- namespace */

static int posix_rename(struct ppdb_fs *fs, const char *from, const char *to)
{
    return rename(from, to) == 0 ? 0 : last_err();
}

static int posix_remove(struct ppdb_fs *fs, const char *path)
{
    return unlink(path) == 0 ? 0 : last_err();
}

static int posix_link(struct ppdb_fs *fs, const char *from, const char *to)
{
    return link(from, to) == 0 ? 0 : last_err();
}

static int posix_mkdir(struct ppdb_fs *fs, const char *path)
{
    return mkdir(path, 0755) == 0 ? 0 : last_err();
}

static int posix_rmdir(struct ppdb_fs *fs, const char *path)
{
    return rmdir(path) == 0 ? 0 : last_err();
}

static int collect_names(DIR *d, char ***names_out, size_t *count_out)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == PPDB_FS__LIST_MAX) {
            rc = PPDB_ELIMIT;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = ppdb_realloc(names, ncap * sizeof(*names));
            if (!nn) {
                rc = PPDB_ENOMEM;
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = ppdb_strdup(de->d_name)))
            rc = PPDB_ENOMEM;
        else
            n++;
    }
    if (rc == 0 && errno != 0)
        rc = last_err();
    if (rc) {
        ppdb_fs_names_free(names, n);
        return rc;
    }
    ppdb_fs__names_sort(names, n);
    *names_out = names;
    *count_out = n;
    return 0;
}

static int posix_list(struct ppdb_fs *fs, const char *dir, char ***names_out, size_t *count_out)
{
    PPDB_ASSERT(dir && names_out && count_out);
    *names_out = NULL;
    *count_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return last_err();
    int rc = collect_names(d, names_out, count_out);
    closedir(d);
    return rc;
}

static int posix_exists(struct ppdb_fs *fs, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 0;
    return errno == ENOTDIR ? PPDB_ENOENT : last_err();
}

static int posix_file_size(struct ppdb_fs *fs, const char *path, uint64_t *size_out)
{
    PPDB_ASSERT(size_out);
    struct stat st;
    if (stat(path, &st) != 0)
        return last_err();
    if (S_ISDIR(st.st_mode))
        return PPDB_EINVAL;
    *size_out = (uint64_t)st.st_size;
    return 0;
}

static int posix_sync_dir(struct ppdb_fs *fs, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return last_err();
    int r;
    do
        r = fsync(fd);
    while (r != 0 && errno == EINTR);
    int rc = r == 0 ? 0 : last_err();
    close(fd);
    return rc;
}

/* --------------------------------------------------------------- locks */

/* Called with mu held. */
static int find_lock(struct fs_posix *px, struct lock_id id)
{
    for (uint32_t i = 0; i < px->nlocks; i++)
        if (px->locks[i].dev == id.dev && px->locks[i].ino == id.ino)
            return (int)i;
    return -1;
}

/* Claims (dev, ino) in the in-process table, then the flock. */
static int claim_lock(struct fs_posix *px, struct ppdb_file *f)
{
    int rc = 0;
    pthread_mutex_lock(&px->mu);
    if (find_lock(px, f->id) >= 0)
        rc = PPDB_EBUSY;
    else if (px->nlocks == PPDB_FS_POSIX_LOCKS_MAX)
        rc = PPDB_ELIMIT;
    else if (flock(f->fd, LOCK_EX | LOCK_NB) != 0)
        rc = errno == EWOULDBLOCK ? PPDB_EBUSY : last_err(); /* another process has it */
    else
        px->locks[px->nlocks++] = f->id;
    pthread_mutex_unlock(&px->mu);
    return rc;
}

static int posix_lock(struct ppdb_fs *fs, const char *path, struct ppdb_file **lock_out)
{
    PPDB_ASSERT(path && lock_out);
    struct ppdb_file *f;
    int rc = posix_open(fs, path, PPDB_FS_READ | PPDB_FS_APPEND | PPDB_FS_CREATE, &f);
    if (rc)
        return rc;
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        rc = last_err();
    } else {
        f->id = (struct lock_id){st.st_dev, st.st_ino};
        rc = claim_lock(to_posix(fs), f);
    }
    if (rc) {
        posix_close(fs, f);
        return rc;
    }
    f->is_lock = true;
    *lock_out = f;
    return 0;
}

static int posix_unlock(struct ppdb_fs *fs, struct ppdb_file *f)
{
    PPDB_ASSERT(f && f->is_lock);
    struct fs_posix *px = to_posix(fs);
    pthread_mutex_lock(&px->mu);
    int i = find_lock(px, f->id);
    PPDB_ASSERT(i >= 0);
    px->locks[i] = px->locks[--px->nlocks];
    int rc = flock(f->fd, LOCK_UN) == 0 ? 0 : last_err();
    pthread_mutex_unlock(&px->mu);
    f->is_lock = false;
    int crc = posix_close(fs, f);
    return rc ? rc : crc;
}

/* ------------------------------------------------------ time and tasks */

static int posix_schedule(struct ppdb_fs *fs, ppdb_fs_task_fn fn, void *arg)
{
    return ppdb_fs__bg_schedule(&to_posix(fs)->bg, fn, arg);
}

static uint64_t posix_now_us(struct ppdb_fs *fs)
{
    return ppdb_fs__mono_us();
}

static int64_t posix_wall_ms(struct ppdb_fs *fs)
{
    return ppdb_fs__wall_ms();
}

static void posix_sleep_us(struct ppdb_fs *fs, uint64_t us)
{
    ppdb_fs__sleep_us(us);
}

static void posix_destroy(struct ppdb_fs *fs)
{
    struct fs_posix *px = to_posix(fs);
    ppdb_fs__bg_deinit(&px->bg);
    PPDB_ASSERT_CMP(px->nlocks, ==, 0);             /* unlock before destroy */
    PPDB_ASSERT_CMP(atomic_load(&px->maps), ==, 0); /* unmap before destroy */
    pthread_mutex_destroy(&px->mu);
    ppdb_free(px);
}

static const struct ppdb_fs_ops posix_ops = {
    .open = posix_open,
    .close = posix_close,
    .pread = posix_pread,
    .append = posix_append,
    .sync = posix_sync,
    .size = posix_size,
    .truncate = posix_truncate,
    .map = posix_map,
    .unmap = posix_unmap,
    .rename = posix_rename,
    .remove = posix_remove,
    .link = posix_link,
    .mkdir = posix_mkdir,
    .rmdir = posix_rmdir,
    .list = posix_list,
    .exists = posix_exists,
    .file_size = posix_file_size,
    .sync_dir = posix_sync_dir,
    .lock = posix_lock,
    .unlock = posix_unlock,
    .schedule = posix_schedule,
    .now_us = posix_now_us,
    .wall_ms = posix_wall_ms,
    .sleep_us = posix_sleep_us,
    .destroy = posix_destroy,
};

int ppdb_fs_posix_new(struct ppdb_fs **fs_out)
{
    PPDB_ASSERT(fs_out);
    struct fs_posix *px = ppdb_calloc(1, sizeof(*px));
    if (!px)
        return PPDB_ENOMEM;
    px->base.ops = &posix_ops;
    PPDB_ASSERT(pthread_mutex_init(&px->mu, NULL) == 0);
    atomic_init(&px->maps, 0);
    ppdb_fs__bg_init(&px->bg, PPDB_FS__TASK_QUEUE_MAX);
    *fs_out = &px->base;
    return 0;
}
