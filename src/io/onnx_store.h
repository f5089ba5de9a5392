/* Private to src/io/onnx_*.c: how tensor bytes are stored, apart from the graph: external data
 * files (onnx_extdata.c) and sparse initializers (onnx_sparse.c). */
#ifndef ECP_ONNX_STORE_H
#define ECP_ONNX_STORE_H

#include "onnx_util.h"

/* ------------------------------------------------------------------ reading */

/* 1 if t's bytes live in an external file (data_location EXTERNAL or external_data entries). */
int onnx_ext_is_external(const Onnx__TensorProto *t);

/* The `need` bytes of tensor t, from its raw_data or its external file (located relative to the
 * directory of model_path; absolute paths, `..` and links that leave that directory are
 * refused; offset and length are checked against the file's size before anything is read).
 * *bytes = the data, or NULL when t keeps its values in a typed field (float_data, int64_data);
 * *owned = what the caller frees (NULL when the bytes are t's own). `what` names the tensor in
 * errors ("initializer 'l0.weight'"). */
ecp_status onnx_tensor_bytes(const char *model_path, const Onnx__TensorProto *t,
                             const char *what, size_t need, const uint8_t **bytes,
                             uint8_t **owned, ecp_error *err);

/* A sparse initializer turned dense: dims (rank <= max_rank) and count values, zeros where the
 * file stores none; data is the caller's to free. Indices must be in range, strictly increasing
 * and as many as the values. */
ecp_status onnx_sparse_decode(const char *model_path, const Onnx__SparseTensorProto *sp,
                              const char *what, int max_rank, int *ndim, int64_t *dims,
                              size_t *count, float **data, ecp_error *err);
/* The name of a sparse initializer (its values' name), or NULL. */
const char *onnx_sparse_name(const Onnx__SparseTensorProto *sp);

/* ------------------------------------------------------------------ writing */

/* A weight matrix as a sparse initializer: linearised int64 indices [NNZ] (the COO form the
 * ONNX spec allows besides [NNZ, rank]) and float values [NNZ], both little-endian raw_data. */
typedef struct {
    Onnx__SparseTensorProto sp;
    Onnx__TensorProto values, indices;
    int64_t dims[2], nnz;
    uint8_t *val_bytes, *idx_bytes; /* owned */
    char name[64];
} onnx_wsparse;

/* Fills w from the rows x cols matrix W when the sparse form is smaller than the dense one
 * (*used = 1); else leaves w empty (*used = 0). */
ecp_status onnx_sparse_encode(onnx_wsparse *w, const char *name, const float *W, int64_t rows,
                              int64_t cols, int *used, const char *path, ecp_error *err);
void onnx_sparse_release(onnx_wsparse *w);

/* Packs model into wf (protobuf-c's streaming sink; onnx_write.c). */
ecp_status onnx_pack_model(const Onnx__ModelProto *model, ecp_wfile *wf, ecp_error *err);

/* Writes model to path with every raw_data initializer moved into one data file beside it,
 * PATH.data (sparse initializers stay in the model). Both files are
 * written to temporaries first; the data file is put in place before the model, so a reader
 * never sees the new model without its data. The model's tensors are changed (they point into
 * the data file afterwards). */
ecp_status onnx_ext_save(Onnx__ModelProto *model, const char *path, ecp_error *err);

#endif
