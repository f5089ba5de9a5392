/* The dense MLP: parameters, masks, and the batched forward and backward passes on OpenBLAS.
 * Forward and backward of a layer sit side by side so that a change to one is seen with the
 * other. Activations are row-major batch x width, so every product is one cblas_sgemm, except
 * layer 0's two products with the input batch when it is mostly exact zeros (mnist): those run
 * on the sparse-input kernels of sparse_input.c (see there and sparse_input.h). */
#include "../internal.h"
#include "sparse_input.h"
#include <cblas.h>
#include <math.h>

/* The model with zero weights: ecp_mlp_create initialises them, a clone copies over them. */
static ecp_status mlp_alloc(ecp_mlp **out, int n_layers, const int *sizes, const ecp_act *acts,
                            ecp_error *err)
{
    *out = NULL;
    if (n_layers < 1 || n_layers > ECP_MAX_LAYERS)
        return ecp_fail(err, ECP_ERR_ARG, "an MLP needs 1 to %d layers, not %d", ECP_MAX_LAYERS,
                        n_layers);
    for (int i = 0; i <= n_layers; i++)
        if (sizes[i] < 1 || sizes[i] > ECP_MAX_WIDTH)
            return ecp_fail(err, ECP_ERR_ARG, "layer width %d out of range [1, 2^24]", sizes[i]);
    for (int l = 0; l < n_layers; l++)
        if ((unsigned)acts[l] >= ECP_ACT_COUNT)
            return ecp_fail(err, ECP_ERR_ARG, "layer %d: invalid activation %d", l, (int)acts[l]);
    uint64_t params = 0;
    for (int l = 0; l < n_layers; l++)
        params += (uint64_t)sizes[l] * (uint64_t)sizes[l + 1] + (uint64_t)sizes[l + 1];
    /* Weights (float) and mask (byte) per weight. */
    if (ecp_budget_check(params * (sizeof(float) + 1), "the model's parameters", err))
        return ECP_ERR_MEMORY;
    ecp_mlp *m = ecp_zalloc(1, sizeof *m, "mlp", err);
    if (!m)
        return ECP_ERR_MEMORY;
    m->n_layers = n_layers;
    m->sizes = ecp_alloc((size_t)n_layers + 1, sizeof *m->sizes, "mlp", err);
    m->layer = ecp_zalloc((size_t)n_layers, sizeof *m->layer, "mlp", err);
    if (!m->sizes || !m->layer) {
        ecp_mlp_free(m);
        return ECP_ERR_MEMORY;
    }
    memcpy(m->sizes, sizes, ((size_t)n_layers + 1) * sizeof *sizes);
    for (int l = 0; l < n_layers; l++) {
        ecp_layer *L = &m->layer[l];
        L->n_in = sizes[l];
        L->n_out = sizes[l + 1];
        L->act = acts[l];
        ecp_act_defaults(L->act, L->act_p);
        size_t nw = (size_t)L->n_in * (size_t)L->n_out;
        L->W = ecp_zalloc(nw, sizeof *L->W, "mlp weights", err);
        L->b = ecp_zalloc((size_t)L->n_out, sizeof *L->b, "mlp bias", err);
        L->pruned = ecp_zalloc(nw, 1, "mlp mask", err);
        if (!L->W || !L->b || !L->pruned) {
            ecp_mlp_free(m);
            return ECP_ERR_MEMORY;
        }
    }
    *out = m;
    return ECP_OK;
}

ecp_status ecp_mlp_create(ecp_mlp **out, int n_layers, const int *sizes, const ecp_act *acts,
                          ecp_error *err)
{
    ECP_REQUIRE(out, err);
    *out = NULL;
    ECP_REQUIRE(sizes, err);
    ECP_REQUIRE(acts, err);
    ecp_status s = mlp_alloc(out, n_layers, sizes, acts, err);
    /* A fresh model is never all zeros (which trains to chance without an error). */
    if (!s)
        ecp_mlp_init(*out, ECP_INIT_SEED);
    return s;
}

void ecp_mlp_free(ecp_mlp *m)
{
    if (!m)
        return;
    if (m->layer)
        for (int l = 0; l < m->n_layers; l++) {
            free(m->layer[l].W);
            free(m->layer[l].b);
            free(m->layer[l].pruned);
        }
    free(m->layer);
    free(m->sizes);
    free(m->w0t);
    free(m->pruned0t);
    free(m->orig);
    free(m->orig_mask);
    ecp_iface_free(m->iface);
    free(m);
}

