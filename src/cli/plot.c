/* Sweep plots through gnuplot: the data go to a temporary directory as one file per method
 * (sparsity, mean, min, max of loss and accuracy over seeds), the script draws them. */
#include "plot.h"
#include "ecprune_tools.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Distinct method names (in first-seen order), excluding "dense". */
static int list_methods(const sweep_row *rows, int n, const char **out, int max)
{
    int k = 0;
    for (int r = 0; r < n; r++) {
        if (!strcmp(rows[r].method, "dense"))
            continue;
        int seen = 0;
        for (int q = 0; q < k && !seen; q++)
            seen = !strcmp(out[q], rows[r].method);
        if (!seen && k < max)
            out[k++] = rows[r].method;
    }
    return k;
}

/* Distinguishable colours (Okabe-Ito, then Tol's), and a point shape that changes with them,
 * so that fifteen methods stay apart and a repeated colour still has another marker. */
static const char *const palette[] = {"#d55e00", "#009e73", "#0072b2", "#e69f00", "#cc79a7",
                                      "#56b4e9", "#000000", "#999999", "#f0e442", "#882255",
                                      "#117733", "#44aa99", "#332288", "#aa4499", "#661100"};
static const int point_type[] = {7, 5, 9, 13, 11};

/* A gnuplot single-quoted string. Method names come from the CSV file and the title from the
 * command line: a quote would end the string and let the rest run as gnuplot commands (which
 * include system()), and a newline would start a new command. Quotes are doubled (gnuplot's
 * escape inside single quotes) and control characters dropped. */
static void gp_str(FILE *g, const char *s)
{
    fputc('\'', g);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\'')
            fputs("''", g);
        else if (*p >= 0x20 && *p != 0x7f)
            fputc(*p, g);
    }
    fputc('\'', g);
}

/* The distinct sparsities of one method, ascending (at most max). */
static int method_sparsities(const sweep_row *rows, int n, const char *method, double *sp, int max)
{
    int ns = 0;
    for (int r = 0; r < n; r++) {
        if (strcmp(rows[r].method, method))
            continue;
        int seen = 0;
        for (int q = 0; q < ns && !seen; q++)
            seen = sp[q] == rows[r].sparsity;
        if (!seen && ns < max)
            sp[ns++] = rows[r].sparsity;
    }
    qsort(sp, (size_t)ns, sizeof *sp, cmp_double);
    return ns;
}

/* One method's data file: per sparsity, the mean, min and max over seeds of the loss and of the
 * accuracy (in %). */
static ecp_status write_method(const sweep_row *rows, int n, const char *method,
                               const char *path, ecp_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return ecp_fail(err, ECP_ERR_IO, "plot: cannot write %s", path);
    double sp[256];
    int ns = method_sparsities(rows, n, method, sp, 256);
    for (int q = 0; q < ns; q++) {
        double sl = 0, lo = INFINITY, hi = -INFINITY, sa = 0, alo = INFINITY, ahi = -INFINITY;
        int c = 0;
        for (int r = 0; r < n; r++) {
            if (strcmp(rows[r].method, method) || rows[r].sparsity != sp[q])
                continue;
            sl += rows[r].loss;
            lo = fmin(lo, rows[r].loss);
            hi = fmax(hi, rows[r].loss);
            sa += rows[r].accuracy;
            alo = fmin(alo, rows[r].accuracy);
            ahi = fmax(ahi, rows[r].accuracy);
            c++;
        }
        fprintf(f, "%g %g %g %g %g %g %g\n", sp[q], sl / c, lo, hi, 100 * sa / c, 100 * alo,
                100 * ahi);
    }
    fclose(f);
    return ECP_OK;
}

/* What the script draws. */
typedef struct {
    const char *dir, *title, *tmp_png;
    const char *methods[64];
    int nm, is_class;
    double dense_loss, dense_acc;
} plot_desc;

/* Panel 0: loss (log scale); panel 1: accuracy. One band and one curve per method, and the dense
 * model as a dashed line. */
