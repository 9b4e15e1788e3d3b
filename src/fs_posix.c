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
 * Logs (PPDB_FS_LOG with PPDB_FS_APPEND) are the exception to "one system
 * call per op": a log takes one small append per group commit, and a
 * write(2) of 140 bytes costs about 1.5 us where a copy into a shared
 * mapping of the file costs 0.1-0.3 us, page faults included. So a log's
 * appends are copied into a MAP_SHARED window of the file. The window
 * starts at the page holding the logical end and covers at least one
 * LOG_CHUNK (1 MiB: a slide, fallocate + mmap, is then paid once per
 * thousands of small records; a crashed log ends in at most about that
 * much zero fill), and its space is reserved with fallocate(2) BEFORE it
 * is mapped, so a full disk is PPDB_ENOSPC from append, never a SIGBUS from
 * a store into a page with no block behind it (near a full disk a slide
 * reserves only the pages the append needs). An append that does not fit
 * slides the window first, so no append is split between two windows.
 * Appends of LOG_DIRECT bytes or more use pwrite (the copy then dwarfs the
 * system call, and no window of their size is needed); so does every
 * append of a log on a file system that lacks fallocate or mmap, or where a
 * store into reserved space may still need a new block (copy-on-write file
 * systems; see maps_logs): such a log (LOG_WRITE) is never mapped, rather
 * than risk a store that cannot be backed.
 * Bytes stored into a shared file mapping are in the page cache exactly
 * like write(2)'s: they survive a crash of the process, and fdatasync
 * writes them (Linux tracks the pages dirtied through a shared mapping).
 * The copy runs in address order (copy_in_order), so an append cut short
 * by a crash leaves a prefix of its bytes, then zero fill.
 * size() and pread on the log's handle see the appended bytes; the file's
 * real size includes the reserved zero fill until close or truncate cuts
 * it back.
 *
 * Locks: flock(LOCK_EX|LOCK_NB) on a lock file keeps other processes out;
 * flock locks belong to the open file description, so opening and closing
 * the same file elsewhere in the process never releases them (unlike fcntl
 * locks). On top, a mutex-protected table of held locks keyed by
 * (device, inode) makes a second lock in this process fail with
 * PPDB_EBUSY no matter how the path is spelled.
 *
 * Invariants: every fd is opened O_CLOEXEC; nlocks <= PPDB_FS_POSIX_LOCKS_MAX;
 * live maps <= PPDB_FS__MAP_MAX; destroy happens with no lock held. For a
 * log: size <= reserved, the file's size is `reserved`, and a window lies
 * inside [0, reserved) with win_off <= size <= win_end; only the appending
 * thread moves the window.
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

#ifdef __linux__
#include <linux/magic.h>
#include <sys/vfs.h>
#endif

#include "fs_internal.h"

#define PPDB_FS_POSIX_LOCKS_MAX 64

#define LOG_CHUNK       PPDB_FS__LOG_CHUNK /* a window slide reserves and maps at least this */
#define LOG_POPULATE    (64u << 10)        /* pre-faulted per madvise */
#define LOG_DIRECT      (256u << 10)       /* appends from this size on use pwrite */
#define LOG_UNSUPPORTED 1                  /* fallocate or mmap not supported here */

_Static_assert(LOG_DIRECT < LOG_CHUNK && LOG_POPULATE <= LOG_CHUNK, "window bounds");

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels say EINVAL */
#endif

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
    uint64_t page_bytes;  /* mmap offsets are multiples of it */
    struct ppdb_fs__bg bg;
};

enum log_mode {
    LOG_NONE = 0, /* not a log: write(2) under O_APPEND */
    LOG_MAP,      /* appends copied into the mapped window (large ones: pwrite) */
    LOG_WRITE     /* not mapped here (see maps_logs): every append a pwrite */
};