static void free_strs(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void ecp_iface_free(ecp_iface *f)
{
    if (!f)
        return;
    char *s[] = {f->input, f->output, f->out_param0, f->producer_name, f->producer_version,
                 f->domain, f->doc_string, f->graph_name, f->graph_doc};
    for (size_t i = 0; i < sizeof s / sizeof *s; i++)
        free(s[i]);
    for (int i = 0; i < ECP_IFACE_RANK; i++)
        free(f->in_param[i]);
    free_strs(f->meta_key, f->n_meta);
    free_strs(f->meta_val, f->n_meta);
    free(f);
}

/* strdup that counts its failures (NULL stays NULL). */
static char *dup_or_fail(const char *s, int *bad)
{
    char *d = s ? strdup(s) : NULL;
    *bad |= s && !d;
    return d;
}

ecp_iface *ecp_iface_clone(const ecp_iface *f, ecp_error *err)
{
    ecp_iface *c = ecp_zalloc(1, sizeof *c, "model interface", err);
    if (!c)
        return NULL;
    *c = *f;
    int bad = 0;
    char **s[] = {&c->input, &c->output, &c->out_param0, &c->producer_name, &c->producer_version,
                  &c->domain, &c->doc_string, &c->graph_name, &c->graph_doc};
    for (size_t i = 0; i < sizeof s / sizeof *s; i++)
        *s[i] = dup_or_fail(*s[i], &bad);
    for (int i = 0; i < ECP_IFACE_RANK; i++)
        c->in_param[i] = dup_or_fail(f->in_param[i], &bad);
    c->meta_key = c->meta_val = NULL;
    c->n_meta = 0;
    if (f->n_meta) {
        c->meta_key = ecp_zalloc((size_t)f->n_meta, sizeof *c->meta_key, "metadata", err);
        c->meta_val = ecp_zalloc((size_t)f->n_meta, sizeof *c->meta_val, "metadata", err);
        bad |= !c->meta_key || !c->meta_val;
        for (int i = 0; !bad && i < f->n_meta; i++, c->n_meta++) {
            c->meta_key[i] = dup_or_fail(f->meta_key[i], &bad);
            c->meta_val[i] = dup_or_fail(f->meta_val[i], &bad);
        }
    }
    if (bad) {
        ecp_iface_free(c);
        ecp_fail(err, ECP_ERR_MEMORY, "out of memory copying the model's interface");
        return NULL;
    }
    return c;
}

ecp_status ecp_mlp_clone(const ecp_mlp *m, ecp_mlp **out, ecp_error *err)
{
    ECP_REQUIRE(out, err);
    *out = NULL;
    ECP_REQUIRE(m, err);
    ecp_act acts[ECP_MAX_LAYERS];
    for (int l = 0; l < m->n_layers; l++)
        acts[l] = m->layer[l].act;
    ecp_status s = mlp_alloc(out, m->n_layers, m->sizes, acts, err);
    if (!s)
        s = ecp_mlp_copy(*out, m, err);
    if (!s) {
        (*out)->has_training = m->has_training;
        (*out)->training = m->training;
    }
    if (!s && m->orig && !(s = ecp_mlp_keep_original(*out, err))) {
        memcpy((*out)->orig, m->orig, (size_t)ecp_mlp_n_params(m) * sizeof *m->orig);
        memcpy((*out)->orig_mask, m->orig_mask, (size_t)ecp_mlp_n_weights(m));
    }
    if (s) {
        ecp_mlp_free(*out);
        *out = NULL;
    }
    return s;
}

void ecp_mlp_set_training(ecp_mlp *m, const ecp_train_opts *o)
{
    m->has_training = 1;
    memset(&m->training, 0, sizeof m->training);
    m->training.epochs = o->epochs;
    m->training.batch = o->batch;
    m->training.optim = o->optim;
}

int ecp_mlp_training(const ecp_mlp *m, ecp_train_opts *o)
{
    if (!m->has_training)
        return 0;
    o->epochs = m->training.epochs;
    o->batch = m->training.batch;
    o->optim = m->training.optim;
    return 1;
}

ecp_status ecp_mlp_copy(ecp_mlp *dst, const ecp_mlp *src, ecp_error *err)
{
    ECP_REQUIRE(dst, err);
    ECP_REQUIRE(src, err);
    if (dst->n_layers != src->n_layers)
        return ecp_fail(err, ECP_ERR_SHAPE, "copy: models have %d and %d layers", dst->n_layers,
                        src->n_layers);
    for (int i = 0; i <= src->n_layers; i++)
        if (dst->sizes[i] != src->sizes[i])
            return ecp_fail(err, ECP_ERR_SHAPE, "copy: width %d differs (%d vs %d)", i,
                            dst->sizes[i], src->sizes[i]);
    /* The one step that can fail comes first: a failed copy leaves dst as it was. */
    ecp_iface *f = NULL;
    if (src->iface && dst->iface != src->iface && !(f = ecp_iface_clone(src->iface, err)))
        return ECP_ERR_MEMORY;
    for (int l = 0; l < src->n_layers; l++) {
        const ecp_layer *S = &src->layer[l];
        ecp_layer *D = &dst->layer[l];
        size_t nw = (size_t)S->n_in * S->n_out;
        memcpy(D->W, S->W, nw * sizeof *D->W);
        memcpy(D->b, S->b, (size_t)S->n_out * sizeof *D->b);
        memcpy(D->pruned, S->pruned, nw);
        D->act = S->act;
        memcpy(D->act_p, S->act_p, sizeof D->act_p);
    }
    dst->nm_n = src->nm_n;
    dst->nm_m = src->nm_m;
    dst->nm_layers = src->nm_layers;
    if (dst->iface != src->iface) {
        ecp_iface_free(dst->iface);
        dst->iface = f;
    }
    return ECP_OK;
}

void ecp_mlp_init(ecp_mlp *m, uint64_t seed)
{
    if (!m)
        return;
    ecp_rng r;
    ecp_rng_seed(&r, seed);
    for (int l = 0; l < m->n_layers; l++) {
        ecp_layer *L = &m->layer[l];
        /* torch.nn.Linear's default: kaiming_uniform(a=sqrt(5)) gives U(±1/sqrt(fan_in)). */
        double bound = 1.0 / sqrt((double)L->n_in);
        size_t nw = (size_t)L->n_in * L->n_out;
        for (size_t i = 0; i < nw; i++)
            L->W[i] = L->pruned[i] ? 0.0f : (float)((2 * ecp_rng_uniform(&r) - 1) * bound);
        for (int i = 0; i < L->n_out; i++)
            L->b[i] = (float)((2 * ecp_rng_uniform(&r) - 1) * bound);
    }
}

ecp_status ecp_mlp_create_arch(ecp_mlp **out, const char *arch, ecp_act hidden_act,
                               ecp_error *err)
{
    ECP_REQUIRE(out, err);
    *out = NULL;
    ECP_REQUIRE(arch, err);
    int sizes[ECP_MAX_LAYERS + 1], n = 0;
    const char *p = arch;
    *out = NULL;
    /* Quote at most 60 characters: the problem must survive in a bounded message. */
    int q = (int)strnlen(arch, 61) > 60 ? 57 : 60;
    const char *more = q == 57 ? "..." : "";
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > ECP_MAX_WIDTH || (*end && (*end != '-' || !end[1])))
            return ecp_fail(err, ECP_ERR_ARG,
                            "arch '%.*s%s': expected widths in [1, 2^24] separated by '-', "
                            "e.g. 784-300-100-10 (at width %d)", q, arch, more, n + 1);
        if (n == ECP_MAX_LAYERS + 1)
            return ecp_fail(err, ECP_ERR_ARG, "arch '%.*s%s': more than %d layers", q, arch,
                            more, ECP_MAX_LAYERS);
        sizes[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n < 2)
        return ecp_fail(err, ECP_ERR_ARG,
                        "arch '%.*s%s': needs at least an input and an output width", q, arch,
                        more);
    ecp_act acts[ECP_MAX_LAYERS];
    for (int l = 0; l < n - 1; l++)
        acts[l] = l == n - 2 ? ECP_ACT_IDENTITY : hidden_act;
    return ecp_mlp_create(out, n - 1, sizes, acts, err);
}

