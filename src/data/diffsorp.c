/* The diffusion–sorption data generator: a conservative finite-volume solver (see diffsorp.h
 * for the equations and the discretisation) and the surrogate dataset built from it. */
#include "diffsorp.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* R(u) and u^(n_f-1) blow up at u = 0. The continuous solution and the scheme (a monotone
 * M-matrix discretisation, concave storage) keep u > 0, but a Newton update can overshoot
 * below zero from above; clamping the iterate at this floor keeps pow() finite. It never binds
 * at convergence for our data (u >= ~1e-4 with the defaults), so it costs no conservation. */
#define DS_U_FLOOR 1e-12

static const char *const ds_files[4] = {"train_x.npy", "train_y.npy", "test_x.npy",
                                        "test_y.npy"};

void ecp_diffsorp_model_default(ecp_diffsorp_model *m)
{
    m->D = 5e-4;
    m->phi = 0.29;
    m->rho_s = 2880.0;
    m->k = 3.5e-4;
    m->n_f = 0.874;
    m->beta = 1.0;
    m->u_left = 1.0;
}

void ecp_diffsorp_opts_default(ecp_diffsorp_opts *o)
{
    if (!o)
        return;
    o->n_c0 = 40;
    o->c0_min = 0.01;
    o->c0_max = 0.2;
    o->cells = 256;
    o->n_times = 101;
    o->t_end = 500.0;
    o->n_train = 20000;
    o->n_test = 5000;
    o->noise = 0.0;
    o->seed = 1;
    o->progress = 0;
}

/* ------------------------------------------------------------------ physics of one cell */

/* The sorbed part (1-phi) rho_s k u^n_f and its derivative, with one pow() for both. */
static void sorbed(const ecp_diffsorp_model *m, double u, double *s, double *ds)
{
    double coef = (1.0 - m->phi) * m->rho_s * m->k;
    if (coef == 0.0) {
        *s = 0.0;
        *ds = 0.0;
        return;
    }
    double p = pow(u, m->n_f);
    *s = coef * p;
    *ds = coef * m->n_f * p / u;
}

double ecp_diffsorp_storage(const ecp_diffsorp_model *m, double u)
{
    double s, ds;
    sorbed(m, u, &s, &ds);
    return m->phi * u + s;
}

double ecp_diffsorp_retardation(const ecp_diffsorp_model *m, double u)
{
    double s, ds;
    sorbed(m, u, &s, &ds);
    return 1.0 + ds / m->phi;
}

double ecp_diffsorp_mass(const ecp_diffsorp_model *m, const double *u, int cells)
{
    double h = 1.0 / cells, sum = 0.0;
    for (int i = 0; i < cells; i++)
        sum += ecp_diffsorp_storage(m, u[i]);
    return h * sum;
}

/* Conductances of the three kinds of face, in the conserved form (flux phi D u_x): interior
 * faces see the neighbour at distance h, the Dirichlet face the boundary value at h/2, and the
 * Robin face the outflow beta u_b with u_b eliminated (series resistances h/(2D) and 1/beta). */
static double g_inner(const ecp_diffsorp_model *m, double h) { return m->phi * m->D / h; }
static double g_left(const ecp_diffsorp_model *m, double h) { return 2.0 * m->phi * m->D / h; }
static double g_right(const ecp_diffsorp_model *m, double h)
{
    return m->phi * 2.0 * m->D * m->beta / (m->beta * h + 2.0 * m->D);
}

void ecp_diffsorp_boundary_flux(const ecp_diffsorp_model *m, const double *u, int cells,
                                double *in_left, double *out_right)
{
    double h = 1.0 / cells;
    if (in_left)
        *in_left = g_left(m, h) * (m->u_left - u[0]);
    if (out_right)
        *out_right = g_right(m, h) * u[cells - 1];
}

/* ------------------------------------------------------------------ linear algebra */

