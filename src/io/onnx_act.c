/* ONNX import of activations: the single ops and the subgraphs torch.onnx.export writes for
 * activations ONNX has no op for (at the opsets it exports), each folded into the layer before. */
#include "onnx_read.h"
#include <math.h>

static ecp_status set_act(onnx_reader *r, const Onnx__NodeProto *n, ecp_act a)
{
    onnx_rlayer *L = r->n_layers ? &r->layers[r->n_layers - 1] : NULL;
    if (!L || L->has_act)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: node '%s' (%s): an activation must follow a Gemm/MatMul layer "
                        "directly, one per layer",
                        r->path, str(n->name), str(n->op_type));
    L->act = a;
    L->has_act = 1;
    return ECP_OK;
}

static ecp_status step_leaky(onnx_reader *r, const Onnx__NodeProto *n)
{
    float alpha;
    ecp_status s = attr_float(r, n, "alpha", ECP_ONNX_LEAKY_ALPHA, &alpha);
    if (s)
        return s;
    if (fabsf(alpha - ECP_ONNX_LEAKY_ALPHA) > 1e-7f)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: node '%s' (LeakyRelu): alpha=%g; ecprune's leaky_relu has slope "
                        "0.01 only",
                        r->path, str(n->name), (double)alpha);
    return set_act(r, n, ECP_ACT_LEAKY_RELU);
}

static ecp_status step_gelu(onnx_reader *r, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *a = find_attr(n, "approximate");
    if (a && a->has_s && !(a->s.len == 4 && memcmp(a->s.data, "none", 4) == 0))
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: node '%s' (Gelu): approximate='%.*s'; only the exact (erf) form "
                        "is supported",
                        r->path, str(n->name), (int)(a->s.len > 32 ? 32 : a->s.len),
                        (const char *)a->s.data);
    return set_act(r, n, ECP_ACT_GELU);
}

ecp_status onnx_act_step(onnx_reader *r, const Onnx__NodeProto *n, const char **cur,
                                  int *handled)
{
    static const struct {
        const char *op;
        ecp_act act;
    } simple[] = {{"Relu", ECP_ACT_RELU},
                  {"Tanh", ECP_ACT_TANH},
                  {"Sigmoid", ECP_ACT_SIGMOID},
                  {"Softplus", ECP_ACT_SOFTPLUS}};
    ecp_status s = ECP_OK;
    *handled = 1;
    if (streq(n->op_type, "LeakyRelu") || streq(n->op_type, "Gelu")) {
        s = require_io(r, n, 1, 1, *cur);
        if (!s)
            s = streq(n->op_type, "Gelu") ? step_gelu(r, n) : step_leaky(r, n);
    } else {
        size_t i = 0;
        while (i < sizeof simple / sizeof *simple && !streq(n->op_type, simple[i].op))
            i++;
        if (i == sizeof simple / sizeof *simple) {
            *handled = 0;
            return ECP_OK;
        }
        s = require_io(r, n, 1, 1, *cur);
        if (!s)
            s = set_act(r, n, simple[i].act);
    }
    if (!s)
        *cur = n->output[0];
    return s;
}

/* ------------------------------------------------------------------ GELU, erf form */

/* Whether `name` is a one-element constant equal to `want` (within float rounding). */
static ecp_status is_scalar(onnx_reader *r, const char *name, float want, int *yes)
{
    onnx_fvec v;
    int found;
    *yes = 0;
    if (!name)
        return ECP_OK;
    ecp_status s = get_const(r, name, &v, &found);
    if (!s && found && v.count == 1)
        *yes = fabsf(v.data[0] - want) <= 1e-6f * fabsf(want);
    fvec_free(&v);
    return s;
}

/* Div(x, sqrt 2) or Mul(x, 1/sqrt 2), the first step of erf-form GELU. */
static ecp_status is_gelu_scale(onnx_reader *r, const Onnx__NodeProto *n, const char *x,
                                int *yes)
{
    *yes = 0;
    if (streq(n->op_type, "Div") && n->n_input == 2 && n->n_output == 1 &&
        streq(n->input[0], x))
        return is_scalar(r, n->input[1], 1.41421356f, yes);
    if (streq(n->op_type, "Mul"))
        return is_scalar(r, other_input(n, x), 0.70710678f, yes);
    return ECP_OK;
}

/* From the scaling node, Erf then Add(., 1): returns the Add node's index or -1. */
static ecp_status gelu_erf_plus_one(onnx_reader *r, const Onnx__NodeProto *scale, long *erf,
                                    long *add)
{
    int one = 0;
    *add = -1;
    *erf = sole_consumer(r, scale->output[0], "Erf");
    if (*erf < 0 || r->g->node[*erf]->n_input != 1 || r->g->node[*erf]->n_output != 1)
        return ECP_OK;
    long a = sole_consumer(r, r->g->node[*erf]->output[0], "Add");
    if (a < 0)
        return ECP_OK;
    ecp_status s = is_scalar(r, other_input(r->g->node[a], r->g->node[*erf]->output[0]), 1.0f,
                             &one);
    if (!s && one)
        *add = a;
    return s;
}

/* The tail: either Mul(x, A) then Mul(., 0.5) (torch 1.13), or Mul(x, 0.5) = h then Mul(h, A).
 * `other` is x's second consumer. Returns the final node's index or -1. */
static ecp_status gelu_tail(onnx_reader *r, const char *x, size_t other, long add, long *last)
{
    const Onnx__NodeProto *o = r->g->node[other];
    const char *a_out = r->g->node[add]->output[0];
    int half = 0;
    ecp_status s = ECP_OK;
    *last = -1;
    if (!streq(o->op_type, "Mul") || !other_input(o, x))
        return ECP_OK;
    if (streq(other_input(o, x), a_out)) {
        long m2 = sole_consumer(r, o->output[0], "Mul");
        if (m2 >= 0)
            s = is_scalar(r, other_input(r->g->node[m2], o->output[0]), 0.5f, &half);
        if (!s && half)
            *last = m2;
        return s;
    }
    s = is_scalar(r, other_input(o, x), 0.5f, &half);
    long m = half ? sole_consumer(r, a_out, "Mul") : -1;
    if (!s && m >= 0 && streq(other_input(r->g->node[m], a_out), o->output[0]))
        *last = m;
    return s;
}

/* x feeds exactly nodes i and j; if they start x * 0.5 * (1 + erf(x / sqrt 2)), folds the
 * pattern into a GELU activation and advances *cur to its output. */
ecp_status onnx_act_branch(onnx_reader *r, const char **cur, size_t i, size_t j, int *matched)
{
    const char *x = *cur;
    int yes = 0;
    long erf = -1, add = -1, last = -1;
    *matched = 0;
    ecp_status s = is_gelu_scale(r, r->g->node[i], x, &yes);
    if (!s && !yes) {
        size_t t = i;
        i = j;
        j = t;
        s = is_gelu_scale(r, r->g->node[i], x, &yes);
    }
    if (!s && yes)
        s = gelu_erf_plus_one(r, r->g->node[i], &erf, &add);
    if (!s && add >= 0)
        s = gelu_tail(r, x, j, add, &last);
    if (s || last < 0)
        return s;
    s = set_act(r, r->g->node[i], ECP_ACT_GELU);
    if (s)
        return s;
    r->used[i] = r->used[j] = r->used[erf] = r->used[add] = r->used[last] = 1;
    *cur = r->g->node[last]->output[0];
    *matched = 1;
    return ECP_OK;
}
