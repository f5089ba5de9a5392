/* NumPy .npy reader and writer. The header is a Python dict literal; we accept exactly the
 * forms numpy writes ('descr', 'fortran_order', 'shape' in any order) and check every size
 * against the file length before trusting it. */
#include "../internal.h"
#include <ctype.h>
#include <float.h>
#include <errno.h>
#include <math.h>
#include <unistd.h>

#define NPY_MAX_FILE ((size_t)16 << 30)

static const char *find_key(const char *h, const char *key)
{
    const char *p = strstr(h, key);
    if (!p)
        return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == ':')
        p++;
    return p;
}

static ecp_status parse_header(const char *path, const char *h, ecp_npy *out, ecp_error *err)
{
    const char *d = find_key(h, "'descr'");
    if (!d)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: .npy header has no 'descr'", path);
    if (!strncmp(d, "'<f4'", 5))
        out->dtype = ECP_NPY_F4;
    else if (!strncmp(d, "'<f8'", 5))
        out->dtype = ECP_NPY_F8;
    else if (!strncmp(d, "'<i8'", 5))
        out->dtype = ECP_NPY_I8;
    else {
        char got[16] = {0};
        sscanf(d, "%15[^,}]", got);
        return ecp_fail(err, ECP_ERR_UNSUPPORTED,
                        "%s: dtype %s not supported (float32 '<f4', float64 '<f8', int64 '<i8')",
                        path, got);
    }
    const char *f = find_key(h, "'fortran_order'");
    if (!f)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: .npy header has no 'fortran_order'", path);
    if (!strncmp(f, "True", 4))
        return ecp_fail(err, ECP_ERR_UNSUPPORTED,
                        "%s: Fortran-ordered arrays are not supported (save with C order)", path);
    if (strncmp(f, "False", 5))
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: bad 'fortran_order' value", path);
    const char *s = find_key(h, "'shape'");
    if (!s || *s != '(')
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: .npy header has no 'shape' tuple", path);
    s++;
    int64_t dims[3];
    int nd = 0;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == ')')
            break;
        if (!isdigit((unsigned char)*s))
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: malformed shape in .npy header", path);
        char *end;
        long long v = strtoll(s, &end, 10);
        if (v < 0 || v > ((int64_t)1 << 40))
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: dimension %lld out of range", path, v);
        if (nd == 3)
            return ecp_fail(err, ECP_ERR_UNSUPPORTED, "%s: arrays of more than 2 dimensions are "
                                                      "not supported", path);
        dims[nd++] = v;
        s = end;
        while (*s == ' ')
            s++;
        if (*s == ',')
            s++;
        else if (*s != ')')
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: malformed shape in .npy header", path);
    }
    if (nd == 0 || nd > 2)
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "%s: expected a 1-D or 2-D array, got %d-D", path,
                        nd);
    out->ndim = nd;
    out->shape[0] = dims[0];
    out->shape[1] = nd == 2 ? dims[1] : 1;
    return ECP_OK;
}

/* The header at the start of buf (n bytes of a file of file_len bytes) into out (data NULL),
 * and where the data start; checks the data the shape needs against the file's length. */
static ecp_status npy_header(const char *path, const unsigned char *buf, size_t n,
                             uint64_t file_len, ecp_npy *out, size_t *data_at, ecp_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
    int major = buf[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12)
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: truncated .npy header", path);
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hstart = 12;
    } else {
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "%s: .npy version %d not supported", path, major);
    }
    if (hlen > n - hstart || hlen > (1 << 20))
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: truncated .npy header", path);
    char *h = ecp_alloc(hlen + 1, 1, path, err);
    if (!h)
        return ECP_ERR_MEMORY;
    memcpy(h, buf + hstart, hlen);
    h[hlen] = 0;
    ecp_status s = parse_header(path, h, out, err);
    free(h);
    if (s)
        return s;
    size_t esz = out->dtype == ECP_NPY_F4 ? 4 : 8;
    uint64_t data_len = file_len - hstart - hlen;
    /* Each dimension is <= 2^40, so the product fits in 80 bits: divide instead of multiply. */
    if (out->shape[1] && (uint64_t)out->shape[0] > (data_len / esz) / (uint64_t)out->shape[1])
        return ecp_fail(err, ECP_ERR_FORMAT,
                        "%s: truncated: shape (%lld, %lld) needs more data than the %llu bytes "
                        "the file holds", path, (long long)out->shape[0], (long long)out->shape[1],
                        (unsigned long long)data_len);
    *data_at = hstart + hlen;
    return ECP_OK;
}

ecp_status ecp_npy_read(const char *path, ecp_npy *out, ecp_error *err)
{
    ECP_REQUIRE(path, err);
    ECP_REQUIRE(out, err);
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t len, at;
    ecp_status s = ecp_read_file(path, &buf, &len, NPY_MAX_FILE, err);
    if (!s && !(s = npy_header(path, buf, len, len, out, &at, err))) {
        size_t count = (size_t)out->shape[0] * (size_t)out->shape[1],
               esz = out->dtype == ECP_NPY_F4 ? 4 : 8;
        if (!(out->data = ecp_alloc(count, esz, path, err)))
            s = ECP_ERR_MEMORY;
        else
            memcpy(out->data, buf + at, count * esz);
    }
    free(buf);
    return s;
}