ecp_status ecp_diffsorp_thomas(int n, const double *a, const double *b, const double *c,
                               double *d, double *work, ecp_error *err)
{
    if (n <= 0)
        return ecp_fail(err, ECP_ERR_ARG, "thomas: system size %d", n);
    double piv = b[0];
    for (int i = 0; i < n; i++) {
        if (i > 0)
            piv = b[i] - a[i] * work[i - 1];
        if (piv == 0.0 || !isfinite(piv))
            return ecp_fail(err, ECP_ERR_NUMERIC, "thomas: zero or non-finite pivot in row %d",
                            i);
        work[i] = (i < n - 1 ? c[i] : 0.0) / piv;
        d[i] = (d[i] - (i > 0 ? a[i] * d[i - 1] : 0.0)) / piv;
    }
    for (int i = n - 2; i >= 0; i--)
        d[i] -= work[i] * d[i + 1];
    for (int i = 0; i < n; i++)
        if (!isfinite(d[i]))
            return ecp_fail(err, ECP_ERR_NUMERIC, "thomas: non-finite solution in row %d", i);
    return ECP_OK;
}

/* ------------------------------------------------------------------ time stepping */

static ecp_status check_model(const ecp_diffsorp_model *m, ecp_error *err)
{
    if (!(m->D > 0) || !(m->phi > 0 && m->phi <= 1) || !(m->rho_s >= 0) || !(m->k >= 0) ||
        !(m->n_f > 0 && m->n_f <= 1) || !(m->beta >= 0) || !(m->u_left > 0) ||
        !isfinite(m->D + m->rho_s + m->k + m->beta + m->u_left))
        return ecp_fail(err, ECP_ERR_ARG,
                        "diffsorp: model parameters out of range (need D > 0, 0 < phi <= 1, "
                        "rho_s, k, beta >= 0, 0 < n_f <= 1, u_left > 0)");
    return ECP_OK;
}

ecp_status ecp_diffsorp_solver_init(ecp_diffsorp_solver *s, const ecp_diffsorp_model *m,
                                    int cells, double dt, ecp_error *err)
{
    memset(s, 0, sizeof *s);
    ecp_status st = check_model(m, err);
    if (st)
        return st;
    if (cells < 2)
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp: cells = %d: need at least 2", cells);
    if (!(dt > 0) || !isfinite(dt))
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp: time step %g: must be > 0", dt);
    s->model = *m;
    s->cells = cells;
    s->h = 1.0 / cells;
    s->dt = dt;
    s->order = 2;
    s->newton_tol = 1e-10;
    s->newton_max = 50;
    double **bufs[] = {&s->u, &s->u_old, &s->m_old, &s->m_older, &s->a,
                       &s->b, &s->c,     &s->r,     &s->work,    &s->hist};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        *bufs[i] = ecp_zalloc((size_t)cells, sizeof(double), "diffsorp solver", err);
        if (!*bufs[i]) {
            ecp_diffsorp_solver_free(s);
            return ECP_ERR_MEMORY;
        }
    }
    return ECP_OK;
}

void ecp_diffsorp_solver_free(ecp_diffsorp_solver *s)
{
    if (!s)
        return;
    double *bufs[] = {s->u, s->u_old, s->m_old, s->m_older, s->a,
                      s->b, s->c,     s->r,     s->work,    s->hist};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    memset(s, 0, sizeof *s);
}

ecp_status ecp_diffsorp_solver_reset(ecp_diffsorp_solver *s, const double *u0, ecp_error *err)
{
    for (int i = 0; i < s->cells; i++) {
        if (!(u0[i] > 0) || !isfinite(u0[i]))
            return ecp_fail(err, ECP_ERR_ARG,
                            "diffsorp: initial value %g in cell %d: must be finite and > 0 "
                            "(R(u) is singular at 0)",
                            u0[i], i);
        s->u[i] = u0[i];
        s->u_old[i] = u0[i];
        s->m_old[i] = ecp_diffsorp_storage(&s->model, u0[i]);
        s->m_older[i] = s->m_old[i];
    }
    s->t = 0.0;
    s->steps = 0;
    s->newton_iters = 0;
    return ECP_OK;
}

