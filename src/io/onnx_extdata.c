/* ONNX external data: tensor bytes kept in a file beside the model (location, offset, length,
 * as TensorProto.external_data describes). The model and its data file are both untrusted: the
 * location must stay inside the model's directory, and offset and length are checked against
 * the data file's size before anything is allocated or read. */
#include "onnx_store.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXT_PATH_MAX 4096
/* The spec asks for page-multiple offsets so that a runtime can mmap a tensor; small tensors
 * (biases) are packed tighter, where mmap would not pay anyway. */
#define EXT_PAGE 4096
#define EXT_SMALL_ALIGN 16

int onnx_ext_is_external(const Onnx__TensorProto *t)
{
    return (t->has_data_location &&
            t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
           t->n_external_data;
}

/* ------------------------------------------------------------------ reading */

typedef struct {
    const char *location;
    uint64_t offset, length;
    int has_offset, has_length;
} ext_ref;

/* A decimal count as the spec stores it (a string of digits), at most INT64_MAX. */
static int parse_count(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (*s < '0' || *s > '9' || v > ((uint64_t)INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static ecp_status ext_entry(const char *mp, const char *what, const Onnx__StringStringEntryProto *e,
                            ext_ref *r, ecp_error *err)
{
    const char *k = e->key ? e->key : "", *v = e->value ? e->value : "";
    uint64_t *dst = NULL;
    int *has = NULL;
    if (!strcmp(k, "location")) {
        if (r->location)
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: external data names two locations",
                            mp, what);
        r->location = v;
        return ECP_OK;
    }
    if (!strcmp(k, "offset")) {
        dst = &r->offset;
        has = &r->has_offset;
    } else if (!strcmp(k, "length")) {
        dst = &r->length;
        has = &r->has_length;
    } else {
        return ECP_OK; /* "checksum" and keys of later versions are not needed to read */
    }
    if (*has)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: external data gives %s twice", mp, what, k);
    if (parse_count(v, dst))
        return ecp_fail(err, ECP_ERR_FORMAT,
                        "%s: %s: external data %s '%.40s' is not a byte count", mp, what, k, v);
    *has = 1;
    return ECP_OK;
}

static ecp_status ext_ref_parse(const char *mp, const Onnx__TensorProto *t, const char *what,
                                ext_ref *r, ecp_error *err)
{
    memset(r, 0, sizeof *r);
    if (!(t->has_data_location &&
          t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
        return ecp_fail(err, ECP_ERR_FORMAT,
                        "%s: %s has external_data entries but data_location is not EXTERNAL",
                        mp, what);
    if (t->has_raw_data || t->n_float_data || t->n_int64_data || t->n_int32_data ||
        t->n_double_data)
        return ecp_fail(err, ECP_ERR_FORMAT,
                        "%s: %s holds its data both inline and in an external file", mp, what);
    if (t->n_external_data > 16)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s has %zu external_data entries", mp, what,
                        t->n_external_data);
    for (size_t i = 0; i < t->n_external_data; i++) {
        ecp_status s = ext_entry(mp, what, t->external_data[i], r, err);
        if (s)
            return s;
    }
    if (!r->location || !*r->location)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s is EXTERNAL but names no location", mp,
                        what);
    return ECP_OK;
}

/* The data file's path: the model's directory + location, which must be relative and must not
 * climb out with "..". Links are checked after resolution (ext_open). */
static ecp_status ext_path(const char *mp, const char *what, const char *loc, char *full,
                           char *dir, ecp_error *err)
{
    if (loc[0] == '/')
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: external data location '%.200s' is an "
                        "absolute path; it must be relative to the model's directory", mp, what,
                        loc);
    for (const char *p = loc; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: external data location '%.200s' "
                            "leaves the model's directory (..)", mp, what, loc);
        p += n;
        p += *p == '/';
    }
    const char *slash = strrchr(mp, '/');
    int w;
    if (!slash)
        w = snprintf(dir, EXT_PATH_MAX, ".");
    else if (slash == mp)
        w = snprintf(dir, EXT_PATH_MAX, "/");
    else
        w = snprintf(dir, EXT_PATH_MAX, "%.*s", (int)(slash - mp), mp);
    if (w < 0 || w >= EXT_PATH_MAX ||
        (w = snprintf(full, EXT_PATH_MAX, "%s/%s", dir, loc)) < 0 || w >= EXT_PATH_MAX)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: external data path too long", mp, what);
    return ECP_OK;
}

/* Opens the data file if, with every link resolved, it still lies inside the model's
 * directory (a link to a file elsewhere in that directory is fine). */
static ecp_status ext_open(const char *mp, const char *what, const char *loc, const char *full,
                           const char *dir, int *fd, uint64_t *size, ecp_error *err)
{
    char *rdir = realpath(dir, NULL), *rfile = rdir ? realpath(full, NULL) : NULL;
    ecp_status s = ECP_OK;
    if (!rdir || !rfile) {
        s = ecp_fail(err, ECP_ERR_IO, "%s: %s: external data file '%.200s': %s", mp, what, loc,
                     strerror(errno));
    } else {
        size_t n = strlen(rdir);
        int inside = !strncmp(rfile, rdir, n) && (rfile[n] == '/' || (n == 1 && rdir[0] == '/'));
        if (!inside)
            s = ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: external data file '%.200s' is a link "
                         "that leaves the model's directory", mp, what, loc);
    }
    /* O_NOFOLLOW: the resolved path has no links, so one appearing now is refused. */
    if (!s && (*fd = open(rfile, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
        s = ecp_fail(err, ECP_ERR_IO, "%s: %s: external data file '%.200s': %s", mp, what, loc,
                     strerror(errno));
    free(rdir);
    free(rfile);
    if (s)
        return s;
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        return ecp_fail(err, ECP_ERR_IO, "%s: %s: external data file '%.200s' is not a "
                        "regular file", mp, what, loc);
    }
    *size = (uint64_t)st.st_size;
    return ECP_OK;
}

static ecp_status ext_read(const char *mp, const Onnx__TensorProto *t, const char *what,
                           size_t need, uint8_t **out, ecp_error *err)
{
    ext_ref r;
    char full[EXT_PATH_MAX], dir[EXT_PATH_MAX];
    int fd = -1;
    uint64_t size = 0;
    ecp_status s = ext_ref_parse(mp, t, what, &r, err);
    if (!s)
        s = ext_path(mp, what, r.location, full, dir, err);
    if (!s)
        s = ext_open(mp, what, r.location, full, dir, &fd, &size, err);
    if (s)
        return s;
    uint64_t len = r.has_length ? r.length : (r.offset <= size ? size - r.offset : 0);
    if (r.offset > size || len > size - r.offset)
        s = ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: external data file '%.200s' has %llu bytes, "
                     "offset %llu + length %llu go past its end", mp, what, r.location,
                     (unsigned long long)size, (unsigned long long)r.offset,
                     (unsigned long long)len);
    else if (len != need)
        s = ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: external data holds %llu bytes, its "
                     "dimensions need %zu", mp, what, (unsigned long long)len, need);
    else if (!(*out = ecp_alloc(need ? need : 1, 1, mp, err)))
        s = ECP_ERR_MEMORY;
    if (!s) {
        char src[EXT_PATH_MAX + 512];
        snprintf(src, sizeof src, "%s: %s: external data file '%.200s'", mp, what, r.location);
        size_t got;
        if (!(s = ecp_pread_full(fd, src, *out, need, (int64_t)r.offset, &got, err)) &&
            got < need)
            s = ecp_fail(err, ECP_ERR_IO, "%s: read failed (file shrank)", src);
        if (s) {
            free(*out);
            *out = NULL;
        }
    }
    close(fd);
    return s;
}

