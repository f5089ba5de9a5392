/* Activations. Backward takes both the pre-activation x and the output y because each
 * derivative is cheapest from one of them (tanh' = 1 - y^2, relu' = [x > 0]). */
#include "../internal.h"
#include <math.h>

static const char *const act_names[ECP_ACT_COUNT] = {
    "identity", "relu", "leaky_relu", "tanh", "sigmoid", "softplus", "gelu"};

const char *ecp_act_name(ecp_act a)
{
    return (unsigned)a < ECP_ACT_COUNT ? act_names[a] : "?";
}

ecp_status ecp_act_parse(const char *name, ecp_act *out, ecp_error *err)
{
    ECP_REQUIRE(name, err);
    ECP_REQUIRE(out, err);
    for (int i = 0; i < ECP_ACT_COUNT; i++)
        if (strcmp(name, act_names[i]) == 0) {
            *out = (ecp_act)i;
            return ECP_OK;
        }
    if (strcmp(name, "linear") == 0 || strcmp(name, "none") == 0) {
        *out = ECP_ACT_IDENTITY;
        return ECP_OK;
    }
    return ecp_fail(err, ECP_ERR_ARG,
                    "unknown activation '%s' (choose identity, relu, leaky_relu, tanh, sigmoid, "
                    "softplus, gelu)",
                    name);
}

#define LEAKY_SLOPE 0.01f

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

void ecp_act_forward(ecp_act a, const float *x, float *y, size_t n)
{
    if (!x || !y)
        return;
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
            y[i] = x[i] > 0 ? x[i] : LEAKY_SLOPE * x[i];
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
        /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|. */
        for (size_t i = 0; i < n; i++)
            y[i] = fmaxf(x[i], 0.0f) + log1pf(expf(-fabsf(x[i])));
        break;
    case ECP_ACT_GELU:
        for (size_t i = 0; i < n; i++)
            y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    default:
        break;
    }
}

void ecp_act_backward(ecp_act a, const float *x, const float *y, const float *dy, float *dx,
                      size_t n)
{
    if (!x || !y || !dy || !dx)
        return;
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
            dx[i] = x[i] > 0 ? dy[i] : LEAKY_SLOPE * dy[i];
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
            dx[i] = dy[i] * sigmoidf_(x[i]);
        break;
    case ECP_ACT_GELU:
        for (size_t i = 0; i < n; i++) {
            float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
            float pdf = 0.39894228040143268f * expf(-0.5f * x[i] * x[i]);
            dx[i] = dy[i] * (cdf + x[i] * pdf);
        }
        break;
    default:
        break;
    }
}

double ecp_act_eval_d(ecp_act a, double x, double *deriv)
{
    double y, d;
    switch (a) {
    case ECP_ACT_RELU: y = x > 0 ? x : 0; d = x > 0; break;
    case ECP_ACT_LEAKY_RELU: y = x > 0 ? x : LEAKY_SLOPE * x; d = x > 0 ? 1 : LEAKY_SLOPE; break;
    case ECP_ACT_TANH: y = tanh(x); d = 1 - y * y; break;
    case ECP_ACT_SIGMOID:
        y = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
        d = y * (1 - y);
        break;
    case ECP_ACT_SOFTPLUS:
        y = fmax(x, 0) + log1p(exp(-fabs(x)));
        d = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
        break;
    case ECP_ACT_GELU: {
        double cdf = 0.5 * (1 + erf(x * 0.70710678118654752));
        y = x * cdf;
        d = cdf + x * 0.39894228040143268 * exp(-0.5 * x * x);
        break;
    }
    default: y = x; d = 1; break;
    }
    if (deriv)
        *deriv = d;
    return y;
}
