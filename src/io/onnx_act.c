/* ONNX import of activations: the single ops and the subgraphs torch.onnx.export writes for
 * activations ONNX has no op for (at the opsets it exports: 11 to 17), each folded into the
 * layer before with its parameters.
 *   SiLU        Sigmoid(x), Mul(x, .)
 *   HardSwish   HardSigmoid(x), Mul(x, .) before opset 14, then HardSwish
 *   ReLU6       Clip(x, 0, 6), bounds as inputs (opset 11+) or attributes (before)
 *   Softplus(b) Mul(x, b), Softplus, Div(., b); b = 1 is a lone Softplus
 *   GELU (erf)  Div(x, sqrt 2), Erf, Add(., 1), Mul(x, .), Mul(., 0.5)
 *   GELU (tanh) Mul(x, x), Mul(x, .), Mul(0.044715, .), Add(x, .), Mul(sqrt(2/pi), .), Tanh,
 *               Add(1, .), Mul(x, .), Mul(0.5, .) */
#include "onnx_read.h"
#include <float.h>
#include <math.h>

/* Gives the last layer activation a with parameters p (NULL: the defaults), checked. */
static ecp_status set_act(onnx_reader *r, const Onnx__NodeProto *n, ecp_act a, const float *p)
{
    onnx_rlayer *L = r->n_layers ? &r->layers[r->n_layers - 1] : NULL;
    if (!L || L->has_act)
        return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                        "%s: node '%s' (%s): an activation must follow a Gemm/MatMul layer "
                        "directly, one per layer",
                        r->path, str(n->name), str(n->op_type));
    ecp_error e;
    if (ecp_act_check(a, p, &e))
        return ecp_fail(r->err, ECP_ERR_FORMAT, "%s: node '%s' (%s): %s", r->path,
                        str(n->name), str(n->op_type), e.msg);
    L->act = a;
    ecp_act_defaults(a, L->act_p);
    if (p)
        memcpy(L->act_p, p, sizeof L->act_p);
    L->has_act = 1;
    return ECP_OK;
}

/* The value of a one-element constant: *found = 0 when `name` is none (or NULL, or ""). */
static ecp_status const_scalar(onnx_reader *r, const char *name, float *v, int *found)
{
    onnx_fvec t;
    *found = 0;
    if (!name || !*name)
        return ECP_OK;
    ecp_status s = get_const(r, name, &t, found);
    if (!s && *found && t.count != 1)
        *found = 0;
    if (!s && *found)
        *v = t.data[0];
    fvec_free(&t);
    return s;
}

static ecp_status step_gelu(onnx_reader *r, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *a = find_attr(n, "approximate");
    if (!a || !a->has_s || (a->s.len == 4 && memcmp(a->s.data, "none", 4) == 0))
        return set_act(r, n, ECP_ACT_GELU, NULL);
    if (a->s.len == 4 && memcmp(a->s.data, "tanh", 4) == 0)
        return set_act(r, n, ECP_ACT_GELU_TANH, NULL);
    return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                    "%s: node '%s' (Gelu): approximate='%.*s'; 'none' and 'tanh' are supported",
                    r->path, str(n->name), (int)(a->s.len > 32 ? 32 : a->s.len),
                    (const char *)a->s.data);
}

/* Clip's bounds: inputs 2 and 3 from opset 11, attributes min and max before; a missing bound
 * is the float range's end. */
static ecp_status step_clip(onnx_reader *r, const Onnx__NodeProto *n)
{
    float p[2] = {-FLT_MAX, FLT_MAX};
    static const char *const which[2] = {"min", "max"};
    for (int i = 0; i < 2; i++) {
        int found = 0;
        const char *in = n->n_input > (size_t)i + 1 ? n->input[i + 1] : NULL;
        ecp_status s = in && *in ? const_scalar(r, in, &p[i], &found)
                                 : attr_float(r, n, which[i], p[i], &p[i]);
        if (s)
            return s;
        if (in && *in && !found)
            return ecp_fail(r->err, ECP_ERR_UNSUPPORTED,
                            "%s: node '%s' (Clip): %s '%s' is not a one-value constant", r->path,
                            str(n->name), which[i], in);
    }
    return set_act(r, n, ECP_ACT_CLIP, p);
}

