/* Private to src/io/onnx_*.c: the generated ONNX schema and the conventions both sides share. */
#ifndef ECP_ONNX_UTIL_H
#define ECP_ONNX_UTIL_H

#include "../internal.h"
#include "onnx.pb-c.h"

/* IR 7 is what torch 1.13 writes and what onnx 1.12's checker accepts with opset 13. */
#define ECP_ONNX_IR_VERSION 7
#define ECP_ONNX_OPSET 13
#define ECP_ONNX_PRODUCER "ecprune"

/* A protobuf message cannot exceed 2 GiB, so neither can a model file without external data. */
#define ECP_ONNX_MAX_BYTES ((size_t)1 << 31)

/* Protobuf nesting the reader accepts: an MLP's graph is 4 levels deep (model, graph, node,
 * attribute); types and subgraphs add a few. protobuf-c itself has no limit. */
#define ECP_ONNX_MAX_DEPTH 64
/* Counts far above any MLP export (1,000 layers of a few nodes each) are refused before the
 * graph is walked. */
#define ECP_ONNX_MAX_NODES 100000
#define ECP_ONNX_MAX_VALUES 100000 /* inputs, outputs, initializers, value_info */
#define ECP_ONNX_MAX_ATTRS 1000    /* per node */
#define ECP_ONNX_MAX_META 10000    /* metadata_props */

/* Checks the wire format of a ModelProto without unpacking it: nesting depth (at most
 * ECP_ONNX_MAX_DEPTH) and well-formedness; *bytes = what protobuf-c's unpack will allocate. */
ecp_status ecp_onnx_prescan(const uint8_t *buf, size_t len, const char *path, uint64_t *bytes,
                            ecp_error *err);

/* ecp_mlp_create's limits, checked while reading so the message can name the file. */
#define ECP_ONNX_MAX_LAYERS ECP_MAX_LAYERS
#define ECP_ONNX_MAX_WIDTH ECP_MAX_WIDTH

/* metadata_props keys of the N:M pattern a model promises (ecp_mlp_set_pattern). */
#define ECP_ONNX_META_PATTERN "ecprune.pattern"
#define ECP_ONNX_META_PATTERN_LAYERS "ecprune.pattern_layers"

/* Written when a file is saved at a higher opset than it was read with: from which and why. */
#define ECP_ONNX_META_OPSET_UPGRADE "ecprune.opset_upgrade"
/* Files are written at opset 11 or later (Gemm's optional bias, Clip's min/max inputs). */
#define ECP_ONNX_MIN_OPSET 11

/* What the graph walk found of the file's interface (onnx_iface.c keeps the rest). */
typedef struct {
    const char *input, *output;
    int flatten;
    ecp_out_transform out_tf;
    int out_axis;
} onnx_iface_src;
ecp_status onnx_iface_read(const Onnx__ModelProto *model, const onnx_iface_src *src,
                           ecp_mlp *m, const char *path, ecp_error *err);
int64_t onnx_op_opset(const char *op);
int64_t onnx_ir_for_opset(int64_t opset);

/* BatchNormalization folded into the layer before it, in double: W <- s W, b <- s (b - mean)
 * + beta with s = gamma / sqrt(var + eps). Every array has n_out values but W (n_out x n_in).
 * The caller has checked that var + eps > 0 everywhere. */
void onnx_fold_bn(float *W, float *b, int n_out, int n_in, const float *gamma,
                  const float *beta, const float *mean, const float *var, double eps);

/* What ecprune writes as metadata_props (onnx_meta.c): the model's kept metadata (the file's
 * and ecp_mlp_set_meta's), an opset upgrade, the training record and the N:M
 * pattern, each when there is one; storage that lives as long as the model being written. */
#define ONNX_META_N 6   /* entries of the training record */
#define ONNX_META_MAX 9 /* and an upgrade and the pattern's two */
typedef struct {
    Onnx__StringStringEntryProto e[ONNX_META_MAX];
    char val[ONNX_META_MAX][800];
    int n_e; /* entries of e used */
    char upgrade[128]; /* set by the writer before attaching: "11 -> 14 (HardSwish)" */
    Onnx__StringStringEntryProto *kept; /* n_meta entries, and the pointers to all of them */
    Onnx__StringStringEntryProto **p;
} onnx_meta;
ecp_status onnx_meta_attach(onnx_meta *meta, const ecp_mlp *m, Onnx__ModelProto *model,
                            const char *path, ecp_error *err);
void onnx_meta_release(onnx_meta *meta);
ecp_status onnx_meta_read(const Onnx__ModelProto *model, ecp_mlp *m, const char *path,
                          ecp_error *err);

/* Float tensors are stored little-endian; on such hosts the model's arrays are used in place. */
static inline int ecp_onnx_host_le(void)
{
    const uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

static inline float ecp_onnx_f32_le(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline void ecp_onnx_put_f32_le(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

#endif
