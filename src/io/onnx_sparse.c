/* ONNX sparse initializers (SparseTensorProto): a pruned weight matrix as its non-zero values
 * and their positions. The writer uses the spec's linearised form (int64 indices of shape
 * [NNZ]); the reader also takes the [NNZ, rank] form. The spec requires the indices in
 * strictly increasing (lexicographic) order, which also rules out duplicates. */
#include "onnx_store.h"
#include <math.h>

const char *onnx_sparse_name(const Onnx__SparseTensorProto *sp)
{
    return sp && sp->values ? sp->values->name : NULL;
}

/* ------------------------------------------------------------------ reading */

static ecp_status dense_shape(const char *mp, const Onnx__SparseTensorProto *sp,
                              const char *what, int max_rank, int *ndim, int64_t *dims,
                              size_t *count, ecp_error *err)
{
    if (sp->n_dims < 1 || sp->n_dims > (size_t)max_rank)
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "%s: %s has rank %zu (1 to %d supported)", mp,
                        what, sp->n_dims, max_rank);
    /* The dense tensor is built in memory, so the inline limit of a dense tensor applies. */
    const uint64_t limit = ECP_ONNX_MAX_BYTES / sizeof(float);
    *ndim = (int)sp->n_dims;
    *count = 1;
    for (size_t i = 0; i < sp->n_dims; i++) {
        int64_t d = sp->dims[i];
        if (d < 0 || (uint64_t)d > limit)
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s has invalid dimension %lld", mp, what,
                            (long long)d);
        if (d && *count > limit / (uint64_t)d)
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: dimensions overflow", mp, what);
        dims[i] = d;
        *count *= (size_t)d;
    }
    return ECP_OK;
}

/* values: float [NNZ]; indices: int64 [NNZ] or [NNZ, rank]. *per = indices per value. */
static ecp_status check_parts(const char *mp, const Onnx__SparseTensorProto *sp,
                              const char *what, int ndim, size_t count, size_t *nnz, size_t *per,
                              ecp_error *err)
{
    const Onnx__TensorProto *v = sp->values, *ix = sp->indices;
    if (!v || !ix)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s has no %s", mp, what,
                        !v ? "values" : "indices");
    if (!v->has_data_type || v->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "%s: %s: values are not float32", mp, what);
    if (!ix->has_data_type || ix->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: indices are not int64", mp, what);
    if (v->n_dims != 1 || v->dims[0] < 0)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: values must have shape [NNZ]", mp, what);
    *nnz = (size_t)v->dims[0];
    if (*nnz > count)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: %zu values for %zu positions", mp, what,
                        *nnz, count);
    int linear = ix->n_dims == 1, tuple = ix->n_dims == 2 && ix->dims[1] == ndim;
    if (!linear && !tuple)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: indices must have shape [NNZ] or "
                        "[NNZ, %d]", mp, what, ndim);
    if (ix->dims[0] != v->dims[0])
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: %lld indices for %zu values", mp, what,
                        (long long)ix->dims[0], *nnz);
    *per = linear ? 1 : (size_t)ndim;
    return ECP_OK;
}

static int64_t get_i64(const uint8_t *bytes, const int64_t *typed, size_t i)
{
    if (!bytes)
        return typed[i];
    uint64_t u = 0;
    for (int k = 7; k >= 0; k--)
        u = u << 8 | bytes[8 * i + (size_t)k];
    return (int64_t)u;
}

/* Scatters the values into the zeroed dense array, checking every index on the way. */
static ecp_status scatter(const char *mp, const char *what, const int64_t *dims, size_t count, size_t nnz, size_t per, const uint8_t *vb,
                          const float *vt, const uint8_t *ib, const int64_t *it, float *out,
                          ecp_error *err)
{
    int64_t prev = -1;
    for (size_t i = 0; i < nnz; i++) {
        int64_t lin = 0;
        for (size_t j = 0; j < per; j++) {
            int64_t c = get_i64(ib, it, i * per + j);
            int64_t hi = per == 1 ? (int64_t)count : dims[j];
            if (c < 0 || c >= hi)
                return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: index %lld of value %zu is out "
                                "of range [0, %lld)", mp, what, (long long)c, i, (long long)hi);
            lin = per == 1 ? c : lin * dims[j] + c;
        }
        if (lin <= prev)
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: index of value %zu is %s the one "
                            "before it; indices must be strictly increasing, without duplicates",
                            mp, what, i, lin == prev ? "the same as" : "below");
        float x = vb ? ecp_onnx_f32_le(vb + 4 * i) : vt[i];
        if (!isfinite(x))
            return ecp_fail(err, ECP_ERR_NUMERIC, "%s: %s holds a non-finite value at index %zu",
                            mp, what, i);
        out[lin] = x;
        prev = lin;
    }
    return ECP_OK;
}