/* Residual r and tridiagonal Jacobian (a, b, c) of the step equation at the iterate u:
 *   h (alpha m(u_i) - hist_i) / dt + F_{i+1/2} - F_{i-1/2} = 0,
 * with F the rightward flux of the conserved form; the fluxes are linear in u, so only the
 * storage term contributes u-dependent entries to the diagonal. */
static void step_system(ecp_diffsorp_solver *s, double alpha, const double *hist)
{
    const ecp_diffsorp_model *m = &s->model;
    int n = s->cells;
    double h = s->h, gi = g_inner(m, h), gl = g_left(m, h), gr = g_right(m, h);
    double scale = h / s->dt;
    for (int i = 0; i < n; i++) {
        double u = s->u[i], sv, dsv;
        sorbed(m, u, &sv, &dsv);
        double stor = m->phi * u + sv, dstor = m->phi + dsv;
        double out = i < n - 1 ? gi * (u - s->u[i + 1]) : gr * u;
        double in = i > 0 ? gi * (s->u[i - 1] - u) : gl * (m->u_left - u);
        s->r[i] = scale * (alpha * stor - hist[i]) + out - in;
        s->b[i] = scale * alpha * dstor + (i < n - 1 ? gi : gr) + (i > 0 ? gi : gl);
        s->a[i] = i > 0 ? -gi : 0.0;
        s->c[i] = i < n - 1 ? -gi : 0.0;
    }
}

/* Newton on the step equation from the iterate in s->u; converged when the largest update is
 * below newton_tol (absolute: u is O(1)). The storage is concave in u, so Newton approaches
 * the root from below once it is there, and only a first step from above can overshoot. */
static ecp_status newton(ecp_diffsorp_solver *s, double alpha, const double *hist,
                         ecp_error *err)
{
    for (int it = 0; it < s->newton_max; it++) {
        step_system(s, alpha, hist);
        for (int i = 0; i < s->cells; i++)
            s->r[i] = -s->r[i];
        ecp_status st = ecp_diffsorp_thomas(s->cells, s->a, s->b, s->c, s->r, s->work, err);
        if (st)
            return st;
        double big = 0.0;
        for (int i = 0; i < s->cells; i++) {
            double v = s->u[i] + s->r[i];
            s->u[i] = v < DS_U_FLOOR ? DS_U_FLOOR : v;
            big = fmax(big, fabs(s->r[i]));
        }
        s->newton_iters++;
        if (big <= s->newton_tol)
            return ECP_OK;
    }
    return ecp_fail(err, ECP_ERR_NUMERIC,
                    "diffsorp: Newton did not converge in %d iterations at t = %g (dt %g)",
                    s->newton_max, s->t + s->dt, s->dt);
}

ecp_status ecp_diffsorp_step(ecp_diffsorp_solver *s, ecp_error *err)
{
    int n = s->cells;
    int bdf2 = s->order == 2 && s->steps > 0;
    /* BDF2 with a constant step: (3 m^{n+1} - 4 m^n + m^{n-1}) / (2 dt); the history terms go
     * to hist so that the step equation reads h (alpha m - hist) / dt + flux balance = 0. */
    double alpha = bdf2 ? 1.5 : 1.0;
    double *hist = s->hist;
    for (int i = 0; i < n; i++) {
        double extrap = bdf2 ? 2.0 * s->u[i] - s->u_old[i] : s->u[i];
        s->u_old[i] = s->u[i];
        /* A linear extrapolation saves a Newton iteration in smooth stretches; never let it
         * start below half of the current value, where the storage is steep. */
        s->u[i] = fmax(extrap, 0.5 * s->u[i]);
        hist[i] = bdf2 ? 2.0 * s->m_old[i] - 0.5 * s->m_older[i] : s->m_old[i];
    }
    ecp_status st = newton(s, alpha, hist, err);
    if (st)
        return st;
    for (int i = 0; i < n; i++) {
        s->m_older[i] = s->m_old[i];
        s->m_old[i] = ecp_diffsorp_storage(&s->model, s->u[i]);
    }
    s->steps++;
    s->t = s->dt * (double)s->steps;
    return ECP_OK;
}