/* Mul(x, b), Softplus, then Div(., b) or Mul(., 1/b): Softplus(beta=b) as torch writes it.
 * *last is the final node's index, -1 when n does not start this pattern. */
static ecp_status softplus_beta(onnx_reader *r, const Onnx__NodeProto *n, const char *x,
                                float *beta, long *last)
{
    int found = 0;
    float d = 0;
    *last = -1;
    ecp_status s = const_scalar(r, other_input(n, x), beta, &found);
    long sp = !s && found ? sole_consumer(r, n->output[0], "Softplus") : -1;
    if (sp < 0 || r->g->node[sp]->n_input != 1 || r->g->node[sp]->n_output != 1)
        return s;
    const char *y = r->g->node[sp]->output[0];
    long dv = sole_consumer(r, y, "Div"), mu = sole_consumer(r, y, "Mul");
    if (dv >= 0 && streq(r->g->node[dv]->input[0], y))
        s = const_scalar(r, other_input(r->g->node[dv], y), &d, &found);
    else if (mu >= 0 && !(s = const_scalar(r, other_input(r->g->node[mu], y), &d, &found)) &&
             found)
        d = 1.0f / d;
    else
        found = 0;
    if (s || !found || fabsf(d - *beta) > 1e-6f * fabsf(*beta))
        return s;
    r->used[sp] = 1;
    *last = dv >= 0 ? dv : mu;
    return ECP_OK;
}

static ecp_status step_mul(onnx_reader *r, const Onnx__NodeProto *n, const char **cur,
                           int *handled)
{
    float beta = 0;
    long last;
    ecp_status s = softplus_beta(r, n, *cur, &beta, &last);
    if (s || last < 0)
        return s;
    *handled = 1;
    float p[ECP_ACT_NPARAM] = {beta};
    if ((s = set_act(r, n, ECP_ACT_SOFTPLUS, p)))
        return s;
    r->used[last] = 1;
    *cur = r->g->node[last]->output[0];
    return ECP_OK;
}

/* The ops that are an activation by themselves, with their float attributes (ONNX's
 * defaults, which are not always PyTorch's: HardSigmoid's alpha is 0.2). */
static const struct {
    const char *op;
    ecp_act act;
    const char *attr[ECP_ACT_NPARAM];
    float dflt[ECP_ACT_NPARAM];
} single_ops[] = {{"Relu", ECP_ACT_RELU, {0}, {0}},
                  {"Tanh", ECP_ACT_TANH, {0}, {0}},
                  {"Sigmoid", ECP_ACT_SIGMOID, {0}, {0}},
                  {"Softplus", ECP_ACT_SOFTPLUS, {0}, {1.0f}},
                  {"LeakyRelu", ECP_ACT_LEAKY_RELU, {"alpha"}, {0.01f}},
                  {"Elu", ECP_ACT_ELU, {"alpha"}, {1.0f}},
                  {"HardSigmoid", ECP_ACT_HARDSIGMOID, {"alpha", "beta"}, {0.2f, 0.5f}},
                  {"HardSwish", ECP_ACT_HARDSWISH, {0}, {1.0f / 6.0f, 0.5f}}};

