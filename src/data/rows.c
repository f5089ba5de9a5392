/* Datasets whose rows are not all in memory: training inputs in IDX or .npy files, read from
 * the file when a pass asks for them, and views (the calibration set: training rows in the shuffled
 * order) that copy their rows from the base a chunk at a time. A pass over either holds one
 * chunk of rows, whatever the number of samples. */
#include "../internal.h"
#include <float.h>
#include <math.h>
#include <unistd.h>

struct ecp_rows {
    /* a file of inputs (base NULL); the labels or targets are the dataset's, in memory */
    char *path;
    int fd;          /* the file, or its uncompressed copy */
    int64_t data_at; /* byte offset of row 0 in fd */
    int esz;         /* bytes per value: 1 (IDX bytes, scaled to [0, 1]), 4 or 8 (.npy floats) */
    void *raw;       /* one row as stored */
    /* a view: rows idx[0..n) of base */
    const ecp_dataset *base;
    int64_t *idx;
    /* the fetch buffer: rows [lo, hi), chunk rows at most */
    int64_t chunk, lo, hi;
    float *x, *y;
    int32_t *label;
    int64_t *seq; /* the row numbers of a fetch from the file itself */
};

void ecp_rows_free(ecp_rows *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->path);
    free(r->raw);
    free(r->idx);
    free(r->x);
    free(r->y);
    free(r->label);
    free(r->seq);
    free(r);
}

/* A multiple of every calibration batch (256 samples) and of a few workers' share of them, so
 * that chunking does not change which batches a thread sums. */
#define CHUNK_MULTIPLE 1024

static int64_t chunk_rows(const ecp_dataset *d, size_t chunk_bytes)
{
    size_t row = (size_t)d->n_in * sizeof(float);
    int64_t c = (int64_t)(chunk_bytes / row) / CHUNK_MULTIPLE * CHUNK_MULTIPLE;
    c = c < CHUNK_MULTIPLE ? CHUNK_MULTIPLE : c;
    return c < d->n ? c : d->n;
}

static ecp_dataset *rows_dataset(int64_t n, int n_in, int n_out, int is_class, ecp_error *err)
{
    ecp_dataset *d = ecp_zalloc(1, sizeof *d, "dataset", err);
    if (d && !(d->rows = ecp_zalloc(1, sizeof *d->rows, "dataset", err))) {
        free(d);
        return NULL;
    }
    if (d) {
        *d = (ecp_dataset){.n = n, .n_in = n_in, .n_out = n_out, .is_class = is_class,
                           .rows = d->rows};
        d->rows->fd = -1;
    }
    return d;
}

ecp_status ecp_dataset_file_rows(const char *path, int fd, int64_t data_at, int esz,
                                 int64_t n, int feat, int n_out, int32_t *label, float *y,
                                 ecp_dataset **out, ecp_error *err)
{
    *out = NULL;
    ecp_dataset *d = rows_dataset(n, feat, n_out, label != NULL, err);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return ECP_ERR_MEMORY;
    }
    ecp_rows *r = d->rows;
    r->fd = fd;
    ecp_status s = ECP_OK;
    if (!(r->path = strdup(path)))
        s = ecp_fail(err, ECP_ERR_MEMORY, "%s: out of memory", path);
    else if (!(r->raw = ecp_alloc((size_t)feat, (size_t)esz, path, err)))
        s = ECP_ERR_MEMORY;
    else if (r->fd < 0)
        s = ecp_open_read(path, &r->fd, err);
    if (s) {
        ecp_dataset_free(d);
        return s;
    }
    r->data_at = data_at;
    r->esz = esz;
    r->chunk = chunk_rows(d, ECP_CHUNK_BYTES);
    d->label = label;
    d->y = y;
    *out = d;
    return ECP_OK;
}