ecp_status onnx_sparse_decode(const char *model_path, const Onnx__SparseTensorProto *sp,
                              const char *what, int max_rank, int *ndim, int64_t *dims,
                              size_t *count, float **data, ecp_error *err)
{
    const char *mp = model_path;
    size_t nnz = 0, per = 1;
    *data = NULL;
    ecp_status s = dense_shape(mp, sp, what, max_rank, ndim, dims, count, err);
    if (!s)
        s = check_parts(mp, sp, what, *ndim, *count, &nnz, &per, err);
    if (s)
        return s;
    const uint8_t *vb, *ib;
    uint8_t *vown = NULL, *iown = NULL;
    s = onnx_tensor_bytes(mp, sp->values, what, nnz * 4, &vb, &vown, err);
    if (!s && !vb && sp->values->n_float_data != nnz)
        s = ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: float_data holds %zu values, NNZ is %zu", mp,
                     what, sp->values->n_float_data, nnz);
    if (!s)
        s = onnx_tensor_bytes(mp, sp->indices, what, nnz * per * 8, &ib, &iown, err);
    if (!s && !ib && sp->indices->n_int64_data != nnz * per)
        s = ecp_fail(err, ECP_ERR_FORMAT, "%s: %s: int64_data holds %zu indices, %zu expected",
                     mp, what, sp->indices->n_int64_data, nnz * per);
    if (!s && !(*data = ecp_zalloc(*count ? *count : 1, sizeof(float), mp, err)))
        s = ECP_ERR_MEMORY;
    if (!s)
        s = scatter(mp, what, dims, *count, nnz, per, vb, sp->values->float_data, ib,
                    sp->indices->int64_data, *data, err);
    free(vown);
    free(iown);
    if (s) {
        free(*data);
        *data = NULL;
    }
    return s;
}

/* ------------------------------------------------------------------ writing */

ecp_status onnx_sparse_encode(onnx_wsparse *w, const char *name, const float *W, int64_t rows,
                              int64_t cols, int *used, const char *path, ecp_error *err)
{
    memset(w, 0, sizeof *w);
    *used = 0;
    size_t n = (size_t)rows * (size_t)cols, nnz = 0;
    for (size_t i = 0; i < n; i++)
        nnz += W[i] != 0.0f;
    /* 4 bytes a value and 8 an index against 4 a weight; the headers are a few dozen bytes. */
    if (12 * (uint64_t)nnz + 64 >= 4 * (uint64_t)n)
        return ECP_OK;
    w->val_bytes = ecp_alloc(nnz ? nnz : 1, 4, path, err);
    w->idx_bytes = ecp_alloc(nnz ? nnz : 1, 8, path, err);
    if (!w->val_bytes || !w->idx_bytes) {
        onnx_sparse_release(w);
        return ECP_ERR_MEMORY;
    }
    for (size_t i = 0, k = 0; i < n; i++) {
        if (W[i] == 0.0f)
            continue;
        ecp_onnx_put_f32_le(w->val_bytes + 4 * k, W[i]);
        for (int b = 0; b < 8; b++)
            w->idx_bytes[8 * k + (size_t)b] = (uint8_t)((uint64_t)i >> (8 * b));
        k++;
    }
    snprintf(w->name, sizeof w->name, "%s", name);
    w->nnz = (int64_t)nnz;
    w->dims[0] = rows;
    w->dims[1] = cols;
    Onnx__TensorProto *parts[2] = {&w->values, &w->indices};
    uint8_t *bytes[2] = {w->val_bytes, w->idx_bytes};
    for (int p = 0; p < 2; p++) {
        onnx__tensor_proto__init(parts[p]);
        parts[p]->has_data_type = 1;
        parts[p]->data_type = p ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64
                                : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        parts[p]->n_dims = 1;
        parts[p]->dims = &w->nnz;
        parts[p]->has_raw_data = 1;
        parts[p]->raw_data.len = nnz * (p ? 8 : 4);
        parts[p]->raw_data.data = bytes[p];
    }
    w->values.name = w->name; /* the spec names a sparse initializer by its values */
    onnx__sparse_tensor_proto__init(&w->sp);
    w->sp.values = &w->values;
    w->sp.indices = &w->indices;
    w->sp.n_dims = 2;
    w->sp.dims = w->dims;
    *used = 1;
    return ECP_OK;
}

void onnx_sparse_release(onnx_wsparse *w)
{
    free(w->val_bytes);
    free(w->idx_bytes);
    w->val_bytes = w->idx_bytes = NULL;
}
