/* The LAPACK routines ecprune calls, from OpenBLAS's own LAPACK (libopenblas exports the Fortran
 * entry points; Debian's OpenBLAS package ships no lapacke.h). Column-major, arguments by
 * reference; the trailing size_t is the hidden length of the character argument that gfortran's
 * calling convention passes. */
#ifndef ECP_LAPACK_H
#define ECP_LAPACK_H
#include <stddef.h>

/* Cholesky factorisation of a symmetric positive definite matrix. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);
/* Inverse from the Cholesky factor of dpotrf_. */
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);
/* Solves A x = b from the Cholesky factor of dpotrf_. */
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda,
             double *b, const int *ldb, int *info, size_t);
/* Least-squares solution of a full-rank system (QR); used by the tests as a reference. */
void dgels_(const char *trans, const int *m, const int *n, const int *nrhs, double *a,
            const int *lda, double *b, const int *ldb, double *work, const int *lwork, int *info,
            size_t);

#endif
