/* The N:M layout of one layer (nm.c): for every row and every group of M consecutive inputs,
 * N values and their N in-group offsets (uint8), zero-padded where a group keeps fewer. A kept
 * weight costs 5 bytes (CSR: 6 or 8) and the column of every value is known from its slot, so
 * no row pointer is read. */
#ifndef ECP_SPARSE_NM_H
#define ECP_SPARSE_NM_H

#include "../internal.h"

typedef struct {
    int n_out, n_in;
    int n, m, groups; /* groups = ceil(n_in / m) */
    float *val;       /* n_out x n x groups: per row, slot t of every group, contiguous */
    uint8_t *idx;     /* same layout: offset inside the group */
} ecp_nmmat;

/* ECP_ERR_FORMAT (naming the row and group) when a group of W keeps more than n weights. */
ecp_status ecp_nmmat_build(ecp_nmmat *a, const float *W, int n_out, int n_in, int n, int m,
                           ecp_error *err);
void ecp_nmmat_release(ecp_nmmat *a);
/* y = W x + b, one sample. */
void ecp_nm_gemv(const ecp_nmmat *a, const float *x, const float *b, float *y);
/* YT = W XT + b for a batch held feature-major (XT n_in x B, YT n_out x B, row stride ld), as
 * ecp_spmm_csr. */
void ecp_nm_gemm(const ecp_nmmat *a, const float *XT, int B, size_t ld, const float *b,
                 float *YT);

#endif
