/* Structured reconstruction: once the neurons to remove are chosen, every layer that reads a
 * shrunk hidden layer is re-fitted by least squares to the outputs it had before, the neuron
 * analogue of Optimal Brain Surgeon.
 *
 * Bias compensation lets only b_{h+1} absorb what a removed neuron contributed; here the whole
 * remaining rows of W_{h+1} do. For row i of layer l the fit over its kept inputs K (and bias) is
 *     min_w  sum_n (w . a~_K,n - z0_i,n)^2 + lambda |w - w0_K|^2
 * with a~ the inputs the pruned network gives layer l, z0 the pre-activations of the network as
 * it was before this removal and lambda the damping of obs.c. It is ecp_obs_layer on a fixed mask
 * (the removed neurons' columns), fitted to the original network's outputs. Layers are done in
 * order, so layer l sees inputs already corrected by the layers before it. */
#include "prune.h"

/* Zeroes the incoming rows and biases of the removed neurons and marks their outgoing columns
 * pruned; the columns keep their values, which are the fit's starting point and target. */
static void mark_removed(ecp_mlp *m, uint8_t *const *keep)
{
    for (int h = 0; h + 1 < m->n_layers; h++) {
        ecp_layer *U = &m->layer[h], *D = &m->layer[h + 1];
        for (int j = 0; j < U->n_out; j++) {
            if (keep[h][j])
                continue;
            for (int k = 0; k < U->n_in; k++) {
                U->W[(size_t)j * U->n_in + k] = 0;
                U->pruned[(size_t)j * U->n_in + k] = 1;
            }
            U->b[j] = 0;
            for (int i = 0; i < D->n_out; i++)
                D->pruned[(size_t)i * D->n_in + j] = 1;
        }
    }
}

ecp_status ecp_neuron_refit(ecp_mlp *m, const ecp_dataset *calib, uint8_t *const *keep,
                            const ecp_prune_opts *o, uint64_t seed, ecp_error *err)
{
    int L = m->n_layers, first = L;
    for (int h = 0; h + 1 < L && first == L; h++)
        for (int j = 0; j < m->sizes[h + 1]; j++)
            if (!keep[h][j]) {
                first = h + 1;
                break;
            }
    if (first == L)
        return ECP_OK;
    ecp_mlp *orig = NULL;
    ecp_status s = ecp_mlp_clone(m, &orig, err);
    if (s)
        return s;
    mark_removed(m, keep);
    ecp_prune_opts ro = *o;
    ro.method = "obs"; /* unweighted: see docs/METHOD.md, structured reconstruction */
    ro.refit = 1;      /* the exact fit of the fixed mask, not the sweep's approximation */
    ro.block = 0;
    /* Every layer downstream of the first shrunk one: a layer whose own inputs did not change
     * still sees inputs that the layers before it changed. */
    for (int l = first; l < L && !s; l++)
        s = ecp_obs_layer(m, orig, calib, l, ecp_mlp_layer_n_pruned(m, l), &ro, seed, err);
    ecp_mlp_free(orig);
    return s;
}
