/* The window-permute layout of one layer (wperm.c), for one sample (batch 1) on a dense input.
 *
 * Rows are taken 16 at a time (one per lane of a 16-float vector) and the inputs 32 at a time (a
 * window: two vectors of x). For every group of 16 rows and every window that holds a kept
 * weight of one of them, the layout has `steps` = the largest count of kept weights any of the
 * 16 rows has in that window; step t holds, per lane, the row's t-th weight of the window and its
 * offset in the window (5 bits in a byte), or a zero weight at offset 0 when the row has fewer.
 * Rows are grouped in decreasing order of length (row[] says which row a lane holds); the
 * inputs may be reordered too (cols, below).
 * A step is then one vector load of values, one of offsets, one two-register permute of the
 * window (vpermt2ps) and one FMA: no gather, no per-row reduction, no row tail. */
#ifndef ECP_SPARSE_WPERM_H
#define ECP_SPARSE_WPERM_H

#include "../internal.h"

/* 1 where the kernel has its vector form (AVX-512); elsewhere it is a plain loop, slower than
 * CSR, and the engine does not choose the layout. */
#if defined(__AVX512F__)
#define ECP_WPERM_FAST 1
#else
#define ECP_WPERM_FAST 0
#endif

typedef struct {
    int n_out, n_in, n_groups; /* n_groups = ceil(n_out / 16) */
    int sorted;                /* 0: row holds the identity */
    int32_t *row;              /* n_groups x 16: the row of W (and of y) in each lane */
    int64_t nnz, steps;        /* kept weights; steps of 16 slots (padding included) */
    int64_t n_seg;             /* segments (group, window) */
    int64_t *gseg;             /* n_groups + 1: the segments of group g are [gseg[g], gseg[g+1]) */
    uint32_t *seg;             /* per segment: window << 6 | steps (steps <= 32) */
    float *val;                /* steps x 16, 64-byte aligned; NULL when val16 holds them */
    uint16_t *val16;           /* the same as bf16 (a slot of 3 bytes instead of 5), or NULL */
    uint8_t *off;              /* steps x 16 */
    /* The layout's inputs: x[cols[0..n_cols)] (the columns that keep a weight, busiest first),
     * gathered into xp by each call; cols NULL: x itself (n_cols = n_in). So a layout serves
     * one call at a time, as the engine that owns it does. */
    int n_cols;
    int32_t *cols;
    float *xp;
} ecp_wperm;

/* Slots (16 per step) the layout of W would hold, without building it: the engine's cost. */
int64_t ecp_wperm_slots(const float *W, const uint8_t *pruned, int n_out, int n_in);
/* Builds the layout of W (n_out x n_in row-major) without the weights marked in pruned (may be
 * NULL) or exactly zero. bf16: the values are stored as bf16 (core/bf16.h), each weight rounded
 * to the nearest; the product is then that of the rounded weights. */
ecp_status ecp_wperm_build(ecp_wperm *a, const float *W, const uint8_t *pruned, int n_out,
                           int n_in, int bf16, ecp_error *err);
void ecp_wperm_release(ecp_wperm *a);
/* y = W x + b for one sample (x: n_in floats, nothing read past them). As with dense columns,
 * a padding slot multiplies 0 by an input of its window, so a non-finite input can reach rows
 * that have no weight on it. */
void ecp_wperm_gemv(const ecp_wperm *a, const float *x, const float *b, float *y);

#endif