ecp_status ecp_diffsorp_solve_c0(const ecp_diffsorp_model *m, int cells, double c0,
                                 double t_end, int n_times, double *out, ecp_error *err)
{
    if (n_times < 2 || !(t_end > 0) || !isfinite(t_end))
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp: need t_end > 0 and at least 2 times");
    double interval = t_end / (n_times - 1);
    long sub = (long)ceil(interval / ECP_DIFFSORP_DT_MAX - 1e-9);
    if (sub < 1)
        sub = 1;
    ecp_diffsorp_solver s;
    ecp_status st = ecp_diffsorp_solver_init(&s, m, cells, interval / (double)sub, err);
    if (st)
        return st;
    for (int i = 0; i < cells; i++)
        out[i] = c0;
    st = ecp_diffsorp_solver_reset(&s, out, err);
    for (int k = 1; k < n_times && !st; k++) {
        for (long j = 0; j < sub && !st; j++)
            st = ecp_diffsorp_step(&s, err);
        if (!st)
            memcpy(out + (size_t)k * (size_t)cells, s.u, (size_t)cells * sizeof(double));
    }
    ecp_diffsorp_solver_free(&s);
    return st;
}

/* ------------------------------------------------------------------ the dataset */

static ecp_status check_opts(const ecp_diffsorp_opts *o, ecp_error *err)
{
    if (o->n_c0 < 3 || o->n_c0 > 1000000)
        return ecp_fail(err, ECP_ERR_ARG,
                        "diffsorp: n_c0 = %d: need 3 to 1e6 initial values (some are "
                        "held out for testing)",
                        o->n_c0);
    if (!(o->c0_min > 0) || !(o->c0_max >= o->c0_min) || !(o->c0_max <= 1))
        return ecp_fail(err, ECP_ERR_ARG,
                        "diffsorp: c0 range [%g, %g]: need 0 < c0_min <= c0_max <= 1",
                        o->c0_min, o->c0_max);
    if (o->cells < 3 || o->cells > 1000000)
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp: cells = %d: must be in [3, 1e6]",
                        o->cells);
    if (o->n_times < 2 || o->n_times > 1000000)
        return ecp_fail(err, ECP_ERR_ARG,
                        "diffsorp: n_times = %d: must be in [2, 1e6]", o->n_times);
    if (!(o->t_end > 0) || !isfinite(o->t_end))
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp: t_end = %g: must be > 0", o->t_end);
    if (o->n_train < 1 || o->n_test < 1)
        return ecp_fail(err, ECP_ERR_ARG,
                        "diffsorp: n_train = %lld, n_test = %lld: both must "
                        "be >= 1",
                        (long long)o->n_train, (long long)o->n_test);
    if (!(o->noise >= 0) || !isfinite(o->noise))
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp: noise = %g: must be >= 0",
                        o->noise);
    return ECP_OK;
}

/* Which c0 values are held out: every fifth, starting with the third (interior values, so the
 * test set asks the surrogate to interpolate in c0, never to extrapolate when n_c0 >= 5). */
static int is_test_c0(int i) { return i % 5 == 2; }

static double c0_value(const ecp_diffsorp_opts *o, int i)
{
    return o->c0_min + (o->c0_max - o->c0_min) * (double)i / (double)(o->n_c0 - 1);
}

/* Solves for every c0 into sol (n_c0 x n_times x cells, float). */
static ecp_status solve_all(const ecp_diffsorp_opts *o, float *sol, ecp_error *err)
{
    ecp_diffsorp_model m;
    ecp_diffsorp_model_default(&m);
    size_t per = (size_t)o->n_times * (size_t)o->cells;
    double *buf = ecp_alloc(per, sizeof(double), "diffsorp solution", err);
    if (!buf)
        return ECP_ERR_MEMORY;
    ecp_progress *p = NULL;
    ecp_status st = o->progress ? ecp_progress_create(&p, "diffsorp", o->n_c0, err) : ECP_OK;
    for (int i = 0; i < o->n_c0 && !st; i++) {
        st = ecp_diffsorp_solve_c0(&m, o->cells, c0_value(o, i), o->t_end, o->n_times, buf, err);
        for (size_t j = 0; j < per && !st; j++)
            sol[(size_t)i * per + j] = (float)buf[j];
        ecp_progress_update(p, i + 1, "solutions");
    }
    ecp_progress_free(p);
    free(buf);
    return st;
}