struct ppdb_file {
    int fd;
    int flags;
    bool is_lock;
    struct lock_id id; /* lock files only */
    /* Logs only. The appending thread owns all but `size`, which pread and
     * size read from any thread. */
    enum log_mode mode;
    _Atomic uint64_t size;     /* bytes appended: the logical size */
    uint64_t reserved;         /* the file's real size: size plus zero fill */
    uint8_t *win;              /* MAP_SHARED view of [win_off, win_end), or NULL */
    uint64_t win_off, win_end; /* page-aligned */
    uint64_t populated;        /* [win_off, populated) was pre-faulted */
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

static bool is_log(int flags)
{
    return (flags & PPDB_FS_LOG) && (flags & PPDB_FS_APPEND);
}

/* Whether a store into space fallocate reserved on fd's file system can
 * never need another block: ext4 (ext2/3 refuse fallocate and fall back),
 * XFS and tmpfs write preallocated blocks in place. Copy-on-write file
 * systems (btrfs, ZFS, f2fs) may need fresh space for such a store, and a
 * full disk would then be a SIGBUS: logs there take pwrite appends. */
static bool maps_logs(int fd)
{
#ifdef __linux__
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0)
        return false;
    switch ((unsigned long)sf.f_type) {
    case EXT4_SUPER_MAGIC:
    case XFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
        return true;
    default:
        return false;
    }
#else
    return false;
#endif
}

static int to_oflags(int flags)
{
    int o = O_CLOEXEC;
    bool wr = flags & (PPDB_FS_APPEND | PPDB_FS_TRUNC);
    /* A writable shared mapping needs a descriptor open for reading too. */
    bool rd = (flags & PPDB_FS_READ) || is_log(flags);
    o |= rd && wr ? O_RDWR : wr ? O_WRONLY : O_RDONLY;
    /* A log writes at its own logical end: under O_APPEND, Linux's pwrite
     * would ignore the offset and write after the reserved zero fill. */
    if ((flags & PPDB_FS_APPEND) && !is_log(flags))
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
    if (is_log(flags)) {
        f->mode = S_ISREG(st.st_mode) && maps_logs(fd) ? LOG_MAP : LOG_WRITE;
        f->reserved = (uint64_t)st.st_size; /* appends go after all of it */
        atomic_init(&f->size, f->reserved);
    }
    *f_out = f;
    return 0;
}

static int log_close(struct ppdb_file *f);

static int posix_close(struct ppdb_fs *fs, struct ppdb_file *f)
{
    PPDB_ASSERT(f && !f->is_lock);
    int rc = f->mode != LOG_NONE ? log_close(f) : 0;
    /* Never retry close on EINTR: on Linux the fd is gone either way. */
    int crc = close(f->fd) == 0 || errno == EINTR ? 0 : last_err();
    ppdb_free(f);
    return rc ? rc : crc;
}

