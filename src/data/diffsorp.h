/* The diffusion–sorption solver behind `ecprune datagen diffsorp` (PDEBench's problem):
 *
 *     du/dt = D / R(u) * d2u/dx2,   R(u) = 1 + (1-phi)/phi * rho_s * k * n_f * u^(n_f - 1),
 *     x in (0, 1),  u(0, t) = u_left (1),  outflow  -D du/dx(1, t) = beta * u(1, t)  (beta = 1).
 *
 * Multiplying by phi turns it into a conservation law, which is what is discretised:
 *
 *     d/dt [ phi u + (1-phi) rho_s k u^n_f ] = d/dx [ phi D du/dx ],
 *
 * because d/dt((1-phi) rho_s k u^n_f) = (1-phi) rho_s k n_f u^(n_f-1) du/dt = phi (R(u)-1) du/dt.
 *
 * About the right boundary: PDEBench's paper writes it as u(1,t) = D du/dx(1,t), but its data
 * come from FINN's solver, whose ghost value is D (u[N-2] - u[N-1]) / dx, i.e. -D du/dx.
 * Taken literally, u = +D u_x has a growing boundary mode of rate ~ D_eff / D^2 (several
 * hundred per unit of time), so the problem would be ill-posed. We use the limit of what the
 * data were made with: mass leaves through x = 1 at the rate u(1) (u = -D u_x, beta = 1),
 * which keeps u in (0, 1]; beta = 0 gives a closed end instead.
 *
 * Space: N cell-centred finite volumes of width h; interior face fluxes are two-point
 * differences of the cell values (second order overall, measured in tests/test_diffsorp.c),
 * the Dirichlet face uses the half-cell distance h/2 to the boundary value, and the Robin face
 * eliminates the face value u_b from
 * -D (u_b - u_{N-1}) / (h/2) = beta u_b, so both boundary fluxes are linear in the unknowns.
 * Time: BDF2 with constant step (the first step is backward Euler), Newton on the non-linear
 * storage term; every Newton linear system is tridiagonal and solved by Thomas' algorithm. */
#ifndef ECP_DIFFSORP_H
#define ECP_DIFFSORP_H

#include "../internal.h"

typedef struct {
    double D;      /* diffusion coefficient: 5e-4 */
    double phi;    /* porosity: 0.29 */
    double rho_s;  /* solid density: 2880 */
    double k;      /* Freundlich coefficient: 3.5e-4 (0 switches sorption off) */
    double n_f;    /* Freundlich exponent: 0.874 */
    double beta;   /* right boundary: -D u_x(1) = beta u(1); 1 (PDEBench), 0 = no flux */
    double u_left; /* Dirichlet value at x = 0: 1 */
} ecp_diffsorp_model;

void ecp_diffsorp_model_default(ecp_diffsorp_model *m);

/* Conserved density phi u + (1-phi) rho_s k u^n_f of one cell value. */
double ecp_diffsorp_storage(const ecp_diffsorp_model *m, double u);
/* Retardation factor R(u). */
double ecp_diffsorp_retardation(const ecp_diffsorp_model *m, double u);
/* Integral of the conserved density over (0, 1), as the finite volumes see it (midpoint). */
double ecp_diffsorp_mass(const ecp_diffsorp_model *m, const double *u, int cells);
/* The boundary fluxes of the conservation law that the scheme uses for the state u:
 * *in_left enters at x = 0, *out_right leaves at x = 1 (either may be NULL). */
void ecp_diffsorp_boundary_flux(const ecp_diffsorp_model *m, const double *u, int cells,
                                double *in_left, double *out_right);

/* Solves the tridiagonal system a[i] x[i-1] + b[i] x[i] + c[i] x[i+1] = d[i] (a[0] and c[n-1]
 * are ignored) in place in d; work holds n doubles. No pivoting: meant for diagonally dominant
 * matrices; ECP_ERR_NUMERIC when a pivot vanishes or the result is not finite. */
ecp_status ecp_diffsorp_thomas(int n, const double *a, const double *b, const double *c,
                               double *d, double *work, ecp_error *err);

/* A time stepper for one solution. */
typedef struct {
    ecp_diffsorp_model model;
    int cells;
    double h, dt, t;
    int order;          /* 1 = backward Euler, 2 = BDF2 (default) */
    double newton_tol;  /* max |Newton update| at convergence: 1e-10 */
    int newton_max;     /* iterations before giving up: 50 */
    long steps, newton_iters;
    double *u;          /* current state, cells values */
    double *u_old;      /* previous state (BDF2 history) */
    double *m_old, *m_older; /* storage of u and u_old */
    double *a, *b, *c, *r, *work, *hist; /* Newton scratch and BDF history terms */
} ecp_diffsorp_solver;

ecp_status ecp_diffsorp_solver_init(ecp_diffsorp_solver *s, const ecp_diffsorp_model *m,
                                    int cells, double dt, ecp_error *err);
void ecp_diffsorp_solver_free(ecp_diffsorp_solver *s);
/* Sets the state at t = 0 (u0 has cells values, all > 0) and forgets the history. */
ecp_status ecp_diffsorp_solver_reset(ecp_diffsorp_solver *s, const double *u0, ecp_error *err);
/* Advances by one step dt. On failure (Newton not converging: ECP_ERR_NUMERIC) the state is
 * no longer meaningful; reset before reuse. */
ecp_status ecp_diffsorp_step(ecp_diffsorp_solver *s, ecp_error *err);

/* Solves from the constant initial state c0 to t_end and stores the state at n_times equally
 * spaced times 0, t_end/(n_times-1), ..., t_end into out (n_times x cells, row-major). The
 * step is the largest that divides the save interval and is <= ECP_DIFFSORP_DT_MAX, with
 * Newton converged to 1e-10. With the defaults (256 cells, 101 times) the discretisation error
 * is below 1e-3 in max norm (against 512 cells: 7e-4; against dt/20: 2.4e-4), far below the
 * data's noise levels; most of it sits at early times next to the x = 0 jump. */
#define ECP_DIFFSORP_DT_MAX 0.25
ecp_status ecp_diffsorp_solve_c0(const ecp_diffsorp_model *m, int cells, double c0,
                                 double t_end, int n_times, double *out, ecp_error *err);

/* The named dataset `diffsorp` / `diffsorp:nu`: the directory
 * <ecp_cache_dir()>/diffsorp-nu<nu as %g>-v1, generated with the default options (seed 1) on
 * first use. dir_out receives the path (n bytes). */
ecp_status ecp_diffsorp_cached(double noise, int progress, char *dir_out, size_t n,
                               ecp_error *err);

#endif
