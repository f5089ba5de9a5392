/* Private to the ONNX reader (onnx_read.c walks the graph, onnx_act.c recognises the
 * activation patterns): the reader's state and the graph helpers both use. */
#ifndef ECP_ONNX_READ_H
#define ECP_ONNX_READ_H

#include "onnx_util.h"

#define MAX_RANK 4

/* A float tensor decoded from an initializer or a Constant node (data owned). */
typedef struct {
    int ndim;
    int64_t dims[MAX_RANK];
    size_t count;
    float *data;
} onnx_fvec;

typedef struct {
    int n_in, n_out;
    ecp_act act;
    float act_p[ECP_ACT_NPARAM];
    int has_act;
    float *W; /* n_out x n_in, row-major */
    float *b; /* n_out */
} onnx_rlayer;

/* The nodes reading one value: how many, and the first two (in node order). */
typedef struct {
    size_t count;
    size_t idx[2];
    size_t last; /* the latest reader, so that a node naming the value twice counts once */
} onnx_readers;

typedef struct {
    const char *path;
    ecp_error *err;
    const Onnx__GraphProto *g;
    /* Name lookups, built once: value name -> initializer, producing node, readers. */
    ecp_strmap inits, sparse, producers, values;
    onnx_readers *readers;
    uint8_t *used; /* per node: folded into the chain */
    onnx_rlayer *layers;
    int n_layers;
    int flattened;
    const char *input;  /* the one graph input that is not an initializer */
    const char *output; /* the graph output */
    int64_t opset;      /* of the default domain */
    ecp_out_transform out_tf; /* a Softmax / LogSoftmax met: only Identity may follow */
    int out_axis;
    const Onnx__NodeProto *tf_node;
} onnx_reader;

static inline const char *str(const char *s)
{
    return s ? s : "";
}

static inline int streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Graph helpers (onnx_read.c). */
const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name);
ecp_status attr_float(onnx_reader *r, const Onnx__NodeProto *n, const char *name, float dflt,
                      float *out);
/* Decodes the value `name` if it is an initializer or a Constant node's output; *found = 0
 * (and no error) when it is neither. */
ecp_status get_const(onnx_reader *r, const char *name, onnx_fvec *v, int *found);
void fvec_free(onnx_fvec *v);
/* The index of the only node reading `name`, if it has op type `op`; else -1. */
long sole_consumer(const onnx_reader *r, const char *name, const char *op);
/* For a two-input node reading `name`, the other input; NULL otherwise. */
const char *other_input(const Onnx__NodeProto *n, const char *name);
ecp_status require_io(onnx_reader *r, const Onnx__NodeProto *n, size_t min_in, size_t max_in,
                      const char *cur);

/* Activations (onnx_act.c). A single-input activation node reading *cur: folds it into the
 * last layer and advances *cur (*handled = 0 when n is not an activation op). */
ecp_status onnx_act_step(onnx_reader *r, const Onnx__NodeProto *n, const char **cur,
                         int *handled);
/* *cur feeds n nodes, idx[] the first two: if they start an activation subgraph, folds it into
 * the last layer, marks its nodes used and advances *cur (*matched = 1). */
ecp_status onnx_act_branch(onnx_reader *r, const char **cur, const size_t idx[2], size_t n,
                           int *matched);

#endif
