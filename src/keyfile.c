/*
 * keyfile.c - identity and cluster-key files (the only I/O of the wire
 * module).
 *
 * These files are small secrets read once at start, not engine files, so
 * plain POSIX calls are used rather than the fs seam. Writes are atomic:
 * `<path>.tmp` is created with mode 0600, written, fsynced, renamed over
 * `<path>`, and the directory is fsynced, so a crash leaves either the old
 * file or the new one. Loads refuse files that group or others can read
 * (as ssh does for private keys).
 *
 * Identity file (text, so an operator can inspect it):
 *     # ppdb node identity: keep secret
 *     version 1
 *     seed <64 hex digits>
 *     id <40 hex digits>
 * The id line is a check: it must match the id derived from the seed.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ppdb_wire.h"

#define KEYFILE_MAX 4096

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return ppdb_err_from_errno(errno);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int sync_dir_of(const char *path)
{
    char dir[4096];
    if (strlen(path) >= sizeof(dir))
        return PPDB_EINVAL;
    strcpy(dir, path);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ppdb_err_from_errno(errno);
    int rc = fsync(fd) == 0 ? 0 : ppdb_err_from_errno(errno);
    close(fd);
    return rc;
}

static int write_secret_file(const char *path, const char *text, size_t len)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return PPDB_EINVAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ppdb_err_from_errno(errno);
    int rc = fchmod(fd, 0600) == 0 ? 0 : ppdb_err_from_errno(errno);
    if (rc == 0)
        rc = write_all(fd, text, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = ppdb_err_from_errno(errno);
    if (close(fd) != 0 && rc == 0)
        rc = ppdb_err_from_errno(errno);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = ppdb_err_from_errno(errno);
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    return sync_dir_of(path);
}

/* Reads a whole small file into buf (NUL-terminated); checks its mode. */
static int read_secret_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ppdb_err_from_errno(errno);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = ppdb_err_from_errno(errno);
    else if ((st.st_mode & 077) != 0)
        rc = PPDB_EPERM;
    else if ((size_t)st.st_size >= cap)
        rc = PPDB_ECORRUPT;
    size_t got = 0;
    while (rc == 0) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = ppdb_err_from_errno(errno);
        else if (r == 0)
            break;
        else
            got += (size_t)r;
        if (got == cap - 1)
            rc = PPDB_ECORRUPT;
    }
    close(fd);
    buf[got] = '\0';
    return rc;
}

/* -------------------------------------------------------------- identity */

int ppdb_identity_save(const char *path, const struct ppdb_identity *idn)
{
    char seed_hex[2 * PPDB_IDENTITY_SEED_LEN + 1], id_hex[PPDB_NODE_ID_HEXLEN];
    char text[256];
    ppdb_hex(idn->seed, PPDB_IDENTITY_SEED_LEN, seed_hex);
    int n = snprintf(text, sizeof(text),
                     "# ppdb node identity: keep secret\nversion 1\nseed %s\nid %s\n", seed_hex,
                     ppdb_node_id_hex(&idn->id, id_hex));
    PPDB_ASSERT(n > 0 && (size_t)n < sizeof(text));
    int rc = write_secret_file(path, text, (size_t)n);
    sodium_memzero(seed_hex, sizeof(seed_hex));
    sodium_memzero(text, sizeof(text));
    return rc;
}

/* Parses the identity text; returns ECORRUPT on anything unexpected. */
static int parse_identity(char *text, uint8_t seed[PPDB_IDENTITY_SEED_LEN], struct ppdb_node_id *id)
{
    bool have_version = false, have_seed = false, have_id = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (strcmp(line, "version 1") == 0)
            have_version = true;
        else if (strncmp(line, "seed ", 5) == 0)
            have_seed = ppdb_unhex(line + 5, seed, PPDB_IDENTITY_SEED_LEN) == 0;
        else if (strncmp(line, "id ", 3) == 0)
            have_id = ppdb_node_id_parse(line + 3, id) == 0;
        else
            return PPDB_ECORRUPT;
    }
    return have_version && have_seed && have_id ? 0 : PPDB_ECORRUPT;
}

int ppdb_identity_load(const char *path, struct ppdb_identity *out)
{
    char text[KEYFILE_MAX];
    uint8_t seed[PPDB_IDENTITY_SEED_LEN];
    struct ppdb_node_id id;
    int rc = read_secret_file(path, text, sizeof(text));
    if (rc == 0)
        rc = parse_identity(text, seed, &id);
    if (rc == 0)
        rc = ppdb_identity_from_seed(out, seed);
    if (rc == 0 && !ppdb_node_id_equal(&id, &out->id)) {
        ppdb_identity_wipe(out);
        rc = PPDB_ECORRUPT;
    }
    sodium_memzero(text, sizeof(text));
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

int ppdb_identity_load_or_create(const char *dir, struct ppdb_env *env, struct ppdb_identity *out,
                                 bool *created_out)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, PPDB_IDENTITY_FILE) >= sizeof(path))
        return PPDB_EINVAL;
    if (created_out)
        *created_out = false;
    int rc = ppdb_identity_load(path, out);
    if (rc != PPDB_ENOENT && rc != PPDB_ENOTFOUND)
        return rc;
    rc = ppdb_identity_generate(out, env);
    if (rc == 0)
        rc = ppdb_identity_save(path, out);
    if (rc != 0) {
        ppdb_identity_wipe(out);
        return rc;
    }
    if (created_out)
        *created_out = true;
    return 0;
}

/* ----------------------------------------------------------- cluster key */

int ppdb_cluster_key_save(const char *path, const uint8_t key[PPDB_CLUSTER_KEY_LEN])
{
    char text[PPDB_CLUSTER_KEY_STRLEN + 1];
    ppdb_cluster_key_format(key, text);
    size_t n = strlen(text);
    text[n++] = '\n';
    int rc = write_secret_file(path, text, n);
    sodium_memzero(text, sizeof(text));
    return rc;
}

int ppdb_cluster_key_load(const char *path, uint8_t key[PPDB_CLUSTER_KEY_LEN])
{
    char text[256];
    int rc = read_secret_file(path, text, sizeof(text));
    if (rc == 0)
        rc = ppdb_cluster_key_parse(text, key) == 0 ? 0 : PPDB_ECORRUPT;
    sodium_memzero(text, sizeof(text));
    return rc;
}

int ppdb_cluster_key_from_environ(uint8_t key[PPDB_CLUSTER_KEY_LEN])
{
    const char *s = getenv(PPDB_CLUSTER_KEY_ENV);
    if (!s || !*s)
        return PPDB_ENOTFOUND;
    return ppdb_cluster_key_parse(s, key);
}