ecp_status ecp_npy_open(const char *path, ecp_npy *out, int *fd, int64_t *data_at,
                        ecp_error *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *buf = NULL;
    size_t n = 12 + ((size_t)1 << 20), got = 0, at = 0; /* the longest header accepted */
    ecp_status s = ecp_open_read(path, fd, err);
    if (s)
        return s;
    int64_t len = lseek(*fd, 0, SEEK_END);
    if (len < 0)
        s = ecp_fail(err, ECP_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    else if (!(buf = ecp_alloc(n, 1, path, err)))
        s = ECP_ERR_MEMORY;
    if (!s)
        s = ecp_pread_full(*fd, path, buf, n, 0, &got, err);
    if (!s)
        s = npy_header(path, buf, got, (uint64_t)len, out, &at, err);
    free(buf);
    if (s) {
        close(*fd);
        *fd = -1;
    }
    *data_at = (int64_t)at;
    return s;
}

void ecp_npy_release(ecp_npy *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

ecp_status ecp_npy_to_f32(const ecp_npy *a, const char *path, float **out, ecp_error *err)
{
    ECP_REQUIRE(a, err);
    ECP_REQUIRE(out, err);
    size_t n = (size_t)a->shape[0] * (size_t)a->shape[1];
    float *f = ecp_alloc(n, sizeof *f, path, err);
    if (!f)
        return ECP_ERR_MEMORY;
    for (size_t i = 0; i < n; i++) {
        switch (a->dtype) {
        case ECP_NPY_F4: f[i] = ((const float *)a->data)[i]; break;
        case ECP_NPY_F8: {
            double v = ((const double *)a->data)[i];
            if (isfinite(v) && fabs(v) > FLT_MAX) {
                free(f);
                return ecp_fail(err, ECP_ERR_NUMERIC, "%s: value %g at row %zu, column %zu is "
                                "beyond the float32 range", path, v, i / (size_t)a->shape[1],
                                i % (size_t)a->shape[1]);
            }
            f[i] = (float)v;
            break;
        }
        case ECP_NPY_I8: f[i] = (float)((const int64_t *)a->data)[i]; break;
        }
    }
    *out = f;
    return ECP_OK;
}

ecp_status ecp_npy_to_labels(const ecp_npy *a, const char *path, int32_t **out, ecp_error *err)
{
    ECP_REQUIRE(a, err);
    ECP_REQUIRE(out, err);
    if (a->dtype != ECP_NPY_I8)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: class labels must be int64", path);
    if (a->shape[1] != 1)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: labels must be N or N x 1, not %lld x %lld", path,
                        (long long)a->shape[0], (long long)a->shape[1]);
    size_t n = (size_t)a->shape[0];
    int32_t *l = ecp_alloc(n, sizeof *l, path, err);
    if (!l)
        return ECP_ERR_MEMORY;
    for (size_t i = 0; i < n; i++) {
        int64_t v = ((const int64_t *)a->data)[i];
        if (v < 0 || v > 1000000) {
            free(l);
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: label %lld of row %zu out of range", path,
                            (long long)v, i);
        }
        l[i] = (int32_t)v;
    }
    *out = l;
    return ECP_OK;
}

static ecp_status npy_write(const char *path, const char *descr, const void *data, size_t esz,
                            int64_t rows, int64_t cols, ecp_error *err)
{
    char h[256];
    int hl = cols > 0 ? snprintf(h, sizeof h,
                                 "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %lld), }",
                                 descr, (long long)rows, (long long)cols)
                      : snprintf(h, sizeof h,
                                 "{'descr': '%s', 'fortran_order': False, 'shape': (%lld,), }",
                                 descr, (long long)rows);
    /* Pad with spaces so that the data starts at a multiple of 64 bytes, ending in '\n'. */
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    int hlen = hl + pad + 1;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    ecp_wfile wf;
    ecp_status s = ecp_wfile_open(&wf, path, err);
    if (s)
        return s;
    char spaces[64];
    memset(spaces, ' ', sizeof spaces);
    size_t n = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    if ((s = ecp_wfile_write(&wf, pre, 10, err)) || (s = ecp_wfile_write(&wf, h, (size_t)hl, err)) ||
        (s = ecp_wfile_write(&wf, spaces, (size_t)pad, err)) ||
        (s = ecp_wfile_write(&wf, "\n", 1, err)) ||
        (s = ecp_wfile_write(&wf, data, n * esz, err))) {
        ecp_wfile_abort(&wf);
        return s;
    }
    return ecp_wfile_commit(&wf, err);
}

ecp_status ecp_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols,
                             ecp_error *err)
{
    ECP_REQUIRE(path, err);
    ECP_REQUIRE(data, err);
    return npy_write(path, "<f4", data, 4, rows, cols, err);
}

ecp_status ecp_npy_write_i64(const char *path, const int64_t *data, int64_t n, ecp_error *err)
{
    ECP_REQUIRE(path, err);
    ECP_REQUIRE(data, err);
    return npy_write(path, "<i8", data, 8, n, 0, err);
}