ecp_status onnx_tensor_bytes(const char *model_path, const Onnx__TensorProto *t,
                             const char *what, size_t need, const uint8_t **bytes,
                             uint8_t **owned, ecp_error *err)
{
    *bytes = NULL;
    *owned = NULL;
    if (onnx_ext_is_external(t)) {
        ecp_status s = ext_read(model_path, t, what, need, owned, err);
        *bytes = *owned;
        return s;
    }
    if (!t->has_raw_data)
        return ECP_OK;
    if (t->raw_data.len != need)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: raw_data holds %zu bytes, its dimensions "
                        "need %zu", model_path, what, t->raw_data.len, need);
    *bytes = t->raw_data.data;
    return ECP_OK;
}

/* ------------------------------------------------------------------ writing */

typedef struct {
    Onnx__StringStringEntryProto e[3];
    Onnx__StringStringEntryProto *p[3];
    char offset[24], length[24];
} ext_entries;

/* The initializers whose bytes are inline raw_data. Sparse initializers stay inline: they are
 * the small form already, and onnx (1.12) neither loads nor checks their external data. */
static size_t ext_collect(Onnx__GraphProto *g, Onnx__TensorProto **out)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->has_raw_data && g->initializer[i]->raw_data.len)
            out[n++] = g->initializer[i];
    return n;
}

/* The data file: beside the file the model path finally names (a link to a model is followed,
 * as for the model itself), called after it: model.onnx -> model.onnx.data. */