ecp_status ecp_dataset_view(const ecp_dataset *base, int64_t *idx, int64_t n, size_t chunk_bytes,
                            ecp_dataset **out, ecp_error *err)
{
    *out = NULL;
    if (n < 0 || n > base->n) {
        free(idx);
        return ecp_fail(err, ECP_ERR_ARG, "view of %lld rows of a dataset of %lld", (long long)n,
                        (long long)base->n);
    }
    ecp_dataset *d = rows_dataset(n, base->n_in, base->n_out, base->is_class, err);
    if (!d) {
        free(idx);
        return ECP_ERR_MEMORY;
    }
    d->rows->base = base;
    d->rows->idx = idx;
    d->rows->chunk = chunk_rows(d, chunk_bytes);
    *out = d;
    return ECP_OK;
}

int64_t ecp_dataset_chunk_rows(const ecp_dataset *d)
{
    return d->rows ? d->rows->chunk : d->n;
}

typedef struct {
    int64_t row, dst;
} pick;

static int pick_cmp(const void *a, const void *b)
{
    const pick *p = a, *q = b;
    return p->row != q->row ? (p->row < q->row ? -1 : 1) : (p->dst > q->dst) - (p->dst < q->dst);
}

/* One row as stored into floats, with the checks the loaders make of whole files. */
static ecp_status row_convert(const ecp_dataset *d, int64_t row, float *o, ecp_error *err)
{
    const ecp_rows *r = d->rows;
    int feat = d->n_in;
    for (int j = 0; j < feat; j++) {
        double v = r->esz == 1   ? ((const uint8_t *)r->raw)[j] * (1.0f / 255.0f)
                   : r->esz == 4 ? ((const float *)r->raw)[j]
                                 : ((const double *)r->raw)[j];
        if (!isfinite(v))
            return ecp_fail(err, ECP_ERR_NUMERIC, "%s: input value %lld (row %lld, column %d) "
                            "is %s", r->path, (long long)(row * feat + j), (long long)row, j,
                            isnan(v) ? "NaN" : "Inf");
        if (fabs(v) > FLT_MAX)
            return ecp_fail(err, ECP_ERR_NUMERIC, "%s: value %g at row %lld, column %d is "
                            "beyond the float32 range", r->path, v, (long long)row, j);
        o[j] = (float)v;
    }
    return ECP_OK;
}

/* Rows of a file, read in the order of their position (one forward sweep through the file). */
static ecp_status file_gather(const ecp_dataset *d, const int64_t *idx, int64_t n, float *x,
                              float *y, int32_t *label, ecp_error *err)
{
    ecp_rows *r = d->rows;
    int feat = d->n_in;
    size_t bytes = (size_t)feat * (size_t)r->esz;
    pick *p = ecp_alloc((size_t)n, sizeof *p, "dataset rows", err);
    if (!p)
        return ECP_ERR_MEMORY;
    for (int64_t k = 0; k < n; k++)
        p[k] = (pick){idx[k], k};
    qsort(p, (size_t)n, sizeof *p, pick_cmp);
    ecp_status s = ECP_OK;
    for (int64_t k = 0; k < n && !s; k++) {
        int64_t row = p[k].row, dst = p[k].dst;
        float *o = x + (size_t)dst * feat;
        if (d->is_class)
            label[dst] = d->label[row];
        else
            memcpy(y + (size_t)dst * d->n_out, d->y + (size_t)row * d->n_out,
                   (size_t)d->n_out * sizeof *y);
        if (k && row == p[k - 1].row) {
            memcpy(o, x + (size_t)p[k - 1].dst * feat, (size_t)feat * sizeof *o);
            continue;
        }
        size_t got;
        s = ecp_pread_full(r->fd, r->path, r->raw, bytes, r->data_at + row * (int64_t)bytes,
                           &got, err);
        if (!s && got < bytes)
            s = ecp_fail(err, ECP_ERR_FORMAT, "%s: truncated (row %lld of %lld cannot be "
                         "read)", r->path, (long long)row, (long long)d->n);
        if (!s)
            s = row_convert(d, row, o, err);
    }
    free(p);
    return s;
}

