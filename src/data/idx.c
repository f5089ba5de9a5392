/* IDX files (the MNIST format), plain or gzip-compressed, read through zlib. Only unsigned-byte
 * data is accepted: it is what every MNIST-family file holds. */
#include "../internal.h"

#define IDX_MAX_BYTES ((size_t)4 << 30)

ecp_status ecp_idx_read(const char *path, int *ndim, int64_t dims[4], uint8_t **data,
                        ecp_error *err)
{
    ECP_REQUIRE(path, err);
    ECP_REQUIRE(ndim, err);
    ECP_REQUIRE(dims, err);
    ECP_REQUIRE(data, err);
    *data = NULL;
    unsigned char *buf;
    size_t len;
    ecp_status s = ecp_read_file_gz(path, &buf, &len, IDX_MAX_BYTES, err);
    if (s)
        return s;
    if (len < 4 || buf[0] != 0 || buf[1] != 0) {
        free(buf);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: not an IDX file (bad magic)", path);
    }
    if (buf[2] != 0x08) {
        int t = buf[2];
        free(buf);
        return ecp_fail(err, ECP_ERR_UNSUPPORTED,
                        "%s: IDX data type 0x%02x not supported (only unsigned byte, 0x08)", path, t);
    }
    int nd = buf[3];
    if (nd < 1 || nd > 4) {
        free(buf);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: IDX with %d dimensions (expected 1 to 4)", path,
                        nd);
    }
    if (len < 4 + 4 * (size_t)nd) {
        free(buf);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: truncated IDX header", path);
    }
    uint64_t count = 1;
    for (int i = 0; i < nd; i++) {
        const unsigned char *p = buf + 4 + 4 * i;
        uint32_t d = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        dims[i] = d;
        /* Dimensions come from the file: check the product before it can overflow. */
        if (d && count > IDX_MAX_BYTES / d) {
            free(buf);
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: IDX dimensions overflow", path);
        }
        count *= d;
    }
    size_t off = 4 + 4 * (size_t)nd;
    if (len - off < count) {
        free(buf);
        return ecp_fail(err, ECP_ERR_FORMAT,
                        "%s: truncated IDX data (%llu values expected, %zu present)", path,
                        (unsigned long long)count, len - off);
    }
    uint8_t *d = ecp_alloc((size_t)count, 1, path, err);
    if (!d) {
        free(buf);
        return ECP_ERR_MEMORY;
    }
    memcpy(d, buf + off, (size_t)count);
    free(buf);
    *ndim = nd;
    *data = d;
    return ECP_OK;
}
