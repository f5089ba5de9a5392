/* The in-memory dataset every loader produces. */
#include "../internal.h"
#include <math.h>

ecp_status ecp_dataset_create(ecp_dataset **out, int64_t n, int n_in, int n_out, int is_class,
                              ecp_error *err)
{
    ECP_REQUIRE(out, err);
    *out = NULL;
    if (n < 0 || n_in < 1 || n_out < 1)
        return ecp_fail(err, ECP_ERR_ARG, "dataset shape %lld x %d -> %d is invalid",
                        (long long)n, n_in, n_out);
    ecp_dataset *d = ecp_zalloc(1, sizeof *d, "dataset", err);
    if (!d)
        return ECP_ERR_MEMORY;
    d->n = n;
    d->n_in = n_in;
    d->n_out = n_out;
    d->is_class = is_class;
    if ((uint64_t)n > SIZE_MAX / (size_t)n_in) {
        free(d);
        return ecp_fail(err, ECP_ERR_MEMORY, "dataset of %lld x %d overflows", (long long)n, n_in);
    }
    d->x = ecp_alloc((size_t)n * n_in, sizeof *d->x, "dataset", err);
    if (is_class)
        d->label = ecp_alloc((size_t)n, sizeof *d->label, "dataset", err);
    else
        d->y = ecp_alloc((size_t)n * n_out, sizeof *d->y, "dataset", err);
    if (!d->x || (is_class ? !d->label : !d->y)) {
        ecp_dataset_free(d);
        return ECP_ERR_MEMORY;
    }
    *out = d;
    return ECP_OK;
}

void ecp_dataset_free(ecp_dataset *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    free(d->label);
    ecp_rows_free(d->rows);
    free(d);
}

ecp_status ecp_dataset_subset(const ecp_dataset *d, const int64_t *idx, int64_t n,
                              ecp_dataset **out, ecp_error *err)
{
    ECP_REQUIRE(d, err);
    ECP_REQUIRE(out, err);
    *out = NULL;
    ECP_REQUIRE(idx, err);
    ecp_status s = ecp_dataset_create(out, n, d->n_in, d->n_out, d->is_class, err);
    if (s)
        return s;
    ecp_dataset *o = *out;
    if ((s = ecp_dataset_gather(d, idx, n, o->x, o->y, o->label, err))) {
        ecp_dataset_free(o);
        *out = NULL;
    }
    return s;
}

ecp_status ecp_dataset_copy(const ecp_dataset *d, ecp_dataset **out, ecp_error *err)
{
    ECP_REQUIRE(d, err);
    ECP_REQUIRE(out, err);
    *out = NULL;
    int64_t *idx = ecp_alloc((size_t)(d->n ? d->n : 1), sizeof *idx, "dataset copy", err);
    if (!idx)
        return ECP_ERR_MEMORY;
    for (int64_t i = 0; i < d->n; i++)
        idx[i] = i;
    ecp_status s = ecp_dataset_subset(d, idx, d->n, out, err);
    free(idx);
    return s;
}

ecp_status ecp_dataset_validate(const ecp_dataset *d, const char *what, ecp_error *err)
{
    ECP_REQUIRE(d, err);
    return ecp_dataset_validate_files(d, what, what, err);
}

ecp_status ecp_dataset_validate_files(const ecp_dataset *d, const char *xwhat, const char *ywhat,
                                      ecp_error *err)
{
    ECP_REQUIRE(d, err);
    const char *what = xwhat;
    size_t nx = (size_t)d->n * d->n_in;
    for (size_t i = 0; d->x && i < nx; i++) /* rows not in memory are checked as read */
        if (!isfinite(d->x[i]))
            return ecp_fail(err, ECP_ERR_NUMERIC, "%s: input value %zu (row %zu, column %zu) is %s",
                            what, i, i / d->n_in, i % d->n_in, isnan(d->x[i]) ? "NaN" : "Inf");
    what = ywhat;
    if (d->is_class) {
        for (int64_t i = 0; d->label && i < d->n; i++)
            if (d->label[i] < 0 || d->label[i] >= d->n_out)
                return ecp_fail(err, ECP_ERR_FORMAT, "%s: label %d of row %lld outside [0, %d)",
                                what, d->label[i], (long long)i, d->n_out);
    } else {
        size_t ny = (size_t)d->n * d->n_out;
        for (size_t i = 0; d->y && i < ny; i++)
            if (!isfinite(d->y[i]))
                return ecp_fail(err, ECP_ERR_NUMERIC, "%s: target value %zu (row %zu) is %s", what,
                                i, i / d->n_out, isnan(d->y[i]) ? "NaN" : "Inf");
    }
    return ECP_OK;
}

void ecp_data_opts_default(ecp_data_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->test_frac = 0.2;
    o->split_seed = 20260225;
}
