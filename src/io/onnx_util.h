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

/* What ecprune records as metadata_props (onnx_meta.c): the training record and the N:M
 * pattern, each when the model carries one; storage that lives as long as the model being
 * written. */
#define ONNX_META_N 6   /* entries of the training record */
#define ONNX_META_MAX 8 /* and the pattern's two */
typedef struct {
    Onnx__StringStringEntryProto e[ONNX_META_MAX];
    Onnx__StringStringEntryProto *p[ONNX_META_MAX];
    char val[ONNX_META_MAX][800];
} onnx_meta;
void onnx_meta_attach(onnx_meta *meta, const ecp_mlp *m, Onnx__ModelProto *model);
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
