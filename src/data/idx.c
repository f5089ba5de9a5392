/* IDX files (the MNIST format), plain or gzip-compressed, read through zlib. Only unsigned-byte
 * data is accepted: it is what every MNIST-family file holds. The header is read first and its
 * sizes checked against the memory budget, so a small gzip file cannot inflate into gigabytes
 * before anything looks at it. */
#include "../internal.h"

#define IDX_MAX_BYTES ((size_t)4 << 30)

static ecp_status read_header(void *g, const char *path, int *ndim, int64_t dims[4],
                              uint64_t *count, ecp_error *err)
{
    unsigned char h[4 + 16];
    size_t got;
    ecp_status s = ecp_gz_read(g, path, h, 4, &got, err);
    if (s)
        return s;
    if (got < 4 || h[0] != 0 || h[1] != 0)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: not an IDX file (bad magic)", path);
    if (h[2] != 0x08)
        return ecp_fail(err, ECP_ERR_UNSUPPORTED,
                        "%s: IDX data type 0x%02x not supported (only unsigned byte, 0x08)", path,
                        h[2]);
    int nd = h[3];
    if (nd < 1 || nd > 4)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: IDX with %d dimensions (expected 1 to 4)", path,
                        nd);
    if ((s = ecp_gz_read(g, path, h + 4, 4 * (size_t)nd, &got, err)))
        return s;
    if (got < 4 * (size_t)nd)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: truncated IDX header", path);
    *count = 1;
    for (int i = 0; i < nd; i++) {
        const unsigned char *p = h + 4 + 4 * i;
        uint32_t d = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        dims[i] = d;
        /* Dimensions come from the file: check the product before it can overflow. */
        if (d && *count > IDX_MAX_BYTES / d)
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: IDX dimensions overflow (more than %zu "
                            "values)", path, IDX_MAX_BYTES);
        *count *= d;
    }
    *ndim = nd;
    return ECP_OK;
}

/* Reads the file whole: its values into *data, or, with data NULL, only through (the sizes, the
 * gzip trailer's check), in pieces, copying the values of a compressed file to copy_fd when it
 * is >= 0. */
static ecp_status idx_load(const char *path, int *ndim, int64_t dims[4], uint8_t **data,
                           int copy_fd, int *copied, ecp_error *err)
{
    void *g;
    uint64_t count = 0;
    uint8_t *d = NULL;
    ecp_status s = ecp_gz_open(path, &g, err);
    if (s)
        return s;
    s = read_header(g, path, ndim, dims, &count, err);
    /* The caller converts the bytes to float: five bytes per value live at once. */
    char what[4200];
    snprintf(what, sizeof what, "%s: %llu values (as bytes, then as floats)", path,
             (unsigned long long)count);
    if (!s && data)
        s = ecp_budget_check(count * 5, what, err);
    if (!s && data && !(d = ecp_alloc((size_t)count, 1, path, err)))
        s = ECP_ERR_MEMORY;
    int copy = !s && !data && copy_fd >= 0 && !ecp_gz_direct(g);
    snprintf(what, sizeof what, "%s: the uncompressed copy in a temporary file", path);
    size_t got = 0;
    if (!s && d)
        s = ecp_gz_read(g, path, d, (size_t)count, &got, err);
    while (!s && !d && got < count) {
        unsigned char sink[65536];
        size_t k, want = count - got < sizeof sink ? (size_t)(count - got) : sizeof sink;
        s = ecp_gz_read(g, path, sink, want, &k, err);
        if (!s && copy)
            s = ecp_write_fd(copy_fd, what, sink, k, err);
        got += k;
        if (k < want)
            break;
    }
    if (!s && got < count)
        s = ecp_fail(err, ECP_ERR_FORMAT,
                     "%s: truncated IDX data (%llu values expected, %zu present)", path,
                     (unsigned long long)count, got);
    /* Data past the declared size is ignored, but read (in small pieces) up to the end of the
     * stream: only there does zlib check the CRC and length of the gzip trailer. */
    uint64_t extra = 0;
    while (!s && got == count) {
        unsigned char sink[65536];
        size_t k;
        s = ecp_gz_read(g, path, sink, sizeof sink, &k, err);
        if (k == 0)
            break;
        if ((extra += k) > IDX_MAX_BYTES)
            s = ecp_fail(err, ECP_ERR_FORMAT, "%s: more than %zu bytes after the IDX data",
                         path, IDX_MAX_BYTES);
    }
    ecp_status c = ecp_gz_close(g, path, s ? NULL : err);
    if (!s)
        s = c;
    if (s) {
        free(d);
        return s;
    }
    if (data)
        *data = d;
    if (copied)
        *copied = copy;
    return ECP_OK;
}

ecp_status ecp_idx_read(const char *path, int *ndim, int64_t dims[4], uint8_t **data,
                        ecp_error *err)
{
    ECP_REQUIRE(path, err);
    ECP_REQUIRE(ndim, err);
    ECP_REQUIRE(dims, err);
    ECP_REQUIRE(data, err);
    *data = NULL;
    return idx_load(path, ndim, dims, data, -1, NULL, err);
}

ecp_status ecp_idx_check(const char *path, int *ndim, int64_t dims[4], int copy_fd, int *copied,
                         ecp_error *err)
{
    return idx_load(path, ndim, dims, NULL, copy_fd, copied, err);
}