static int posix_pread(struct ppdb_fs *fs, struct ppdb_file *f, void *buf, size_t n, uint64_t off,
                       size_t *n_out)
{
    PPDB_ASSERT(f && (f->flags & PPDB_FS_READ) && (buf || n == 0) && n_out);
    if (f->mode != LOG_NONE) { /* the log's handle sees no zero fill */
        uint64_t size = atomic_load_explicit(&f->size, memory_order_acquire);
        n = off >= size ? 0 : (size_t)PPDB_MIN((uint64_t)n, size - off);
    }
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

static int log_append(struct fs_posix *px, struct ppdb_file *f, const uint8_t *p, size_t n);

static int posix_append(struct ppdb_fs *fs, struct ppdb_file *f, const void *buf, size_t n)
{
    PPDB_ASSERT(f && (f->flags & PPDB_FS_APPEND) && (buf || n == 0));
    if (f->mode != LOG_NONE)
        return log_append(to_posix(fs), f, buf, n);
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

/* For a log too: fdatasync writes the pages its window dirtied (Linux
 * keeps shared file mappings' dirty pages in the page cache, so no msync is
 * needed) and the size its fallocate set. */
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
    if (f->mode != LOG_NONE) {
        *size_out = atomic_load_explicit(&f->size, memory_order_acquire);
        return 0;
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return last_err();
    *size_out = (uint64_t)st.st_size;
    return 0;
}

static int ftruncate_retry(int fd, uint64_t size)
{
    int r;
    do
        r = ftruncate(fd, (off_t)size);
    while (r != 0 && errno == EINTR);
    return r == 0 ? 0 : last_err();
}

static int log_truncate(struct ppdb_file *f, uint64_t size);

static int posix_truncate(struct ppdb_fs *fs, struct ppdb_file *f, uint64_t size)
{
    PPDB_ASSERT(f);
    return f->mode != LOG_NONE ? log_truncate(f, size) : ftruncate_retry(f->fd, size);
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

/* ---------------------------------------------------------------- logs */

static void log_unmap(struct ppdb_file *f)
{
    if (!f->win)
        return;
    PPDB_ASSERT(munmap(f->win, (size_t)(f->win_end - f->win_off)) == 0);
    f->win = NULL;
    f->win_off = f->win_end = f->populated = 0;
}

/* From now on every append is a pwrite (fallocate or mmap unsupported). */
static void log_fall_back(struct ppdb_file *f)
{
    log_unmap(f);
    f->mode = LOG_WRITE;
}

/* Extends the file to `end` with its blocks allocated (reading as zeros),
 * so stores into a mapping of it cannot meet a full disk. LOG_UNSUPPORTED
 * where the file system has no fallocate: glibc's posix_fallocate would
 * then write zeros block by block, no cheaper than writing the log. */
static int log_reserve(struct ppdb_file *f, uint64_t end)
{
    if (end <= f->reserved)
        return 0;
#ifdef __linux__
    int r;
    do
        r = fallocate(f->fd, 0, (off_t)f->reserved, (off_t)(end - f->reserved));
    while (r != 0 && errno == EINTR);
    if (r == 0) {
        f->reserved = end;
        return 0;
    }
    int e = errno;
    struct stat st; /* a failed fallocate may have extended the file part way */
    if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size > f->reserved)
        f->reserved = (uint64_t)st.st_size;
    return e == EOPNOTSUPP || e == ENOSYS || e == ENODEV ? LOG_UNSUPPORTED : map_errno(e);
#else
    return LOG_UNSUPPORTED;
#endif
}

/* Moves the window to the page holding the logical end, long enough for n
 * more bytes and at least a chunk (on a nearly full disk, just the pages n
 * bytes need: a full disk then fails the same appends write(2) would),
 * reserving its space before mapping it. */
static int log_slide(struct fs_posix *px, struct ppdb_file *f, size_t n)
{
    uint64_t size = atomic_load_explicit(&f->size, memory_order_relaxed);
    uint64_t off = size - size % px->page_bytes;
    uint64_t len = (size + n - off + LOG_CHUNK - 1) / LOG_CHUNK * LOG_CHUNK;
    int rc = log_reserve(f, off + len);
    if (rc == PPDB_ENOSPC) { /* nearly full: no more than this append needs */
        len = (size + n - off + px->page_bytes - 1) / px->page_bytes * px->page_bytes;
        rc = log_reserve(f, off + len);
    }
    if (rc)
        return rc;
    log_unmap(f);
    void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, (off_t)off);
    if (p == MAP_FAILED)
        return errno == ENODEV ? LOG_UNSUPPORTED : last_err();
    f->win = p;
    f->win_off = f->populated = off;
    f->win_end = off + len;
    return 0;
}

/* Pre-faults the window up to at least `end`, LOG_POPULATE at a time: one
 * madvise instead of a page fault per page (a fillrandom-sized record costs
 * about 0.3 us instead of 0.5 us on ext4). Best effort: kernels before 5.14
 * say EINVAL, and a page left out faults in on the store. The populated
 * pages are dirty zeros, so the first sync after a step writes up to
 * LOG_POPULATE bytes more than the records; the step stays small for that. */
static void log_populate(struct fs_posix *px, struct ppdb_file *f, uint64_t end)
{
    if (end <= f->populated)
        return;
    uint64_t to = PPDB_MAX(end, f->populated + LOG_POPULATE);
    to = PPDB_MIN((to + px->page_bytes - 1) / px->page_bytes * px->page_bytes, f->win_end);
    (void)madvise(f->win + (f->populated - f->win_off), (size_t)(to - f->populated),
                  MADV_POPULATE_WRITE);
    f->populated = to;
}

/* Copies in address order, one 8-byte store at a time: a process killed
 * in the middle then leaves a prefix of the bytes in the file and zeros
 * after it, as an interrupted write(2) leaves a prefix (the kernel copies
 * page by page and checks for a fatal signal between pages). memcpy makes
 * no such promise (glibc stores the last bytes of a copy first), and a log
 * reader tells an append cut short from damage by exactly this
 * (docs/formats/wal.md). The signal fence is a compiler barrier: the stores
 * are emitted in this order and not merged or turned into a memcpy call;
 * the CPU then takes the kill (an interrupt) between two instructions, with
 * every store before it done and none after. */
static void copy_in_order(uint8_t *dst, const uint8_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(dst + i, src + i, 8);
        atomic_signal_fence(memory_order_seq_cst);
    }
    for (; i < n; i++) {
        dst[i] = src[i];
        atomic_signal_fence(memory_order_seq_cst);
    }
}

