/* Activations. Backward takes both the pre-activation x and the output y because each
 * derivative is cheapest from one of them (tanh' = 1 - y^2, relu' = [x > 0]). Parameters are
 * read as p[0], p[1]; NULL means PyTorch's defaults. */
#include "../internal.h"
#include <math.h>

static const struct {
    const char *name;
    int n_params;
    const char *param[ECP_ACT_NPARAM];
    float dflt[ECP_ACT_NPARAM];
} acts[ECP_ACT_COUNT] = {
    [ECP_ACT_IDENTITY] = {"identity", 0, {0}, {0}},
    [ECP_ACT_RELU] = {"relu", 0, {0}, {0}},
    [ECP_ACT_LEAKY_RELU] = {"leaky_relu", 1, {"slope"}, {0.01f}},
    [ECP_ACT_TANH] = {"tanh", 0, {0}, {0}},
    [ECP_ACT_SIGMOID] = {"sigmoid", 0, {0}, {0}},
    [ECP_ACT_SOFTPLUS] = {"softplus", 1, {"beta"}, {1.0f}},
    [ECP_ACT_GELU] = {"gelu", 0, {0}, {0}},
    [ECP_ACT_SILU] = {"silu", 0, {0}, {0}},
    [ECP_ACT_ELU] = {"elu", 1, {"alpha"}, {1.0f}},
    [ECP_ACT_CLIP] = {"clip", 2, {"min", "max"}, {0.0f, 6.0f}},
    [ECP_ACT_GELU_TANH] = {"gelu_tanh", 0, {0}, {0}},
    [ECP_ACT_HARDSIGMOID] = {"hardsigmoid", 2, {"alpha", "beta"}, {1.0f / 6.0f, 0.5f}},
    [ECP_ACT_HARDSWISH] = {"hardswish", 2, {"alpha", "beta"}, {1.0f / 6.0f, 0.5f}},
};

/* Other spellings: PyTorch's module names for the same functions. */
static const struct {
    const char *name;
    const char *spec;
} aliases[] = {{"linear", "identity"}, {"none", "identity"}, {"relu6", "clip:0:6"},
               {"hardtanh", "clip:-1:1"}};

#define CHOICES                                                                                \
    "identity, relu, leaky_relu[:SLOPE], tanh, sigmoid, softplus[:BETA], gelu, gelu_tanh, "   \
    "silu, elu[:ALPHA], clip:MIN:MAX, relu6, hardtanh, hardsigmoid[:ALPHA:BETA], "             \
    "hardswish[:ALPHA:BETA]"

#define GELU_TANH_K 0.7978845608028654 /* sqrt(2 / pi) */
#define GELU_TANH_C 0.044715

const char *ecp_act_name(ecp_act a)
{
    return (unsigned)a < ECP_ACT_COUNT ? acts[a].name : "?";
}

int ecp_act_n_params(ecp_act a)
{
    return (unsigned)a < ECP_ACT_COUNT ? acts[a].n_params : 0;
}

void ecp_act_defaults(ecp_act a, float p[ECP_ACT_NPARAM])
{
    if (!p)
        return;
    for (int i = 0; i < ECP_ACT_NPARAM; i++)
        p[i] = (unsigned)a < ECP_ACT_COUNT ? acts[a].dflt[i] : 0.0f;
}

/* p, or the defaults when p is NULL. */
static const float *params(ecp_act a, const float *p)
{
    return p ? p : (unsigned)a < ECP_ACT_COUNT ? acts[a].dflt : acts[0].dflt;
}

ecp_status ecp_act_check(ecp_act a, const float *p, ecp_error *err)
{
    if ((unsigned)a >= ECP_ACT_COUNT)
        return ecp_fail(err, ECP_ERR_ARG, "activation %d: unknown (choose " CHOICES ")", (int)a);
    p = params(a, p);
    for (int i = 0; i < acts[a].n_params; i++)
        if (!isfinite(p[i]))
            return ecp_fail(err, ECP_ERR_ARG, "activation %s: %s %g is not finite", acts[a].name,
                            acts[a].param[i], (double)p[i]);
    if (a == ECP_ACT_SOFTPLUS && !(p[0] > 0))
        return ecp_fail(err, ECP_ERR_ARG, "activation softplus: beta %g must be > 0",
                        (double)p[0]);
    if (a == ECP_ACT_CLIP && p[0] > p[1])
        return ecp_fail(err, ECP_ERR_ARG, "activation clip: min %g is above max %g",
                        (double)p[0], (double)p[1]);
    return ECP_OK;
}

