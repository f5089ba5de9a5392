/* Architectures of a given size: the dense network with the same depth, inputs and outputs as
 * another whose hidden widths are scaled by one common factor to fit a parameter budget (the
 * "same number of parameters, trained from scratch" baseline of a pruned network). */
#include "../internal.h"
#include <math.h>

#define ARCH_MAX_WIDTH (1 << 24) /* as ecp_mlp_create */

int64_t ecp_arch_params(int n_layers, const int *sizes)
{
    int64_t p = 0;
    for (int l = 0; l < n_layers; l++)
        p += ((int64_t)sizes[l] + 1) * sizes[l + 1];
    return p;
}

/* The widths change only at factors k / sizes[i]; there the widths are
 * max(1, floor(k * sizes[j] / sizes[i])), computed in integers so that two layers whose widths
 * change at the same factor change together. Returns 1 if the network fits the budget, 0 if
 * not, -1 if a width would pass the largest an MLP may have. */
static int fits_at(int n_layers, const int *sizes, int i, int64_t k, int64_t budget, int *out)
{
    out[0] = sizes[0];
    out[n_layers] = sizes[n_layers];
    for (int j = 1; j < n_layers; j++) {
        int64_t w = k * sizes[j] / sizes[i];
        if (w > ARCH_MAX_WIDTH)
            return -1;
        out[j] = w < 1 ? 1 : (int)w;
    }
    return ecp_arch_params(n_layers, out) <= budget;
}

ecp_status ecp_arch_fit_params(int n_layers, const int *sizes, int64_t budget, int *out_sizes,
                               int64_t *params, ecp_error *err)
{
    if (n_layers < 2)
        return ecp_fail(err, ECP_ERR_ARG, "architecture: %d layer(s), no hidden layer whose "
                                          "width could be scaled", n_layers);
    if (n_layers > ECP_MAX_LAYERS)
        return ecp_fail(err, ECP_ERR_ARG, "architecture: %d layers, at most %d", n_layers,
                        ECP_MAX_LAYERS);
    for (int i = 0; i <= n_layers; i++)
        if (sizes[i] < 1 || sizes[i] > ARCH_MAX_WIDTH)
            return ecp_fail(err, ECP_ERR_ARG, "architecture: width %d out of range [1, 2^24]",
                            sizes[i]);
    int w[ECP_MAX_LAYERS + 1];
    if (fits_at(n_layers, sizes, 1, 0, budget, w) != 1)
        return ecp_fail(err, ECP_ERR_ARG, "parameter budget %lld: even one unit per hidden "
                        "layer needs %lld weights + biases", (long long)budget,
                        (long long)ecp_arch_params(n_layers, w));
    /* The count never decreases with the factor, so for each layer's set of breakpoints
     * k / sizes[i] find the largest k that fits (doubling, then bisection); the largest of
     * those networks is the answer, and the next breakpoint after it does not fit. */
    int64_t best = -1;
    for (int i = 1; i < n_layers; i++) {
        int64_t lo = 0, hi = 1;
        int f;
        while ((f = fits_at(n_layers, sizes, i, hi, budget, w)) == 1) {
            lo = hi;
            hi *= 2;
        }
        if (f < 0)
            return ecp_fail(err, ECP_ERR_ARG, "parameter budget %lld: the hidden widths "
                            "would exceed 2^24", (long long)budget);
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (fits_at(n_layers, sizes, i, mid, budget, w) == 1)
                lo = mid;
            else
                hi = mid;
        }
        fits_at(n_layers, sizes, i, lo, budget, w);
        int64_t p = ecp_arch_params(n_layers, w);
        if (p > best) {
            best = p;
            memcpy(out_sizes, w, ((size_t)n_layers + 1) * sizeof *w);
        }
    }
    if (params)
        *params = best;
    return ECP_OK;
}

int64_t ecp_mlp_params_at_sparsity(const ecp_mlp *m, double sparsity)
{
    int64_t w = ecp_mlp_n_weights(m), gone = llround(sparsity * (double)w);
    if (gone < ecp_mlp_n_pruned(m))
        gone = ecp_mlp_n_pruned(m);
    return ecp_mlp_n_params(m) - gone;
}

ecp_status ecp_mlp_create_like(const ecp_mlp *m, const int *sizes, ecp_mlp **out,
                               ecp_error *err)
{
    ecp_act acts[ECP_MAX_LAYERS];
    for (int l = 0; l < m->n_layers; l++)
        acts[l] = m->layer[l].act;
    ecp_status s = ecp_mlp_create(out, m->n_layers, sizes, acts, err);
    for (int l = 0; !s && l < m->n_layers; l++)
        memcpy((*out)->layer[l].act_p, m->layer[l].act_p, sizeof m->layer[l].act_p);
    return s;
}

void ecp_arch_format(int n_layers, const int *sizes, char *buf, size_t n)
{
    size_t at = 0;
    if (n)
        buf[0] = 0;
    for (int i = 0; i <= n_layers && at < n; i++) {
        int k = snprintf(buf + at, n - at, "%s%d", i ? "-" : "", sizes[i]);
        if (k < 0)
            break;
        at += (size_t)k;
    }
}