/* Draws n distinct indices of a pool of `pool` points (Knuth's selection sampling: one pass,
 * no memory beyond the output), then shuffles them so that the files are in random order. */
static void sample_indices(ecp_rng *r, int64_t pool, int64_t n, int64_t *out)
{
    int64_t got = 0;
    for (int64_t t = 0; t < pool && got < n; t++)
        if ((double)(pool - t) * ecp_rng_uniform(r) < (double)(n - got))
            out[got++] = t;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ecp_rng_below(r, (uint64_t)i + 1);
        int64_t tmp = out[i];
        out[i] = out[j];
        out[j] = tmp;
    }
}

/* The split's points: index q of a pool runs over (c0 of the split, time, cell). */
typedef struct {
    float *x, *y;
    int64_t n;
} ds_split;

static void fill_split(const ecp_diffsorp_opts *o, const float *sol, int test,
                       const int64_t *idx, ds_split *s)
{
    int64_t per = (int64_t)o->n_times * o->cells;
    for (int64_t k = 0; k < s->n; k++) {
        int64_t q = idx[k], slot = q / per, rem = q % per;
        /* slot counts only the c0 values of this split; map it back to the grid index. */
        int i = 0, seen = -1;
        for (; i < o->n_c0; i++)
            if (is_test_c0(i) == test && ++seen == slot)
                break;
        int tk = (int)(rem / o->cells), cell = (int)(rem % o->cells);
        s->x[3 * k] = (float)(((double)cell + 0.5) / o->cells);
        s->x[3 * k + 1] = (float)((double)tk / (o->n_times - 1));
        s->x[3 * k + 2] = (float)c0_value(o, i);
        s->y[k] = sol[(size_t)i * (size_t)per + (size_t)rem];
    }
}

static int n_c0_in_split(const ecp_diffsorp_opts *o, int test)
{
    int n = 0;
    for (int i = 0; i < o->n_c0; i++)
        n += is_test_c0(i) == test;
    return n;
}

/* Checked before any work, so that a request for too many points fails at once. */
static ecp_status check_pools(const ecp_diffsorp_opts *o, ecp_error *err)
{
    int64_t per = (int64_t)o->n_times * o->cells;
    int64_t pool_train = per * n_c0_in_split(o, 0), pool_test = per * n_c0_in_split(o, 1);
    if (o->n_train > pool_train)
        return ecp_fail(err, ECP_ERR_ARG,
                        "diffsorp: n_train = %lld exceeds the %lld points of the training "
                        "solutions; lower it or raise n_c0, n_times or cells",
                        (long long)o->n_train, (long long)pool_train);
    if (o->n_test > pool_test)
        return ecp_fail(err, ECP_ERR_ARG,
                        "diffsorp: n_test = %lld exceeds the %lld points of the held-out "
                        "solutions; lower it or raise n_c0, n_times or cells",
                        (long long)o->n_test, (long long)pool_test);
    return ECP_OK;
}

static ecp_status alloc_split(ds_split *s, int64_t n, const char *what, ecp_error *err)
{
    s->n = n;
    s->x = ecp_alloc((size_t)n * 3, sizeof(float), what, err);
    s->y = ecp_alloc((size_t)n, sizeof(float), what, err);
    return s->x && s->y ? ECP_OK : ECP_ERR_MEMORY;
}

/* Adds N(0, (nu std(y))^2) to the training targets; std over the clean training targets. The
 * noise stream is separate from the sampling stream, so the same seed picks the same points
 * whatever nu is. */