ecp_status onnx_act_step(onnx_reader *r, const Onnx__NodeProto *n, const char **cur,
                         int *handled)
{
    ecp_status s = ECP_OK;
    *handled = 0;
    if (streq(n->op_type, "Mul"))
        return step_mul(r, n, cur, handled);
    size_t i = 0, n_ops = sizeof single_ops / sizeof *single_ops;
    while (i < n_ops && !streq(n->op_type, single_ops[i].op))
        i++;
    int clip = streq(n->op_type, "Clip"), gelu = streq(n->op_type, "Gelu");
    if (i == n_ops && !clip && !gelu)
        return ECP_OK;
    *handled = 1;
    s = require_io(r, n, 1, clip ? 3 : 1, *cur);
    if (!s && clip)
        s = step_clip(r, n);
    else if (!s && gelu)
        s = step_gelu(r, n);
    else if (!s) {
        float p[ECP_ACT_NPARAM];
        for (int k = 0; k < ECP_ACT_NPARAM && !s; k++)
            p[k] = single_ops[i].dflt[k];
        for (int k = 0; k < ECP_ACT_NPARAM && !s && single_ops[i].attr[k]; k++)
            s = attr_float(r, n, single_ops[i].attr[k], p[k], &p[k]);
        if (!s)
            s = set_act(r, n, single_ops[i].act, p);
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
static ecp_status try_gelu(onnx_reader *r, const char **cur, size_t i, size_t j, int *matched)
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
    s = set_act(r, r->g->node[i], ECP_ACT_GELU, NULL);
    if (s)
        return s;
    r->used[i] = r->used[j] = r->used[erf] = r->used[add] = r->used[last] = 1;
    *cur = r->g->node[last]->output[0];
    *matched = 1;
    return ECP_OK;
}

/* ------------------------------------------------------------------ x * f(x) */

/* x feeds exactly nodes i and j: f(x) (Sigmoid: SiLU; HardSigmoid: HardSwish) and Mul(x, f). */
static ecp_status try_x_times(onnx_reader *r, const char **cur, size_t i, size_t j,
                              int *matched)
{
    const char *x = *cur;
    const Onnx__NodeProto *f = r->g->node[i], *m = r->g->node[j];
    if (!streq(f->op_type, "Sigmoid") && !streq(f->op_type, "HardSigmoid")) {
        f = r->g->node[j];
        m = r->g->node[i];
    }
    int sig = streq(f->op_type, "Sigmoid");
    if ((!sig && !streq(f->op_type, "HardSigmoid")) || f->n_input != 1 || f->n_output != 1 ||
        !streq(m->op_type, "Mul") || !streq(other_input(m, x), f->output[0]) ||
        sole_consumer(r, f->output[0], "Mul") < 0)
        return ECP_OK;
    float p[ECP_ACT_NPARAM] = {0.2f, 0.5f}; /* ONNX's HardSigmoid defaults */
    ecp_status s = ECP_OK;
    if (!sig && !(s = attr_float(r, f, "alpha", p[0], &p[0])))
        s = attr_float(r, f, "beta", p[1], &p[1]);
    if (!s)
        s = set_act(r, f, sig ? ECP_ACT_SILU : ECP_ACT_HARDSWISH, sig ? NULL : p);
    if (s)
        return s;
    r->used[i] = r->used[j] = 1;
    *cur = m->output[0];
    *matched = 1;
    return ECP_OK;
}

/* ------------------------------------------------------------------ GELU, tanh form */

/* The node reading `name` alone, of op type op, whose other operand is the scalar `want`
 * (want NAN: whose other operand is `other`); -1 when there is none. */
static ecp_status next_op(onnx_reader *r, const char *name, const char *op, float want,
                          const char *other, long *next)
{
    int yes = 0;
    long k = sole_consumer(r, name, op);
    *next = -1;
    if (k < 0)
        return ECP_OK;
    const char *o = other_input(r->g->node[k], name);
    ecp_status s = isnan(want) ? ECP_OK : is_scalar(r, o, want, &yes);
    if (!s && (isnan(want) ? streq(o, other) : yes))
        *next = k;
    return s;
}

/* x^3 from node `first`: Pow(x, 3), or Mul(x, x) then Mul(x, .). Fills nodes[] with the nodes
 * used and *n with their count (0: no cube). */
static ecp_status gelu_tanh_cube(onnx_reader *r, const char *x, size_t first, long *nodes,
                                 int *n)
{
    const Onnx__NodeProto *a = r->g->node[first];
    int yes = 0;
    *n = 0;
    if (streq(a->op_type, "Pow") && a->n_input == 2 && streq(a->input[0], x)) {
        ecp_status s = is_scalar(r, a->input[1], 3.0f, &yes);
        if (!s && yes)
            nodes[(*n)++] = (long)first;
        return s;
    }
    if (!streq(a->op_type, "Mul") || a->n_input != 2 || !streq(a->input[0], x) ||
        !streq(a->input[1], x))
        return ECP_OK;
    long b;
    ecp_status s = next_op(r, a->output[0], "Mul", NAN, x, &b);
    if (!s && b >= 0) {
        nodes[(*n)++] = (long)first;
        nodes[(*n)++] = b;
    }
    return s;
}

/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) from the node `first` that starts the cube;
 * x has n_x readers, which must all be in the pattern. */