/* Accessors: NULL or a layer out of range gives 0 (NULL for arrays). */
#define LAYER_OK(m, l) ((m) && (l) >= 0 && (l) < (m)->n_layers)
int ecp_mlp_n_layers(const ecp_mlp *m) { return m ? m->n_layers : 0; }
int ecp_mlp_n_in(const ecp_mlp *m) { return m ? m->sizes[0] : 0; }
int ecp_mlp_n_out(const ecp_mlp *m) { return m ? m->sizes[m->n_layers] : 0; }
int ecp_mlp_layer_in(const ecp_mlp *m, int l) { return LAYER_OK(m, l) ? m->layer[l].n_in : 0; }
int ecp_mlp_layer_out(const ecp_mlp *m, int l) { return LAYER_OK(m, l) ? m->layer[l].n_out : 0; }
ecp_act ecp_mlp_layer_act(const ecp_mlp *m, int l)
{
    return LAYER_OK(m, l) ? m->layer[l].act : ECP_ACT_IDENTITY;
}
void ecp_mlp_set_layer_act(ecp_mlp *m, int l, ecp_act a)
{
    if (LAYER_OK(m, l) && (unsigned)a < ECP_ACT_COUNT) {
        m->layer[l].act = a;
        ecp_act_defaults(a, m->layer[l].act_p);
    }
}
const float *ecp_mlp_layer_act_params(const ecp_mlp *m, int l)
{
    return LAYER_OK(m, l) ? m->layer[l].act_p : NULL;
}
ecp_status ecp_mlp_set_layer_act_params(ecp_mlp *m, int l, ecp_act a, const float *p,
                                        ecp_error *err)
{
    ECP_REQUIRE(m, err);
    if (!LAYER_OK(m, l))
        return ecp_fail(err, ECP_ERR_ARG, "layer %d: the model has layers 0..%d", l,
                        m->n_layers - 1);
    ecp_status s = ecp_act_check(a, p, err);
    if (s)
        return s;
    m->layer[l].act = a;
    ecp_act_defaults(a, m->layer[l].act_p);
    for (int i = 0; p && i < ecp_act_n_params(a); i++)
        m->layer[l].act_p[i] = p[i];
    return ECP_OK;
}
float *ecp_mlp_weights(ecp_mlp *m, int l) { return LAYER_OK(m, l) ? m->layer[l].W : NULL; }
float *ecp_mlp_bias(ecp_mlp *m, int l) { return LAYER_OK(m, l) ? m->layer[l].b : NULL; }
uint8_t *ecp_mlp_pruned(ecp_mlp *m, int l) { return LAYER_OK(m, l) ? m->layer[l].pruned : NULL; }
const float *ecp_mlp_weights_c(const ecp_mlp *m, int l)
{
    return LAYER_OK(m, l) ? m->layer[l].W : NULL;
}
const float *ecp_mlp_bias_c(const ecp_mlp *m, int l) { return LAYER_OK(m, l) ? m->layer[l].b : NULL; }
const uint8_t *ecp_mlp_pruned_c(const ecp_mlp *m, int l)
{
    return LAYER_OK(m, l) ? m->layer[l].pruned : NULL;
}