ecp_status ecp_dataset_gather(const ecp_dataset *d, const int64_t *idx, int64_t n, float *x,
                              float *y, int32_t *label, ecp_error *err)
{
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= d->n)
            return ecp_fail(err, ECP_ERR_ARG, "%s%sindex %lld out of range [0, %lld)",
                            d->rows && d->rows->path ? d->rows->path : "",
                            d->rows && d->rows->path ? ": row " : "subset ", (long long)idx[i],
                            (long long)d->n);
    if (d->rows && d->rows->path)
        return file_gather(d, idx, n, x, y, label, err);
    if (d->rows) { /* a view of a view: through the view's order, a piece at a time */
        int64_t map[1024];
        ecp_status s = ECP_OK;
        for (int64_t at = 0; at < n && !s; at += 1024) {
            int64_t k = n - at < 1024 ? n - at : 1024;
            for (int64_t i = 0; i < k; i++)
                map[i] = d->rows->idx[idx[at + i]];
            s = ecp_dataset_gather(d->rows->base, map, k, x + (size_t)at * d->n_in,
                                   y ? y + (size_t)at * d->n_out : NULL,
                                   label ? label + at : NULL, err);
        }
        return s;
    }
    for (int64_t i = 0; i < n; i++) {
        memcpy(x + (size_t)i * d->n_in, d->x + (size_t)idx[i] * d->n_in,
               (size_t)d->n_in * sizeof *x);
        if (d->is_class)
            label[i] = d->label[idx[i]];
        else
            memcpy(y + (size_t)i * d->n_out, d->y + (size_t)idx[i] * d->n_out,
                   (size_t)d->n_out * sizeof *y);
    }
    return ECP_OK;
}

/* Fills the buffer with rows [at, at + chunk) (fewer at the end). */
static ecp_status fetch(const ecp_dataset *d, int64_t at, ecp_error *err)
{
    ecp_rows *r = d->rows;
    size_t c = (size_t)r->chunk;
    if (!r->x && !(r->x = ecp_alloc(c * d->n_in, sizeof(float), "dataset rows", err)))
        return ECP_ERR_MEMORY;
    if (d->is_class ? !r->label && !(r->label = ecp_alloc(c, sizeof(int32_t), "dataset rows", err))
                    : !r->y && !(r->y = ecp_alloc(c * d->n_out, sizeof(float), "dataset rows",
                                                  err)))
        return ECP_ERR_MEMORY;
    if (!r->base && !r->seq && !(r->seq = ecp_alloc(c, sizeof(int64_t), "dataset rows", err)))
        return ECP_ERR_MEMORY;
    int64_t hi = at + r->chunk < d->n ? at + r->chunk : d->n;
    const int64_t *idx = r->idx ? r->idx + at : r->seq;
    for (int64_t i = 0; !r->base && i < hi - at; i++)
        r->seq[i] = at + i;
    r->lo = r->hi = 0; /* nothing valid if the read fails half-way */
    ecp_status s = ecp_dataset_gather(r->base ? r->base : d, idx, hi - at, r->x, r->y, r->label,
                                      err);
    if (!s) {
        r->lo = at;
        r->hi = hi;
    }
    return s;
}

ecp_status ecp_dataset_rows(const ecp_dataset *d, int64_t at, int64_t n, ecp_dataset *view,
                            ecp_error *err)
{
    if (at < 0 || n < 0 || at > d->n - n || n > ecp_dataset_chunk_rows(d))
        return ecp_fail(err, ECP_ERR_ARG, "rows [%lld, %lld) of a dataset of %lld (chunks of "
                        "%lld)", (long long)at, (long long)(at + n), (long long)d->n,
                        (long long)ecp_dataset_chunk_rows(d));
    float *x = d->x, *y = d->y;
    int32_t *label = d->label;
    int64_t lo = 0;
    if (d->rows) {
        ecp_rows *r = d->rows;
        ecp_status s;
        if ((at < r->lo || at + n > r->hi) && (s = fetch(d, at, err)))
            return s;
        x = r->x;
        y = r->y;
        label = r->label;
        lo = r->lo;
    }
    *view = (ecp_dataset){.n = n, .n_in = d->n_in, .n_out = d->n_out, .is_class = d->is_class};
    view->x = x + (size_t)(at - lo) * d->n_in;
    view->y = y ? y + (size_t)(at - lo) * d->n_out : NULL;
    view->label = label ? label + (at - lo) : NULL;
    return ECP_OK;
}