static ecp_status parse_name(const char *name, size_t len, ecp_act *out, const char *spec,
                             ecp_error *err)
{
    for (int i = 0; i < ECP_ACT_COUNT; i++)
        if (strlen(acts[i].name) == len && strncmp(name, acts[i].name, len) == 0) {
            *out = (ecp_act)i;
            return ECP_OK;
        }
    return ecp_fail(err, ECP_ERR_ARG, "unknown activation '%s' (choose " CHOICES ")", spec);
}

ecp_status ecp_act_parse_params(const char *spec, ecp_act *out, float p[ECP_ACT_NPARAM],
                                ecp_error *err)
{
    ECP_REQUIRE(spec, err);
    ECP_REQUIRE(out, err);
    ECP_REQUIRE(p, err);
    const char *text = spec;
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(spec, aliases[i].name) == 0)
            text = aliases[i].spec;
    const char *colon = strchr(text, ':');
    ecp_act a = ECP_ACT_IDENTITY;
    ecp_status s = parse_name(text, colon ? (size_t)(colon - text) : strlen(text), &a, spec, err);
    if (s)
        return s;
    ecp_act_defaults(a, p);
    int k = 0;
    for (const char *at = colon; at; k++) {
        char *end;
        if (k == acts[a].n_params)
            return ecp_fail(err, ECP_ERR_ARG, "activation '%s': %s takes %d parameter%s", spec,
                            acts[a].name, acts[a].n_params, acts[a].n_params == 1 ? "" : "s");
        p[k] = strtof(at + 1, &end);
        if (end == at + 1 || (*end && *end != ':'))
            return ecp_fail(err, ECP_ERR_ARG, "activation '%s': %s is not a number", spec,
                            acts[a].param[k]);
        at = *end ? end : NULL;
    }
    if (k && k < acts[a].n_params)
        return ecp_fail(err, ECP_ERR_ARG, "activation '%s': give all of %s's %d parameters",
                        spec, acts[a].name, acts[a].n_params);
    if ((s = ecp_act_check(a, p, err)))
        return s;
    *out = a;
    return ECP_OK;
}

ecp_status ecp_act_parse(const char *name, ecp_act *out, ecp_error *err)
{
    float p[ECP_ACT_NPARAM];
    ecp_act a = ECP_ACT_IDENTITY;
    ECP_REQUIRE(out, err);
    ecp_status s = ecp_act_parse_params(name, &a, p, err);
    if (s)
        return s;
    for (int i = 0; i < ECP_ACT_NPARAM; i++)
        if (p[i] != acts[a].dflt[i])
            return ecp_fail(err, ECP_ERR_ARG, "activation '%s' has parameters other than %s's "
                            "defaults (ecp_act_parse_params takes them)", name, acts[a].name);
    *out = a;
    return ECP_OK;
}

int ecp_act_format(ecp_act a, const float *p, char *buf, size_t n)
{
    p = params(a, p);
    int dflt = a != ECP_ACT_CLIP; /* clip's bounds are no obvious default: always shown */
    for (int i = 0; i < ecp_act_n_params(a); i++)
        dflt &= p[i] == acts[a].dflt[i];
    int at = snprintf(buf, n, "%s", ecp_act_name(a));
    for (int i = 0; !dflt && i < acts[a].n_params && at >= 0; i++) {
        /* The shortest decimal that reads back as the same float. */
        char num[32];
        for (int digits = 6; digits <= 9; digits++) {
            snprintf(num, sizeof num, "%.*g", digits, (double)p[i]);
            if (strtof(num, NULL) == p[i])
                break;
        }
        int k = snprintf(buf && (size_t)at < n ? buf + at : NULL,
                         buf && (size_t)at < n ? n - (size_t)at : 0, ":%s", num);
        at = k < 0 ? k : at + k;
    }
    return at;
}