int64_t ecp_mlp_n_weights(const ecp_mlp *m)
{
    int64_t n = 0;
    if (!m)
        return 0;
    for (int l = 0; l < m->n_layers; l++)
        n += (int64_t)m->layer[l].n_in * m->layer[l].n_out;
    return n;
}

int64_t ecp_mlp_n_params(const ecp_mlp *m)
{
    if (!m)
        return 0;
    int64_t n = ecp_mlp_n_weights(m);
    for (int l = 0; l < m->n_layers; l++)
        n += m->layer[l].n_out;
    return n;
}

int64_t ecp_mlp_layer_n_pruned(const ecp_mlp *m, int l)
{
    if (!LAYER_OK(m, l))
        return 0;
    const ecp_layer *L = &m->layer[l];
    size_t nw = (size_t)L->n_in * L->n_out;
    int64_t c = 0;
    for (size_t i = 0; i < nw; i++)
        c += L->pruned[i];
    return c;
}

int64_t ecp_mlp_n_pruned(const ecp_mlp *m)
{
    int64_t c = 0;
    if (!m)
        return 0;
    for (int l = 0; l < m->n_layers; l++)
        c += ecp_mlp_layer_n_pruned(m, l);
    return c;
}

void ecp_mlp_mask_from_zeros(ecp_mlp *m)
{
    if (!m)
        return;
    for (int l = 0; l < m->n_layers; l++) {
        ecp_layer *L = &m->layer[l];
        size_t nw = (size_t)L->n_in * L->n_out;
        for (size_t i = 0; i < nw; i++)
            L->pruned[i] = L->W[i] == 0.0f;
    }
}