static ecp_status try_gelu_tanh(onnx_reader *r, const char **cur, size_t first, size_t n_x,
                                int *matched)
{
    const char *x = *cur;
    long nodes[10], k = -1;
    int n = 0, x_readers;
    ecp_status s = gelu_tanh_cube(r, x, first, nodes, &n);
    x_readers = n; /* Mul(x, x) and Mul(x, .) both read x */
    struct {
        const char *op;
        float c;
        int reads_x;
    } chain[] = {{"Mul", 0.044715f, 0},  {"Add", NAN, 1}, {"Mul", 0.7978845608f, 0},
                 {"Tanh", 0, 0},         {"Add", 1.0f, 0}};
    for (size_t q = 0; !s && n && q < sizeof chain / sizeof *chain; q++) {
        const char *y = r->g->node[nodes[n - 1]]->output[0];
        if (streq(chain[q].op, "Tanh")) {
            k = sole_consumer(r, y, "Tanh");
            k = k >= 0 && r->g->node[k]->n_input == 1 && r->g->node[k]->n_output == 1 ? k : -1;
        } else
            s = next_op(r, y, chain[q].op, chain[q].c, x, &k);
        if (k < 0)
            return s;
        nodes[n++] = k;
        x_readers += chain[q].reads_x;
    }
    if (s || !n)
        return s;
    /* The tail, as in the erf form: Mul(x, .) then Mul(., 0.5), or Mul(h, .) with h = x/2. */
    const char *g = r->g->node[nodes[n - 1]]->output[0];
    long h = sole_consumer(r, g, "Mul"), last = -1;
    const char *o = h >= 0 ? other_input(r->g->node[h], g) : NULL;
    if (o && streq(o, x)) {
        s = next_op(r, r->g->node[h]->output[0], "Mul", 0.5f, NULL, &last);
        if (!s && last >= 0) {
            nodes[n++] = h;
            nodes[n++] = last;
        }
    } else if (o) {
        long hp = ecp_strmap_get(&r->producers, o);
        int yes = 0;
        if (hp >= 0 && streq(r->g->node[hp]->op_type, "Mul"))
            s = is_scalar(r, other_input(r->g->node[hp], x), 0.5f, &yes);
        if (!s && yes && sole_consumer(r, o, "Mul") == h) {
            nodes[n++] = hp;
            nodes[n++] = last = h;
        }
    }
    if (s || last < 0 || (size_t)x_readers + 1 != n_x)
        return s;
    s = set_act(r, r->g->node[first], ECP_ACT_GELU_TANH, NULL);
    if (s)
        return s;
    for (int q = 0; q < n; q++)
        r->used[nodes[q]] = 1;
    *cur = r->g->node[last]->output[0];
    *matched = 1;
    return ECP_OK;
}

ecp_status onnx_act_branch(onnx_reader *r, const char **cur, const size_t idx[2], size_t n,
                           int *matched)
{
    *matched = 0;
    ecp_status s = n == 2 ? try_gelu(r, cur, idx[0], idx[1], matched) : ECP_OK;
    if (!s && !*matched && n == 2)
        s = try_x_times(r, cur, idx[0], idx[1], matched);
    /* The cube's first node need not be x's first reader in node order: look for it. */
    for (size_t k = 0; !s && !*matched && (n == 3 || n == 4) && k < r->g->n_node; k++) {
        const Onnx__NodeProto *c = r->g->node[k];
        if ((streq(c->op_type, "Pow") || streq(c->op_type, "Mul")) && c->n_input == 2 &&
            streq(c->input[0], *cur) && !r->used[k])
            s = try_gelu_tanh(r, cur, k, n, matched);
    }
    return s;
}