static ecp_status ext_data_path(const char *path, char *data, char *loc, ecp_error *err)
{
    struct stat st;
    char *real = NULL;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && !(real = realpath(path, NULL)))
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot resolve: %s", path, strerror(errno));
    const char *target = real ? real : path;
    const char *slash = strrchr(target, '/');
    int w1 = snprintf(loc, EXT_PATH_MAX, "%s.data", slash ? slash + 1 : target);
    int w2 = snprintf(data, EXT_PATH_MAX, "%s.data", target);
    free(real);
    if (w1 < 0 || w1 >= EXT_PATH_MAX || w2 < 0 || w2 >= EXT_PATH_MAX)
        return ecp_fail(err, ECP_ERR_ARG, "%s: path too long for an external data file", path);
    /* The data file is replaced, never written through: a link there could point anywhere. */
    if (lstat(data, &st) == 0 && S_ISLNK(st.st_mode))
        return ecp_fail(err, ECP_ERR_IO, "%s: is a symbolic link; refusing to write the "
                        "model's external data through it", data);
    return ecp_output_check(data, err);
}

ecp_status ecp_onnx_output_check(const char *path, const ecp_onnx_options *opts,
                                 ecp_error *err)
{
    char data[EXT_PATH_MAX], loc[EXT_PATH_MAX];
    ECP_REQUIRE(path, err);
    ecp_status s = ecp_output_check(path, err);
    if (!s && opts && opts->external_data)
        s = ext_data_path(path, data, loc, err);
    return s;
}

/* Appends t's bytes to the data file at the next aligned offset and points t at them. */
static ecp_status ext_move(ecp_wfile *wf, Onnx__TensorProto *t, ext_entries *x, char *loc,
                           uint64_t *at, ecp_error *err)
{
    static const uint8_t zeros[EXT_PAGE];
    size_t len = t->raw_data.len;
    uint64_t align = len >= EXT_PAGE ? EXT_PAGE : EXT_SMALL_ALIGN;
    size_t pad = (size_t)((align - *at % align) % align);
    ecp_status s = ecp_wfile_write(wf, zeros, pad, err);
    if (!s)
        s = ecp_wfile_write(wf, t->raw_data.data, len, err);
    if (s)
        return s;
    *at += pad;
    snprintf(x->offset, sizeof x->offset, "%llu", (unsigned long long)*at);
    snprintf(x->length, sizeof x->length, "%zu", len);
    *at += len;
    const char *keys[3] = {"location", "offset", "length"};
    char *vals[3] = {loc, x->offset, x->length};
    for (int i = 0; i < 3; i++) {
        onnx__string_string_entry_proto__init(&x->e[i]);
        x->e[i].key = (char *)keys[i];
        x->e[i].value = vals[i];
        x->p[i] = &x->e[i];
    }
    t->has_raw_data = 0;
    t->raw_data.len = 0;
    t->raw_data.data = NULL;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    t->n_external_data = 3;
    t->external_data = x->p;
    return ECP_OK;
}

/* Both files complete in their temporaries before either is renamed into place. */
static ecp_status ext_write(Onnx__ModelProto *model, Onnx__TensorProto **ts, size_t n,
                            ext_entries *xs, char *loc, const char *data, const char *path,
                            ecp_error *err)
{
    ecp_wfile dw, mw;
    ecp_status s = ecp_wfile_open(&dw, data, err);
    if (s)
        return s;
    uint64_t at = 0;
    for (size_t i = 0; i < n && !s; i++)
        s = ext_move(&dw, ts[i], &xs[i], loc, &at, err);
    size_t size = onnx__model_proto__get_packed_size(model);
    if (!s && size > ECP_ONNX_MAX_BYTES)
        s = ecp_fail(err, ECP_ERR_UNSUPPORTED, "%s: the graph alone needs %zu bytes, more than "
                     "the 2 GiB a protobuf can hold", path, size);
    if (!s && !(s = ecp_wfile_open(&mw, path, err))) {
        s = onnx_pack_model(model, &mw, err);
        if (!s && fflush((FILE *)mw.fp) != 0)
            s = ecp_fail(err, ECP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        if (!s)
            s = ecp_wfile_commit(&dw, err);
        if (s)
            ecp_wfile_abort(&mw);
        else
            return ecp_wfile_commit(&mw, err);
    }
    ecp_wfile_abort(&dw); /* a no-op once committed */
    return s;
}

ecp_status onnx_ext_save(Onnx__ModelProto *model, const char *path, ecp_error *err)
{
    Onnx__GraphProto *g = model->graph;
    char data[EXT_PATH_MAX], loc[EXT_PATH_MAX];
    ecp_status s = ext_data_path(path, data, loc, err);
    if (s)
        return s;
    size_t max = g->n_initializer;
    Onnx__TensorProto **ts = ecp_alloc(max ? max : 1, sizeof *ts, path, err);
    ext_entries *xs = ecp_zalloc(max ? max : 1, sizeof *xs, path, err);
    if (!ts || !xs)
        s = ECP_ERR_MEMORY;
    else
        s = ext_write(model, ts, ext_collect(g, ts), xs, loc, data, path, err);
    free(ts);
    free(xs);
    return s;
}