void ecp_mlp_apply_mask(ecp_mlp *m)
{
    if (!m)
        return;
    for (int l = 0; l < m->n_layers; l++) {
        ecp_layer *L = &m->layer[l];
        size_t nw = (size_t)L->n_in * L->n_out;
        for (size_t i = 0; i < nw; i++)
            if (L->pruned[i])
                L->W[i] = 0.0f;
    }
}

ecp_status ecp_mlp_check_finite(const ecp_mlp *m, const char *what, ecp_error *err)
{
    ECP_REQUIRE(m, err);
    for (int l = 0; l < m->n_layers; l++) {
        const ecp_layer *L = &m->layer[l];
        size_t nw = (size_t)L->n_in * L->n_out;
        for (size_t i = 0; i < nw; i++)
            if (!isfinite(L->W[i]))
                return ecp_fail(err, ECP_ERR_NUMERIC, "%s: layer %d weight %zu is not finite",
                                what, l, i);
        for (int i = 0; i < L->n_out; i++)
            if (!isfinite(L->b[i]))
                return ecp_fail(err, ECP_ERR_NUMERIC, "%s: layer %d bias %d is not finite", what,
                                l, i);
    }
    return ECP_OK;
}

/* ------------------------------------------------------------------ workspace */

ecp_status ecp_ws_create(ecp_ws **out, const ecp_mlp *m, int max_batch, ecp_error *err)
{
    ECP_REQUIRE(out, err);
    *out = NULL;
    ECP_REQUIRE(m, err);
    *out = NULL;
    if (max_batch < 1)
        return ecp_fail(err, ECP_ERR_ARG, "batch size must be >= 1, not %d", max_batch);
    /* The whole workspace is weighed before any of it is allocated: one buffer at a time could
     * each fit the budget while together they do not. */
    uint64_t floats = 0;
    int L = m->n_layers, wmax = 0;
    for (int i = 0; i <= L; i++) {
        floats += (uint64_t)m->sizes[i] * (i ? 3 : 1);
        wmax = m->sizes[i] > wmax ? m->sizes[i] : wmax;
    }
    floats = (floats + (uint64_t)wmax) * (uint64_t)max_batch;
    char what[96];
    snprintf(what, sizeof what, "the workspace for batches of %d", max_batch);
    if (ecp_budget_check(floats * sizeof(float), what, err))
        return ECP_ERR_MEMORY;
    wmax = 0;
    ecp_ws *ws = ecp_zalloc(1, sizeof *ws, "workspace", err);
    if (!ws)
        return ECP_ERR_MEMORY;
    ws->cap = max_batch;
    ws->n_layers = L;
    ws->a = ecp_zalloc((size_t)L + 1, sizeof *ws->a, "workspace", err);
    ws->z = ecp_zalloc((size_t)L, sizeof *ws->z, "workspace", err);
    ws->dz = ecp_zalloc((size_t)L, sizeof *ws->dz, "workspace", err);
    if (!ws->a || !ws->z || !ws->dz)
        goto fail;
    /* One block (ecp_carve): the passes that create a workspace per call or per layer would
     * otherwise first-touch hundreds of 4 KB pages each time (docs/PERF.md). */
    ecp_carve c = {0};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i <= L; i++) {
            wmax = m->sizes[i] > wmax ? m->sizes[i] : wmax;
            ws->a[i] = ecp_carve_take(&c, (size_t)max_batch * m->sizes[i], sizeof(float));
            if (i < L) {
                ws->z[i] = ecp_carve_take(&c, (size_t)max_batch * m->sizes[i + 1], sizeof(float));
                ws->dz[i] = ecp_carve_take(&c, (size_t)max_batch * m->sizes[i + 1], sizeof(float));
            }
        }
        ws->da = ecp_carve_take(&c, (size_t)max_batch * wmax, sizeof(float));
        if (pass == 0) {
            if (!(ws->arena = ecp_aligned_alloc(c.used, 1, "workspace", err)))
                goto fail;
            c = (ecp_carve){.base = ws->arena};
        }
    }
    *out = ws;
    return ECP_OK;
fail:
    ecp_ws_free(ws);
    return ECP_ERR_MEMORY;
}

void ecp_ws_free(ecp_ws *ws)
{
    if (!ws)
        return;
    free(ws->a);
    free(ws->z);
    free(ws->dz);
    free(ws->arena);
    ecp_sparse_input_release(&ws->input);
    free(ws->input.wt);
    free(ws->input.dwt);
    ecp_pool_free(ws->input.pool);
    free(ws);
}

