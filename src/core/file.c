/* File helpers: atomic writes, whole-file reads (plain or gzip), directories. */
#include "../internal.h"
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

ecp_status ecp_wfile_open(ecp_wfile *wf, const char *path, ecp_error *err)
{
    ECP_REQUIRE(wf, err);
    ECP_REQUIRE(path, err);
    memset(wf, 0, sizeof *wf);
    /* The rename would replace a symbolic link, device or directory entry: refuse. */
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return ecp_fail(err, ECP_ERR_IO, "%s: exists and is not a regular file", path);
    size_t n = strlen(path);
    wf->path = ecp_alloc(n + 1, 1, path, err);
    wf->tmp = ecp_alloc(n + 16, 1, path, err);
    if (!wf->path || !wf->tmp) {
        free(wf->path);
        free(wf->tmp);
        return ECP_ERR_MEMORY;
    }
    memcpy(wf->path, path, n + 1);
    /* The temporary sits beside the target so that rename() is atomic (same filesystem). */
    snprintf(wf->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(wf->tmp);
    if (fd < 0) {
        ecp_status s = ecp_fail(err, ECP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(wf->path);
        free(wf->tmp);
        memset(wf, 0, sizeof *wf);
        return s;
    }
    fchmod(fd, 0644);
    wf->fp = fdopen(fd, "wb");
    if (!wf->fp) {
        close(fd);
        unlink(wf->tmp);
        free(wf->path);
        free(wf->tmp);
        memset(wf, 0, sizeof *wf);
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    return ECP_OK;
}

ecp_status ecp_wfile_write(ecp_wfile *wf, const void *data, size_t n, ecp_error *err)
{
    ECP_REQUIRE(wf, err);
    ECP_REQUIRE(wf->fp, err);
    if (n && fwrite(data, 1, n, (FILE *)wf->fp) != n)
        return ecp_fail(err, ECP_ERR_IO, "%s: write failed: %s", wf->path, strerror(errno));
    return ECP_OK;
}

static void wfile_release(ecp_wfile *wf)
{
    free(wf->path);
    free(wf->tmp);
    memset(wf, 0, sizeof *wf);
}

ecp_status ecp_wfile_commit(ecp_wfile *wf, ecp_error *err)
{
    ECP_REQUIRE(wf, err);
    ECP_REQUIRE(wf->fp, err);
    FILE *f = wf->fp;
    wf->fp = NULL;
    int bad = fflush(f) != 0 || ferror(f);
    bad |= fclose(f) != 0;
    if (bad) {
        ecp_status s = ecp_fail(err, ECP_ERR_IO, "%s: write failed: %s", wf->path, strerror(errno));
        unlink(wf->tmp);
        wfile_release(wf);
        return s;
    }
    if (rename(wf->tmp, wf->path) != 0) {
        ecp_status s =
            ecp_fail(err, ECP_ERR_IO, "%s: cannot rename into place: %s", wf->path, strerror(errno));
        unlink(wf->tmp);
        wfile_release(wf);
        return s;
    }
    wfile_release(wf);
    return ECP_OK;
}

void ecp_wfile_abort(ecp_wfile *wf)
{
    if (!wf)
        return;
    if (wf->fp)
        fclose((FILE *)wf->fp);
    if (wf->tmp)
        unlink(wf->tmp);
    wfile_release(wf);
}

ecp_status ecp_read_file(const char *path, unsigned char **buf, size_t *len, size_t max_len,
                         ecp_error *err)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ecp_fail(err, ECP_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_len) {
        fclose(f);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: file too large (%lld bytes, limit %zu)", path,
                        (long long)st.st_size, max_len);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = ecp_alloc(n + 1, 1, path, err);
    if (!b) {
        fclose(f);
        return ECP_ERR_MEMORY;
    }
    if (n && fread(b, 1, n, f) != n) {
        free(b);
        fclose(f);
        return ecp_fail(err, ECP_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    b[n] = 0; /* text parsers may rely on a terminator */
    *buf = b;
    *len = n;
    return ECP_OK;
}

ecp_status ecp_read_file_gz(const char *path, unsigned char **buf, size_t *len, size_t max_len,
                            ecp_error *err)
{
    *buf = NULL;
    *len = 0;
    /* gzopen reads plain files transparently, so one path serves both. */
    gzFile g = gzopen(path, "rb");
    if (!g)
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    unsigned char *b = ecp_alloc(cap, 1, path, err);
    if (!b) {
        gzclose(g);
        return ECP_ERR_MEMORY;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max_len) {
                free(b);
                gzclose(g);
                return ecp_fail(err, ECP_ERR_FORMAT, "%s: data larger than %zu bytes", path,
                                max_len);
            }
            size_t ncap = cap * 2 > max_len ? max_len : cap * 2;
            unsigned char *nb = realloc(b, ncap);
            if (!nb) {
                free(b);
                gzclose(g);
                return ecp_fail(err, ECP_ERR_MEMORY, "%s: cannot allocate %zu bytes", path, ncap);
            }
            b = nb;
            cap = ncap;
        }
        unsigned want = (unsigned)((cap - n) > (1u << 30) ? (1u << 30) : (cap - n));
        int got = gzread(g, b + n, want);
        if (got < 0) {
            int zerr;
            const char *m = gzerror(g, &zerr);
            ecp_status s = ecp_fail(err, ECP_ERR_FORMAT, "%s: corrupt gzip data: %s", path, m);
            free(b);
            gzclose(g);
            return s;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    /* A truncated gzip stream reads as a short file with no error from gzread; gzclose_r then
     * reports Z_BUF_ERROR. */
    int zc = gzclose(g);
    if (zc != Z_OK) {
        free(b);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: truncated or corrupt gzip stream", path);
    }
    *buf = b;
    *len = n;
    return ECP_OK;
}

int ecp_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int ecp_dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

ecp_status ecp_mkdir_p(const char *path, ecp_error *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ecp_fail(err, ECP_ERR_ARG, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return ecp_fail(err, ECP_ERR_IO, "%s: cannot create directory: %s", buf,
                                strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    if (!ecp_dir_exists(buf))
        return ecp_fail(err, ECP_ERR_IO, "%s: exists and is not a directory", buf);
    return ECP_OK;
}

ecp_status ecp_cache_dir(char *buf, size_t n, ecp_error *err)
{
    ECP_REQUIRE(buf, err);
    const char *e = getenv("ECPRUNE_CACHE");
    int w;
    if (e && *e)
        w = snprintf(buf, n, "%s", e);
    else if ((e = getenv("XDG_CACHE_HOME")) && *e)
        w = snprintf(buf, n, "%s/ecprune", e);
    else if ((e = getenv("HOME")) && *e)
        w = snprintf(buf, n, "%s/.cache/ecprune", e);
    else
        w = snprintf(buf, n, "/tmp/ecprune-cache");
    if (w < 0 || (size_t)w >= n)
        return ecp_fail(err, ECP_ERR_ARG, "cache directory path too long");
    return ecp_mkdir_p(buf, err);
}
