/* File helpers: output checks and atomic writes, whole-file reads, gzip streams, directories. */
#include "../internal.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* The directory part of path ("." when there is none), in buf. */
static void dir_of(const char *path, char *buf, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buf, n, ".");
    else if (slash == path)
        snprintf(buf, n, "/");
    else
        snprintf(buf, n, "%.*s", (int)(slash - path), path);
}

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

ecp_status ecp_output_check(const char *path, ecp_error *err)
{
    struct stat st;
    if (!path || !*path)
        return ecp_fail(err, ECP_ERR_ARG, "empty output file name");
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return ecp_fail(err, ECP_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        char dir[4096];
        dir_of(path, dir, sizeof dir);
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return ecp_fail(err, ECP_ERR_IO, "%s: cannot write: directory %s does not exist",
                            path, dir);
        if (access(dir, W_OK) != 0)
            return ecp_fail(err, ECP_ERR_IO, "%s: cannot write: %s: %s", path, dir,
                            strerror(errno));
        return ECP_OK;
    }
    /* A link is followed (the file it names is replaced, the link stays), as a shell's `>`
     * would; a link to nothing is refused rather than guessed at. */
    if (S_ISLNK(st.st_mode) && stat(path, &st) != 0)
        return ecp_fail(err, ECP_ERR_IO,
                        "%s: is a symbolic link to a missing file; refusing to write through it",
                        path);
    if (!S_ISREG(st.st_mode))
        return ecp_fail(err, ECP_ERR_IO,
                        "%s: exists and is %s; ecprune only replaces regular files", path,
                        file_kind(st.st_mode));
    return ECP_OK;
}

/* Temporary files are named TARGET.ecprune-tmp.PID.XXXXXX. A process killed while writing
 * (kill -9, power loss) leaves one behind; the next write to the same target removes those
 * whose process is gone. Only our own regular files are touched. */
static void remove_stale_temps(const char *target)
{
    char dir[4096];
    dir_of(target, dir, sizeof dir);
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    size_t blen = strlen(base);
    static const char tag[] = ".ecprune-tmp.";
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, blen) || strncmp(nm + blen, tag, sizeof tag - 1))
            continue;
        char *end;
        long pid = strtol(nm + blen + sizeof tag - 1, &end, 10);
        if (pid <= 0 || *end != '.' || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char full[8192];
        struct stat st;
        if (snprintf(full, sizeof full, "%s/%s", dir, nm) >= (int)sizeof full)
            continue;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid())
            unlink(full);
    }
    closedir(d);
}

ecp_status ecp_wfile_open(ecp_wfile *wf, const char *path, ecp_error *err)
{
    ECP_REQUIRE(wf, err);
    ECP_REQUIRE(path, err);
    memset(wf, 0, sizeof *wf);
    ecp_status s = ecp_output_check(path, err);
    if (s)
        return s;
    struct stat st;
    char *real = NULL;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && !(real = realpath(path, NULL)))
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot resolve: %s", path, strerror(errno));
    const char *target = real ? real : path;
    size_t n = strlen(target);
    wf->path = ecp_alloc(n + 1, 1, path, err);
    wf->tmp = ecp_alloc(n + 48, 1, path, err);
    if (!wf->path || !wf->tmp) {
        free(real);
        free(wf->path);
        free(wf->tmp);
        memset(wf, 0, sizeof *wf);
        return ECP_ERR_MEMORY;
    }
    memcpy(wf->path, target, n + 1);
    free(real);
    remove_stale_temps(wf->path);
    /* The temporary sits beside the target so that rename() is atomic (same filesystem). */
    snprintf(wf->tmp, n + 48, "%s.ecprune-tmp.%ld.XXXXXX", wf->path, (long)getpid());
    int fd = mkstemp(wf->tmp);
    if (fd < 0) {
        s = ecp_fail(err, ECP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
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
    /* Checked again: the target may have been replaced while we worked. */
    ecp_status chk = ecp_output_check(wf->path, err);
    if (chk) {
        unlink(wf->tmp);
        wfile_release(wf);
        return chk;
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

/* Opens path for reading; refuses anything but a regular file without blocking on a FIFO (an
 * open of a FIFO for reading waits for a writer unless O_NONBLOCK). */
static ecp_status open_regular(const char *path, int *fd, struct stat *st, ecp_error *err)
{
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0)
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(*fd, st) != 0) {
        int e = errno;
        close(*fd);
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(*fd);
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot read: it is %s", path,
                        file_kind(st->st_mode));
    }
    int fl = fcntl(*fd, F_GETFL);
    if (fl >= 0)
        fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
    return ECP_OK;
}