static void write_panel(FILE *g, const plot_desc *d, int panel)
{
    if (panel == 0)
        fprintf(g, "set logscale y\nset ylabel 'test loss'\n");
    else
        fprintf(g, "unset logscale y\nset ylabel 'test accuracy (%%)'\nset key bottom left\n");
    fprintf(g, "plot ");
    for (int mi = 0; mi < d->nm; mi++) {
        const char *lc = palette[mi % (int)(sizeof palette / sizeof *palette)];
        int pt = point_type[mi % (int)(sizeof point_type / sizeof *point_type)];
        fprintf(g, "'%s/m%d.dat' u 1:%s w filledcurves lc rgb '%s' notitle, "
                   "'' u 1:%d w linespoints lc rgb '%s' lw 2 pt %d ps 0.7 title ",
                d->dir, mi, panel == 0 ? "3:4" : "6:7", lc, panel == 0 ? 2 : 5, lc, pt);
        gp_str(g, d->methods[mi]);
        fprintf(g, ", ");
    }
    double dv = panel == 0 ? d->dense_loss : 100 * d->dense_acc;
    if (isfinite(dv))
        fprintf(g, "%.9g w lines dt 2 lc 'black' lw 1.5 title 'dense'\n", dv);
    else
        fprintf(g, "NaN notitle\n");
}

static ecp_status write_script(const char *path, const plot_desc *d, ecp_error *err)
{
    FILE *g = fopen(path, "w");
    if (!g)
        return ecp_fail(err, ECP_ERR_IO, "plot: cannot write %s", path);
    fprintf(g, "set terminal pngcairo size %d,560 font 'sans,10'\n", d->is_class ? 1400 : 760);
    fprintf(g, "set output ");
    gp_str(g, d->tmp_png);
    fprintf(g, "\n");
    fprintf(g, "set key top left font 'sans,9' box opaque\nset grid\nset xlabel 'sparsity'\n");
    fprintf(g, "set style fill transparent solid 0.15 noborder\n");
    fprintf(g, d->is_class ? "set multiplot layout 1,2 title " : "set title ");
    gp_str(g, d->title);
    fprintf(g, "\n");
    for (int panel = 0; panel < (d->is_class ? 2 : 1); panel++)
        write_panel(g, d, panel);
    if (d->is_class)
        fprintf(g, "unset multiplot\n");
    fclose(g);
    return ECP_OK;
}

/* Runs gnuplot on the script, then renames its PNG over png. */
static ecp_status run_gnuplot(const char *script, const plot_desc *d, const char *png,
                              ecp_error *err)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>%s/gnuplot.err", script, d->dir);
    if (system(cmd) != 0)
        return ecp_fail(err, ECP_ERR_IO,
                        "plot: gnuplot failed (is gnuplot installed? see scripts/setup.sh)");
    ecp_status s = ecp_output_check(png, err); /* the target must not have changed meanwhile */
    if (!s && rename(d->tmp_png, png) != 0)
        s = ecp_fail(err, ECP_ERR_IO, "%s: cannot write: %s", png, strerror(errno));
    return s;
}

/* The methods, the kind of task and the dense model's figures. */
static void describe(const sweep_row *rows, int n, plot_desc *d)
{
    d->nm = list_methods(rows, n, d->methods, 64);
    d->is_class = 0;
    d->dense_loss = d->dense_acc = NAN;
    for (int r = 0; r < n; r++) {
        d->is_class |= rows[r].accuracy >= 0;
        if (!strcmp(rows[r].method, "dense")) {
            d->dense_loss = rows[r].loss;
            d->dense_acc = rows[r].accuracy;
        }
    }
}

ecp_status plot_sweep(const sweep_row *rows, int n, const char *png, const char *title,
                      ecp_error *err)
{
    /* A link is followed (as ecp_wfile_open does): the temporary sits beside the file it
     * names, so the rename stays on one filesystem. */
    ecp_status s = ecp_output_check(png, err);
    if (s)
        return s;
    char *real = realpath(png, NULL);
    if (real)
        png = real;
    char dir[] = "/tmp/ecprune-plot-XXXXXX";
    if (!mkdtemp(dir)) {
        free(real);
        return ecp_fail(err, ECP_ERR_IO, "plot: cannot create a temporary directory: %s",
                        strerror(errno));
    }
    char path[512], tmp_png[4200];
    snprintf(tmp_png, sizeof tmp_png, "%s.tmp.png", png);
    plot_desc d = {.dir = dir, .title = title, .tmp_png = tmp_png};
    describe(rows, n, &d);
    for (int mi = 0; mi < d.nm && !s; mi++) {
        snprintf(path, sizeof path, "%s/m%d.dat", dir, mi);
        s = write_method(rows, n, d.methods[mi], path, err);
    }
    snprintf(path, sizeof path, "%s/plot.gp", dir);
    if (!s && !(s = write_script(path, &d, err)))
        s = run_gnuplot(path, &d, png, err);
    unlink(tmp_png);
    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
    free(real);
    return s;
}