/* pwrite at the logical end: for large appends (reserved first, so a full
 * disk stops them before any byte is written) and for LOG_WRITE files. A
 * short write moves the size by what reached the file. */
static int log_pwrite(struct ppdb_file *f, const uint8_t *p, size_t n)
{
    uint64_t size = atomic_load_explicit(&f->size, memory_order_relaxed);
    int rc = f->mode == LOG_MAP ? log_reserve(f, size + n) : 0;
    if (rc == LOG_UNSUPPORTED) {
        log_fall_back(f);
        rc = 0;
    }
    size_t done = 0;
    while (rc == 0 && done < n) {
        ssize_t r = pwrite(f->fd, p + done, n - done, (off_t)(size + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = r < 0 ? last_err() : PPDB_EIO; /* no progress and no errno: do not spin */
        else
            done += (size_t)r;
    }
    f->reserved = PPDB_MAX(f->reserved, size + done);
    atomic_store_explicit(&f->size, size + done, memory_order_release);
    return rc;
}

static int log_append(struct fs_posix *px, struct ppdb_file *f, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (f->mode == LOG_WRITE || n >= LOG_DIRECT)
        return log_pwrite(f, p, n);
    uint64_t size = atomic_load_explicit(&f->size, memory_order_relaxed);
    if (!f->win || size + n > f->win_end) {
        int rc = log_slide(px, f, n);
        if (rc == LOG_UNSUPPORTED) {
            log_fall_back(f);
            return log_pwrite(f, p, n);
        }
        if (rc)
            return rc;
    }
    PPDB_ASSERT(f->win_off <= size && size + n <= f->win_end && f->win_end <= f->reserved);
    log_populate(px, f, size + n);
    copy_in_order(f->win + (size - f->win_off), p, n);
    atomic_store_explicit(&f->size, size + n, memory_order_release);
    return 0;
}

/* The window goes (the next append maps a new one); the file, zero fill
 * included, is cut to `size`. */
static int log_truncate(struct ppdb_file *f, uint64_t size)
{
    log_unmap(f);
    int rc = ftruncate_retry(f->fd, size);
    if (rc)
        return rc;
    f->reserved = size;
    atomic_store_explicit(&f->size, size, memory_order_release);
    return 0;
}

/* Unmaps and cuts the zero fill off; the caller closes the fd either way. */
static int log_close(struct ppdb_file *f)
{
    log_unmap(f);
    uint64_t size = atomic_load_explicit(&f->size, memory_order_relaxed);
    return f->reserved == size ? 0 : ftruncate_retry(f->fd, size);
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
    long page = sysconf(_SC_PAGESIZE);
    px->page_bytes = page > 0 && LOG_CHUNK % (uint64_t)page == 0 ? (uint64_t)page : LOG_CHUNK;
    ppdb_fs__bg_init(&px->bg, PPDB_FS__TASK_QUEUE_MAX);
    *fs_out = &px->base;
    return 0;
}