static float sigmoidf_(float x)
{
    /* Two branches so that exp never overflows. */
    if (x >= 0) {
        float e = expf(-x);
        return 1.0f / (1.0f + e);
    }
    float e = expf(x);
    return e / (1.0f + e);
}

static float hardsigf_(float x, const float *p)
{
    return fminf(fmaxf(p[0] * x + p[1], 0.0f), 1.0f);
}

void ecp_act_forward_p(ecp_act a, const float *p, const float *x, float *y, size_t n)
{
    if (!x || !y)
        return;
    p = params(a, p);
    switch (a) {
    case ECP_ACT_IDENTITY:
        if (y != x)
            memcpy(y, x, n * sizeof *y);
        break;
    case ECP_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
    case ECP_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] > 0 ? x[i] : p[0] * x[i];
        break;
    case ECP_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    case ECP_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            y[i] = sigmoidf_(x[i]);
        break;
    case ECP_ACT_SOFTPLUS:
        /* log(1 + e^bx)/b = max(x, 0) + log1p(e^-|bx|)/b: no overflow for large |x|. */
        for (size_t i = 0; i < n; i++)
            y[i] = fmaxf(x[i], 0.0f) + log1pf(expf(-fabsf(p[0] * x[i]))) / p[0];
        break;
    case ECP_ACT_GELU:
        for (size_t i = 0; i < n; i++)
            y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case ECP_ACT_SILU:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] * sigmoidf_(x[i]);
        break;
    case ECP_ACT_ELU:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] > 0 ? x[i] : p[0] * expm1f(x[i]);
        break;
    case ECP_ACT_CLIP:
        for (size_t i = 0; i < n; i++)
            y[i] = fminf(fmaxf(x[i], p[0]), p[1]);
        break;
    case ECP_ACT_GELU_TANH:
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            float t = tanhf((float)GELU_TANH_K * (v + (float)GELU_TANH_C * v * v * v));
            y[i] = 0.5f * v * (1.0f + t);
        }
        break;
    case ECP_ACT_HARDSIGMOID:
        for (size_t i = 0; i < n; i++)
            y[i] = hardsigf_(x[i], p);
        break;
    case ECP_ACT_HARDSWISH:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] * hardsigf_(x[i], p);
        break;
    default:
        break;
    }
}

