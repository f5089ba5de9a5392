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

/* ecp_mlp_create's limits, checked while reading so the message can name the file. */
#define ECP_ONNX_MAX_LAYERS ECP_MAX_LAYERS
#define ECP_ONNX_MAX_WIDTH ECP_MAX_WIDTH

/* The only LeakyRelu slope ecp_act implements (PyTorch's default). */
#define ECP_ONNX_LEAKY_ALPHA 0.01f

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