ecp_status ecp_read_file(const char *path, unsigned char **buf, size_t *len, size_t max_len,
                         ecp_error *err)
{
    *buf = NULL;
    *len = 0;
    struct stat st;
    int fd;
    ecp_status s = open_regular(path, &fd, &st, err);
    if (s)
        return s;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
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

ecp_status ecp_gz_open(const char *path, void **gz, ecp_error *err)
{
    struct stat st;
    int fd;
    *gz = NULL;
    ecp_status s = open_regular(path, &fd, &st, err);
    if (s)
        return s;
    /* gzdopen reads plain files transparently, so one path serves both. */
    gzFile g = gzdopen(fd, "rb");
    if (!g) {
        close(fd);
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    *gz = g;
    return ECP_OK;
}

ecp_status ecp_gz_read(void *gz, const char *path, void *buf, size_t n, size_t *got,
                       ecp_error *err)
{
    *got = 0;
    while (*got < n) {
        size_t left = n - *got;
        unsigned want = (unsigned)(left > (1u << 30) ? (1u << 30) : left);
        int r = gzread((gzFile)gz, (unsigned char *)buf + *got, want);
        if (r < 0) {
            int zerr;
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: corrupt gzip data: %s", path,
                            gzerror((gzFile)gz, &zerr));
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return ECP_OK;
}

int ecp_gz_direct(void *gz)
{
    return gzdirect((gzFile)gz);
}

ecp_status ecp_open_read(const char *path, int *fd, ecp_error *err)
{
    struct stat st;
    return open_regular(path, fd, &st, err);
}

ecp_status ecp_temp_fd(int *fd, ecp_error *err)
{
    const char *dir = getenv("TMPDIR");
    dir = dir && *dir ? dir : "/tmp";
    *fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (*fd >= 0)
        return ECP_OK;
    char path[4200]; /* file systems without O_TMPFILE: create, then unlink at once */
    snprintf(path, sizeof path, "%s/ecprune-XXXXXX", dir);
    if ((*fd = mkostemp(path, O_CLOEXEC)) < 0)
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot create a temporary file: %s", dir,
                        strerror(errno));
    unlink(path);
    return ECP_OK;
}

ecp_status ecp_write_fd(int fd, const char *what, const void *buf, size_t n, ecp_error *err)
{
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, (const char *)buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ecp_fail(err, ECP_ERR_IO, "%s: cannot write: %s", what,
                            w < 0 ? strerror(errno) : "no space");
        done += (size_t)w;
    }
    return ECP_OK;
}

ecp_status ecp_pread_full(int fd, const char *path, void *buf, size_t n, int64_t off,
                          size_t *got, ecp_error *err)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = pread(fd, (char *)buf + *got, n - *got, (off_t)(off + (int64_t)*got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ecp_fail(err, ECP_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return ECP_OK;
}

ecp_status ecp_gz_close(void *gz, const char *path, ecp_error *err)
{
    /* A truncated gzip stream reads as a short file with no error from gzread; gzclose_r then
     * reports Z_BUF_ERROR. */
    if (gzclose((gzFile)gz) != Z_OK)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: truncated or corrupt gzip stream", path);
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