void ecp_act_backward_p(ecp_act a, const float *p, const float *x, const float *y,
                        const float *dy, float *dx, size_t n)
{
    if (!x || !y || !dy || !dx)
        return;
    p = params(a, p);
    switch (a) {
    case ECP_ACT_IDENTITY:
        if (dx != dy)
            memcpy(dx, dy, n * sizeof *dx);
        break;
    case ECP_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            dx[i] = x[i] > 0 ? dy[i] : 0.0f;
        break;
    case ECP_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            dx[i] = x[i] > 0 ? dy[i] : p[0] * dy[i];
        break;
    case ECP_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case ECP_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    case ECP_ACT_SOFTPLUS:
        for (size_t i = 0; i < n; i++)
            dx[i] = dy[i] * sigmoidf_(p[0] * x[i]);
        break;
    case ECP_ACT_GELU:
        for (size_t i = 0; i < n; i++) {
            float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
            float pdf = 0.39894228040143268f * expf(-0.5f * x[i] * x[i]);
            dx[i] = dy[i] * (cdf + x[i] * pdf);
        }
        break;
    case ECP_ACT_SILU:
        for (size_t i = 0; i < n; i++) {
            float s = sigmoidf_(x[i]);
            dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;
    case ECP_ACT_ELU:
        /* For x <= 0, y = alpha (e^x - 1), so y' = y + alpha. */
        for (size_t i = 0; i < n; i++)
            dx[i] = x[i] > 0 ? dy[i] : dy[i] * (y[i] + p[0]);
        break;
    case ECP_ACT_CLIP:
        /* The open interval, as torch's hardtanh backward. */
        for (size_t i = 0; i < n; i++)
            dx[i] = x[i] > p[0] && x[i] < p[1] ? dy[i] : 0.0f;
        break;
    case ECP_ACT_GELU_TANH:
        for (size_t i = 0; i < n; i++) {
            float v = x[i], v2 = v * v;
            float t = tanhf((float)GELU_TANH_K * (v + (float)GELU_TANH_C * v2 * v));
            float du = (float)GELU_TANH_K * (1.0f + 3.0f * (float)GELU_TANH_C * v2);
            dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
        }
        break;
    case ECP_ACT_HARDSIGMOID:
    case ECP_ACT_HARDSWISH:
        for (size_t i = 0; i < n; i++) {
            float u = p[0] * x[i] + p[1];
            float ds = u > 0 && u < 1 ? p[0] : 0.0f;
            dx[i] = dy[i] * (a == ECP_ACT_HARDSIGMOID ? ds : hardsigf_(x[i], p) + x[i] * ds);
        }
        break;
    default:
        break;
    }
}

void ecp_act_forward(ecp_act a, const float *x, float *y, size_t n)
{
    ecp_act_forward_p(a, NULL, x, y, n);
}

void ecp_act_backward(ecp_act a, const float *x, const float *y, const float *dy, float *dx,
                      size_t n)
{
    ecp_act_backward_p(a, NULL, x, y, dy, dx, n);
}

static double sigmoid_d(double x)
{
    return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}

static double hardsig_d(double x, const float *p, double *d)
{
    double u = p[0] * x + p[1];
    *d = u > 0 && u < 1 ? p[0] : 0;
    return u < 0 ? 0 : u > 1 ? 1 : u;
}

double ecp_act_eval_d(ecp_act a, const float *p, double x, double *deriv)
{
    double y, d;
    p = params(a, p);
    switch (a) {
    case ECP_ACT_RELU: y = x > 0 ? x : 0; d = x > 0; break;
    case ECP_ACT_LEAKY_RELU: y = x > 0 ? x : p[0] * x; d = x > 0 ? 1 : p[0]; break;
    case ECP_ACT_TANH: y = tanh(x); d = 1 - y * y; break;
    case ECP_ACT_SIGMOID: y = sigmoid_d(x); d = y * (1 - y); break;
    case ECP_ACT_SOFTPLUS:
        y = fmax(x, 0) + log1p(exp(-fabs(p[0] * x))) / p[0];
        d = sigmoid_d(p[0] * x);
        break;
    case ECP_ACT_GELU: {
        double cdf = 0.5 * (1 + erf(x * 0.70710678118654752));
        y = x * cdf;
        d = cdf + x * 0.39894228040143268 * exp(-0.5 * x * x);
        break;
    }
    case ECP_ACT_SILU: {
        double s = sigmoid_d(x);
        y = x * s;
        d = s * (1 + x * (1 - s));
        break;
    }
    case ECP_ACT_ELU: y = x > 0 ? x : p[0] * expm1(x); d = x > 0 ? 1 : p[0] * exp(x); break;
    case ECP_ACT_CLIP:
        y = x < p[0] ? p[0] : x > p[1] ? p[1] : x;
        d = x > p[0] && x < p[1];
        break;
    case ECP_ACT_GELU_TANH: {
        double t = tanh(GELU_TANH_K * (x + GELU_TANH_C * x * x * x));
        y = 0.5 * x * (1 + t);
        d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_TANH_K * (1 + 3 * GELU_TANH_C * x * x);
        break;
    }
    case ECP_ACT_HARDSIGMOID: y = hardsig_d(x, p, &d); break;
    case ECP_ACT_HARDSWISH: {
        double ds, s = hardsig_d(x, p, &ds);
        y = x * s;
        d = s + x * ds;
        break;
    }
    default: y = x; d = 1; break;
    }
    if (deriv)
        *deriv = d;
    return y;
}