int ecp_ws_max_batch(const ecp_ws *ws) { return ws ? ws->cap : 0; }
const float *ecp_ws_output(const ecp_ws *ws) { return ws ? ws->a[ws->n_layers] : NULL; }
const float *ecp_ws_act(const ecp_ws *ws, int i)
{
    return ws && i >= 0 && i <= ws->n_layers ? ws->a[i] : NULL;
}
const float *ecp_ws_pre(const ecp_ws *ws, int l)
{
    return ws && l >= 0 && l < ws->n_layers ? ws->z[l] : NULL;
}
const float *ecp_ws_dpre(const ecp_ws *ws, int l)
{
    return ws && l >= 0 && l < ws->n_layers ? ws->dz[l] : NULL;
}

/* ------------------------------------------------------------------ layer forward / backward */

/* db (+)= sum over the batch of dz, in sample order. */
static void bias_grad(const float *dz, float *db, int n_out, int batch, int overwrite)
{
    if (overwrite)
        memset(db, 0, (size_t)n_out * sizeof *db);
    for (int n = 0; n < batch; n++) {
        const float *d = dz + (size_t)n * n_out;
        for (int i = 0; i < n_out; i++)
            db[i] += d[i];
    }
}

/* z = a W^T + b ; out = act(z) */
static void layer_forward(const ecp_layer *L, const float *a, float *z, float *out, int batch)
{
    for (int n = 0; n < batch; n++)
        memcpy(z + (size_t)n * L->n_out, L->b, (size_t)L->n_out * sizeof *z);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, L->n_out, L->n_in, 1.0f, a,
                L->n_in, L->W, L->n_in, 1.0f, z, L->n_out);
    ecp_act_forward_p(L->act, L->act_p, z, out, (size_t)batch * L->n_out);
}

void ecp_layer_forward(const ecp_layer *L, const float *a, float *out, int batch)
{
    layer_forward(L, a, out, out, batch);
}

/* Given dz of this layer: dW (+)= dz^T a, db (+)= sum_n dz, and (if da_in) da_in = dz W.
 * With overwrite the gradients are written, not added (no zeroing pass before). */
static void layer_backward(const ecp_layer *L, const float *a, const float *dz, float *da_in,
                           float *dW, float *db, int batch, int overwrite)
{
    if (dW) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->n_out, L->n_in, batch, 1.0f, dz,
                    L->n_out, a, L->n_in, overwrite ? 0.0f : 1.0f, dW, L->n_in);
        bias_grad(dz, db, L->n_out, batch, overwrite);
    }
    if (da_in)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, L->n_in, L->n_out, 1.0f, dz,
                    L->n_out, L->W, L->n_in, 0.0f, da_in, L->n_in);
}

/* Layer 0's W^T (n_in x n_out, row stride *ld): the training layout's, or a transposed copy in
 * ws (public forward with a forced sparse path; NULL if it cannot be allocated). */
static const float *layer0_wt(const ecp_mlp *m, ecp_ws *ws, size_t *ld)
{
    const ecp_layer *L = &m->layer[0];
    if (m->w0t) {
        *ld = (size_t)m->ld0t;
        return m->w0t;
    }
    *ld = (size_t)ecp_sparse_input_ld(L->n_out);
    if (!ws->input.wt && !(ws->input.wt = malloc((size_t)L->n_in * *ld * sizeof(float))))
        return NULL;
    ecp_transpose(L->W, L->n_out, L->n_in, (size_t)L->n_in, ws->input.wt, *ld, 0);
    return ws->input.wt;
}

/* Layer 0: sparse (CSR of the batch, row AXPYs over W^T) or dense (sgemm), chosen per batch:
 * under AUTO, sparse iff the model is in the training layout and the batch's density is at
 * most ECP_SPARSE_INPUT_MAX_DENSITY. The choice is a function of the batch only: deterministic. */