static void add_noise(ds_split *s, double nu, uint64_t seed)
{
    if (nu == 0.0)
        return;
    double mean = 0.0, var = 0.0;
    for (int64_t k = 0; k < s->n; k++)
        mean += s->y[k];
    mean /= (double)s->n;
    for (int64_t k = 0; k < s->n; k++)
        var += ((double)s->y[k] - mean) * ((double)s->y[k] - mean);
    double sd = nu * sqrt(var / (double)s->n);
    ecp_rng r;
    ecp_rng_seed(&r, seed ^ 0x6e6f697365ULL);
    for (int64_t k = 0; k < s->n; k++)
        s->y[k] = (float)((double)s->y[k] + sd * ecp_rng_normal(&r));
}

static ecp_status build_splits(const ecp_diffsorp_opts *o, const float *sol, ds_split *train,
                               ds_split *test, ecp_error *err)
{
    int64_t per = (int64_t)o->n_times * o->cells;
    int64_t pool_train = per * n_c0_in_split(o, 0), pool_test = per * n_c0_in_split(o, 1);
    ecp_status st = alloc_split(train, o->n_train, "diffsorp training split", err);
    if (!st)
        st = alloc_split(test, o->n_test, "diffsorp test split", err);
    int64_t big = o->n_train > o->n_test ? o->n_train : o->n_test;
    int64_t *idx = st ? NULL : ecp_alloc((size_t)big, sizeof(int64_t), "diffsorp indices", err);
    if (!idx)
        return st ? st : ECP_ERR_MEMORY;
    ecp_rng r;
    ecp_rng_seed(&r, o->seed);
    sample_indices(&r, pool_train, o->n_train, idx);
    fill_split(o, sol, 0, idx, train);
    sample_indices(&r, pool_test, o->n_test, idx);
    fill_split(o, sol, 1, idx, test);
    free(idx);
    add_noise(train, o->noise, o->seed);
    return ECP_OK;
}

static ecp_status write_splits(const char *dir, const ds_split *train, const ds_split *test,
                               ecp_error *err)
{
    const ds_split *sp[2] = {train, test};
    char path[4096];
    for (int k = 0; k < 4; k++) {
        const ds_split *s = sp[k / 2];
        int is_x = k % 2 == 0;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, ds_files[k]) >= sizeof path)
            return ecp_fail(err, ECP_ERR_ARG, "%s: path too long", dir);
        ecp_status st = ecp_npy_write_f32(path, is_x ? s->x : s->y, s->n, is_x ? 3 : 1, err);
        if (st)
            return st;
    }
    return ECP_OK;
}

/* ------------------------------------------------------------------ directory handling */

static void remove_tmp_dir(const char *tmp)
{
    char path[4200];
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/%s", tmp, ds_files[k]);
        unlink(path);
    }
    rmdir(tmp);
}

/* A directory that we may replace: empty, or holding nothing but a dataset's four files. */
static ecp_status check_replaceable(const char *dir, ecp_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ecp_fail(err, ECP_ERR_IO, "%s: exists and is not a readable directory: %s", dir,
                        strerror(errno));
    struct dirent *e;
    int foreign = 0;
    while ((e = readdir(d)) && !foreign) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        foreign = 1;
        for (int k = 0; k < 4; k++)
            foreign &= strcmp(e->d_name, ds_files[k]) != 0;
    }
    closedir(d);
    if (foreign)
        return ecp_fail(err, ECP_ERR_IO,
                        "%s: exists and holds other files; not replacing it (choose another "
                        "output directory)",
                        dir);
    return ECP_OK;
}

/* Puts the finished temporary directory in place of dir in one step: rename() when dir is
 * new, an atomic exchange when an old dataset is there (then the old one is removed). */
static ecp_status install_dir(const char *tmp, const char *dir, ecp_error *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (rename(tmp, dir) == 0)
            return ECP_OK;
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot move the new dataset into place: %s", dir,
                        strerror(errno));
    }
    ecp_status s = check_replaceable(dir, err);
    if (s)
        return s;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0)
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot replace the old dataset: %s", dir,
                        strerror(errno));
    remove_tmp_dir(tmp); /* now the old dataset */
    return ECP_OK;
}