static void layer0_forward(const ecp_mlp *m, ecp_ws *ws, int batch)
{
    const ecp_layer *L = &m->layer[0];
    const float *a = ws->a[0];
    float *z = ws->z[0];
    ws->input.used = 0;
    ws->input.csc = 0;
    int want = ws->input.mode == ECP_SPARSE_INPUT_SPARSE || (ws->input.mode == ECP_SPARSE_INPUT_AUTO && m->w0t);
    if (want && ecp_sparse_input_ensure(ws, L->n_in, L->n_out)) {
        int64_t total = (int64_t)batch * L->n_in;
        int64_t max_nnz = ws->input.mode == ECP_SPARSE_INPUT_SPARSE
                              ? total
                              : (int64_t)(ECP_SPARSE_INPUT_MAX_DENSITY * (double)total);
        const float *wt;
        size_t ld;
        if (ecp_sparse_input_build_csr(ws, a, batch, L->n_in, max_nnz) >= 0 &&
            (wt = layer0_wt(m, ws, &ld))) {
            ecp_sparse_input_forward(ws, batch, wt, ld, L->n_out, L->b, z);
            ws->input.used = 1;
        }
    }
    if (!ws->input.used) {
        if (!m->w0t) {
            layer_forward(L, a, z, ws->a[1], batch);
            return;
        }
        for (int n = 0; n < batch; n++)
            memcpy(z + (size_t)n * L->n_out, L->b, (size_t)L->n_out * sizeof *z);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, L->n_out, L->n_in, 1.0f, a,
                    L->n_in, m->w0t, m->ld0t, 1.0f, z, L->n_out);
    }
    ecp_act_forward_p(L->act, L->act_p, z, ws->a[1], (size_t)batch * L->n_out);
}

/* Layer 0's weight and bias gradients (it has no da_in), on the path its forward took. In the
 * training layout dW is transposed like m->w0t (n_in x n_out, row stride m->ld0t). */
static void layer0_backward(const ecp_mlp *m, ecp_ws *ws, float *dW, float *db, int batch)
{
    const ecp_layer *L = &m->layer[0];
    const float *dz = ws->dz[0];
    int ow = ws->grad_overwrite;
    size_t ld = (size_t)ecp_sparse_input_ld(L->n_out);
    if (ws->input.used && !m->w0t && !ws->input.dwt &&
        !(ws->input.dwt = malloc((size_t)L->n_in * ld * sizeof(float))))
        ws->input.used = 0; /* no scratch: the dense product below (a[0] holds the batch) */
    if (ws->input.used) {
        if (!ws->input.csc)
            ecp_sparse_input_build_csc(ws, batch, L->n_in);
        /* dz with 64-byte rows (see ecp_sparse_input_ld): the copy costs far less than it saves. */
        for (int n = 0; n < batch; n++)
            memcpy(ws->input.dz + (size_t)n * ld, dz + (size_t)n * L->n_out,
                   (size_t)L->n_out * sizeof *dz);
        if (m->w0t) {
            ecp_sparse_input_dw(ws, L->n_in, ws->input.dz, ld, L->n_out, !ow, dW, (size_t)m->ld0t);
        } else {
            ecp_sparse_input_dw(ws, L->n_in, ws->input.dz, ld, L->n_out, 0, ws->input.dwt, ld);
            ecp_transpose(ws->input.dwt, L->n_in, L->n_out, ld, dW, (size_t)L->n_in, !ow);
        }
        bias_grad(dz, db, L->n_out, batch, ow);
    } else if (m->w0t) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->n_in, L->n_out, batch, 1.0f,
                    ws->a[0], L->n_in, dz, L->n_out, ow ? 0.0f : 1.0f, dW, m->ld0t);
        bias_grad(dz, db, L->n_out, batch, ow);
    } else {
        layer_backward(L, ws->a[0], dz, NULL, dW, db, batch, ow);
    }
}

void ecp_mlp_forward(const ecp_mlp *m, ecp_ws *ws, const float *x, int batch)
{
    if (!m || !ws || !x)
        return;
    if (ws->a[0] != x)
        memcpy(ws->a[0], x, (size_t)batch * m->sizes[0] * sizeof(float));
    layer0_forward(m, ws, batch);
    for (int l = 1; l < m->n_layers; l++)
        layer_forward(&m->layer[l], ws->a[l], ws->z[l], ws->a[l + 1], batch);
}

void ecp_mlp_forward_from(const ecp_mlp *m, ecp_ws *ws, int l, const float *a, int batch)
{
    if (l <= 0) {
        ecp_mlp_forward(m, ws, a, batch);
        return;
    }
    memcpy(ws->a[l], a, (size_t)batch * m->sizes[l] * sizeof(float));
    for (; l < m->n_layers; l++)
        layer_forward(&m->layer[l], ws->a[l], ws->z[l], ws->a[l + 1], batch);
}

/* Down to layer lo's dz (lo > 0 only without gradients: the layers below are not needed). */
static void backward(const ecp_mlp *m, ecp_ws *ws, const float *dy, int batch, ecp_grads *g,
                     int lo)
{
    int L = m->n_layers;
    const ecp_layer *top = &m->layer[L - 1];
    ecp_act_backward_p(top->act, top->act_p, ws->z[L - 1], ws->a[L], dy, ws->dz[L - 1],
                     (size_t)batch * top->n_out);
    for (int l = L - 1; l >= 0; l--) {
        const ecp_layer *Ly = &m->layer[l];
        if (l == 0) {
            if (g)
                layer0_backward(m, ws, g->dW[0], g->db[0], batch);
            break;
        }
        if (l <= lo)
            break;
        layer_backward(Ly, ws->a[l], ws->dz[l], ws->da, g ? g->dW[l] : NULL,
                       g ? g->db[l] : NULL, batch, ws->grad_overwrite);
        const ecp_layer *P = &m->layer[l - 1];
        ecp_act_backward_p(P->act, P->act_p, ws->z[l - 1], ws->a[l], ws->da, ws->dz[l - 1],
                         (size_t)batch * P->n_out);
    }
}

void ecp_mlp_backward(const ecp_mlp *m, ecp_ws *ws, const float *dy, int batch, ecp_grads *g)
{
    if (m && ws && dy)
        backward(m, ws, dy, batch, g, 0);
}

void ecp_mlp_backward_to(const ecp_mlp *m, ecp_ws *ws, const float *dy, int batch, int lo)
{
    if (m && ws && dy)
        backward(m, ws, dy, batch, NULL, lo);
}

/* ------------------------------------------------------------------ gradients */

ecp_status ecp_grads_create(ecp_grads **out, const ecp_mlp *m, ecp_error *err)
{
    ECP_REQUIRE(out, err);
    *out = NULL;
    ECP_REQUIRE(m, err);
    *out = NULL;
    ecp_grads *g = ecp_zalloc(1, sizeof *g, "gradients", err);
    if (!g)
        return ECP_ERR_MEMORY;
    g->n_layers = m->n_layers;
    g->dW = ecp_zalloc((size_t)m->n_layers, sizeof *g->dW, "gradients", err);
    g->db = ecp_zalloc((size_t)m->n_layers, sizeof *g->db, "gradients", err);
    g->nw = ecp_zalloc((size_t)m->n_layers, sizeof *g->nw, "gradients", err);
    g->nb = ecp_zalloc((size_t)m->n_layers, sizeof *g->nb, "gradients", err);
    if (!g->dW || !g->db || !g->nw || !g->nb) {
        ecp_grads_free(g);
        return ECP_ERR_MEMORY;
    }
    for (int l = 0; l < m->n_layers; l++) {
        /* In the training layout, layer 0's gradient is transposed with padded rows, like
         * m->w0t (the padding stays 0). */
        int ld = l == 0 && m->w0t ? m->ld0t : m->layer[l].n_out;
        g->nw[l] = (size_t)m->layer[l].n_in * ld;
        g->nb[l] = m->layer[l].n_out;
        g->dW[l] = ecp_zalloc(g->nw[l], sizeof(float), "gradients", err);
        g->db[l] = ecp_zalloc((size_t)m->layer[l].n_out, sizeof(float), "gradients", err);
        if (!g->dW[l] || !g->db[l]) {
            ecp_grads_free(g);
            return ECP_ERR_MEMORY;
        }
    }
    *out = g;
    return ECP_OK;
}

void ecp_grads_free(ecp_grads *g)
{
    if (!g)
        return;
    for (int l = 0; l < g->n_layers; l++) {
        if (g->dW)
            free(g->dW[l]);
        if (g->db)
            free(g->db[l]);
    }
    free(g->dW);
    free(g->db);
    free(g->nw);
    free(g->nb);
    free(g);
}

void ecp_grads_zero(ecp_grads *g)
{
    if (!g)
        return;
    for (int l = 0; l < g->n_layers; l++) {
        memset(g->dW[l], 0, g->nw[l] * sizeof(float));
        memset(g->db[l], 0, (size_t)g->nb[l] * sizeof(float));
    }
}

float *ecp_grads_w(ecp_grads *g, int l) { return g && l >= 0 && l < g->n_layers ? g->dW[l] : NULL; }
float *ecp_grads_b(ecp_grads *g, int l) { return g && l >= 0 && l < g->n_layers ? g->db[l] : NULL; }