/* Creates <dir>.tmp.XXXXXX beside dir, so the final rename stays on one filesystem. */
static ecp_status make_tmp_dir(const char *dir, char *tmp, size_t n, ecp_error *err)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (len == 0)
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp: empty output directory name");
    if ((size_t)snprintf(tmp, n, "%.*s.tmp.XXXXXX", (int)len, dir) >= n)
        return ecp_fail(err, ECP_ERR_ARG, "%s: path too long", dir);
    if (!mkdtemp(tmp))
        return ecp_fail(err, ECP_ERR_IO, "%s: cannot create the output directory: %s", dir,
                        strerror(errno));
    /* mkdtemp makes it private (0700); a dataset directory is as readable as its files (0644,
     * see ecp_wfile_open). umask() is avoided: it is process-wide and racy under threads. */
    chmod(tmp, 0755);
    return ECP_OK;
}

ecp_status ecp_diffsorp_profile(const ecp_diffsorp_opts *o, double c0, double *u,
                                ecp_error *err)
{
    ECP_REQUIRE(o, err);
    ECP_REQUIRE(u, err);
    ecp_status s = check_opts(o, err);
    if (s)
        return s;
    ecp_diffsorp_model m;
    ecp_diffsorp_model_default(&m);
    return ecp_diffsorp_solve_c0(&m, o->cells, c0, o->t_end, o->n_times, u, err);
}

ecp_status ecp_diffsorp_generate(const ecp_diffsorp_opts *o, const char *dir, ecp_error *err)
{
    ECP_REQUIRE(o, err);
    ECP_REQUIRE(dir, err);
    if (!o || !dir)
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp: no options or no output directory");
    ecp_status st = check_opts(o, err);
    if (!st)
        st = check_pools(o, err);
    if (st)
        return st;
    struct stat sb;
    if (stat(dir, &sb) == 0 && (st = check_replaceable(dir, err)))
        return st;
    char tmp[4096];
    if ((st = make_tmp_dir(dir, tmp, sizeof tmp, err)))
        return st;
    size_t total = (size_t)o->n_c0 * (size_t)o->n_times;
    float *sol = ecp_alloc(total, (size_t)o->cells * sizeof(float), "diffsorp solutions", err);
    ds_split train = {0}, test = {0};
    st = sol ? solve_all(o, sol, err) : ECP_ERR_MEMORY;
    if (!st)
        st = build_splits(o, sol, &train, &test, err);
    free(sol);
    if (!st)
        st = write_splits(tmp, &train, &test, err);
    free(train.x);
    free(train.y);
    free(test.x);
    free(test.y);
    if (!st)
        st = install_dir(tmp, dir, err);
    if (st)
        remove_tmp_dir(tmp);
    return st;
}

ecp_status ecp_diffsorp_cached(double noise, int progress, char *dir_out, size_t n,
                               ecp_error *err)
{
    if (!(noise >= 0) || !isfinite(noise))
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp:%g: the noise level must be >= 0", noise);
    char cache[4096];
    ecp_status st = ecp_cache_dir(cache, sizeof cache, err);
    if (st)
        return st;
    int w = snprintf(dir_out, n, "%s/diffsorp-nu%g-v1", cache, noise);
    if (w < 0 || (size_t)w >= n)
        return ecp_fail(err, ECP_ERR_ARG, "diffsorp: cache path too long");
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/%s", dir_out, ds_files[3]);
    if (ecp_file_exists(probe))
        return ECP_OK;
    ecp_diffsorp_opts o;
    ecp_diffsorp_opts_default(&o);
    o.noise = noise;
    o.seed = 1;
    o.progress = progress;
    st = ecp_diffsorp_generate(&o, dir_out, err);
    /* Another process may have generated the same dataset meanwhile: theirs is as good. */
    if (st && ecp_file_exists(probe))
        return ECP_OK;
    return st;
}
