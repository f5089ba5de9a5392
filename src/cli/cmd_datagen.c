/* ecprune datagen — write a dataset to disk (today: the diffusion–sorption surrogate task). */
#include "cli.h"
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CMD "datagen"
#define MAX_PROFILE_C0 16

static void usage(FILE *f)
{
    ecp_diffsorp_opts d;
    ecp_diffsorp_opts_default(&d);
    fprintf(f,
            "usage: ecprune datagen diffsorp -o DIR [options]\n"
            "\n"
            "Solves PDEBench's diffusion-sorption equation\n"
            "    du/dt = D / R(u) d2u/dx2,  x in (0,1), t in (0,%g],\n"
            "    R(u) = 1 + (1-phi)/phi rho_s k n_f u^(n_f-1)   (Freundlich sorption)\n"
            "    D = 5e-4, phi = 0.29, rho_s = 2880, k = 3.5e-4, n_f = 0.874,\n"
            "    u(0,t) = 1, outflow at x = 1: -D du/dx = u,\n"
            "from u(x,0) = c0 for c0 evenly spaced in [%g, %g] (finite volumes, BDF2 + Newton),\n"
            "and writes a surrogate-regression dataset into DIR:\n"
            "    train_x.npy, test_x.npy   N x 3 float32: x, t/%g, c0\n"
            "    train_y.npy, test_y.npy   N x 1 float32: u(x, t; c0)\n"
            "Points are drawn (seeded, without replacement) from cells x saved times x c0.\n"
            "The test split uses held-out c0 values (every fifth, from the third), so it\n"
            "measures interpolation in c0; training targets get Gaussian noise of std nu*std(u), test\n"
            "targets are clean. DIR is written atomically (a sibling temporary directory is\n"
            "renamed onto it); an existing DIR is replaced only if it holds nothing but a\n"
            "dataset's four files.\n"
            "\n"
            "options:\n"
            "  -o, --output DIR   output directory (required)\n"
            "      --noise NU     relative training-noise level nu >= 0 (default %g)\n"
            "      --seed S       seed of the sampling and of the noise (default %llu)\n"
            "      --cells N      finite-volume cells (default %d)\n"
            "      --c0 N         number of initial values c0 (default %d, at least 3)\n"
            "      --times N      saved times in [0, %g], both ends included (default %d)\n"
            "      --train N      training points (default %lld)\n"
            "      --test N       test points (default %lld)\n"
            "      --json         print a JSON summary on stdout\n"
            "  -h, --help         this text\n"
            "\n"
            "Profiles for plots (no dataset is written; see scripts/plot_diffsorp.sh):\n"
            "  ecprune datagen diffsorp --profiles FILE --c0-list 0.05,0.2 [--times N]\n"
            "                 [--cells N]\n"
            "  writes blocks 'c0 t x u' separated by two blank lines (gnuplot's index), one block\n"
            "  per c0 and saved time.\n"
            "\n"
            "The named dataset diffsorp[:nu] (e.g. --data diffsorp:0.05) is this data with the\n"
            "defaults and seed 1, generated once into the cache directory.\n",
            d.t_end, d.c0_min, d.c0_max, d.t_end, d.noise, (unsigned long long)d.seed, d.cells,
            d.n_c0, d.t_end, d.n_times, (long long)d.n_train, (long long)d.n_test);
}

typedef struct {
    ecp_diffsorp_opts o;
    const char *out;
    const char *profiles;
    double c0_list[MAX_PROFILE_C0];
    int n_c0_list;
    int json;
} datagen_args;

static int parse_c0_list(const char *s, datagen_args *a)
{
    char buf[1024];
    if (strlen(s) >= sizeof buf)
        return cli_usage_error(CMD, "--c0-list: list too long");
    strcpy(buf, s);
    a->n_c0_list = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (a->n_c0_list == MAX_PROFILE_C0)
            return cli_usage_error(CMD, "--c0-list: at most %d values", MAX_PROFILE_C0);
        double v;
        if (cli_parse_double(CMD, "--c0-list", tok, 1e-6, 1.0, &v))
            return 2;
        a->c0_list[a->n_c0_list++] = v;
    }
    if (a->n_c0_list == 0)
        return cli_usage_error(CMD, "--c0-list '%s': expected comma-separated values", s);
    return 0;
}

enum { OPT_NOISE = 256, OPT_SEED, OPT_CELLS, OPT_C0, OPT_TIMES, OPT_TRAIN, OPT_TEST, OPT_JSON,
       OPT_PROFILES, OPT_C0_LIST };

/* Parses one option into a; returns 0 or an exit status. */
static int parse_option(int c, const char *arg, datagen_args *a)
{
    long v;
    double d;
    int rc = 0;
    switch (c) {
    case 'o': a->out = arg; break;
    case OPT_NOISE:
        rc = cli_parse_double(CMD, "--noise", arg, 0.0, 1e6, &d);
        a->o.noise = d;
        break;
    case OPT_SEED:
        rc = cli_parse_int(CMD, "--seed", arg, 0, 0x7fffffffL, &v);
        a->o.seed = (uint64_t)v;
        break;
    case OPT_CELLS:
        rc = cli_parse_int(CMD, "--cells", arg, 3, 1000000, &v);
        a->o.cells = (int)v;
        break;
    case OPT_C0:
        rc = cli_parse_int(CMD, "--c0", arg, 3, 100000, &v);
        a->o.n_c0 = (int)v;
        break;
    case OPT_TIMES:
        rc = cli_parse_int(CMD, "--times", arg, 2, 1000000, &v);
        a->o.n_times = (int)v;
        break;
    case OPT_TRAIN:
        rc = cli_parse_int(CMD, "--train", arg, 1, 1000000000L, &v);
        a->o.n_train = v;
        break;
    case OPT_TEST:
        rc = cli_parse_int(CMD, "--test", arg, 1, 1000000000L, &v);
        a->o.n_test = v;
        break;
    case OPT_JSON: a->json = 1; break;
    case OPT_PROFILES: a->profiles = arg; break;
    case OPT_C0_LIST: rc = parse_c0_list(arg, a); break;
    default: rc = cli_usage_error(CMD, "unknown option");
    }
    return rc;
}

static int parse_args(int argc, char **argv, datagen_args *a, int *help)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},   {"noise", required_argument, 0, OPT_NOISE},
        {"seed", required_argument, 0, OPT_SEED}, {"cells", required_argument, 0, OPT_CELLS},
        {"c0", required_argument, 0, OPT_C0},     {"times", required_argument, 0, OPT_TIMES},
        {"train", required_argument, 0, OPT_TRAIN}, {"test", required_argument, 0, OPT_TEST},
        {"json", no_argument, 0, OPT_JSON},       {"profiles", required_argument, 0, OPT_PROFILES},
        {"c0-list", required_argument, 0, OPT_C0_LIST}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            *help = 1;
            return 0;
        }
        if (c == '?' && optopt)
            return cli_usage_error(CMD, "unknown option '-%c'", optopt);
        if (c == '?')
            return cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]);
        if (c == ':')
            return cli_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]);
        int rc = parse_option(c, optarg, a);
        if (rc)
            return rc;
    }
    if (optind >= argc)
        return cli_usage_error(CMD, "which dataset? (only 'diffsorp' is available)");
    if (strcmp(argv[optind], "diffsorp"))
        return cli_usage_error(CMD, "unknown dataset '%s' (only 'diffsorp' is available)",
                               argv[optind]);
    if (optind + 1 < argc)
        return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind + 1]);
    if (!a->out && !a->profiles)
        return cli_usage_error(CMD, "-o DIR is required");
    if (a->profiles && a->n_c0_list == 0)
        return cli_usage_error(CMD, "--profiles needs --c0-list");
    return 0;
}

/* Writes the profiles u(x) of each listed c0 at the saved times, for gnuplot. */
static int write_profiles(const datagen_args *a)
{
    ecp_error err = {0};
    const ecp_diffsorp_opts *o = &a->o;
    double *u = malloc((size_t)o->n_times * (size_t)o->cells * sizeof(double));
    if (!u) {
        ecp_fail(&err, ECP_ERR_MEMORY, "profiles: out of memory");
        return cli_die(CMD, &err);
    }
    ecp_wfile wf;
    ecp_status st = ecp_wfile_open(&wf, a->profiles, &err);
    for (int j = 0; j < a->n_c0_list && !st; j++) {
        st = ecp_diffsorp_profile(o, a->c0_list[j], u, &err);
        for (int k = 0; k < o->n_times && !st; k++) {
            double t = o->t_end * k / (o->n_times - 1);
            fprintf(wf.fp, "# c0 = %g, t = %g\n", a->c0_list[j], t);
            for (int i = 0; i < o->cells; i++)
                fprintf(wf.fp, "%g %g %.6f %.9g\n", a->c0_list[j], t, (i + 0.5) / o->cells,
                        u[(size_t)k * (size_t)o->cells + (size_t)i]);
            fprintf(wf.fp, "\n\n");
        }
    }
    free(u);
    if (st) {
        if (wf.fp)
            ecp_wfile_abort(&wf);
        return cli_die(CMD, &err);
    }
    if (ecp_wfile_commit(&wf, &err))
        return cli_die(CMD, &err);
    return 0;
}

static void print_json(const datagen_args *a, double seconds)
{
    const ecp_diffsorp_opts *o = &a->o;
    printf("{\"dataset\": \"diffsorp\", \"dir\": ");
    cli_json_string(stdout, a->out);
    printf(", \"n_train\": %lld, \"n_test\": %lld, \"n_in\": 3, \"n_out\": 1, "
           "\"cells\": %d, \"times\": %d, \"c0\": %d, \"c0_min\": %g, \"c0_max\": %g, "
           "\"t_end\": %g, \"noise\": %g, \"seed\": %llu, \"seconds\": %.3f}\n",
           (long long)o->n_train, (long long)o->n_test, o->cells, o->n_times, o->n_c0,
           o->c0_min, o->c0_max, o->t_end, o->noise, (unsigned long long)o->seed, seconds);
}

int cmd_datagen(int argc, char **argv)
{
    datagen_args a;
    memset(&a, 0, sizeof a);
    ecp_diffsorp_opts_default(&a.o);
    int help = 0;
    int rc = parse_args(argc, argv, &a, &help);
    if (help) {
        usage(stdout);
        return 0;
    }
    if (rc)
        return rc;
    if (a.profiles)
        return write_profiles(&a);
    a.o.progress = !a.json;
    ecp_error err = {0};
    double t0 = ecp_now();
    if (ecp_diffsorp_generate(&a.o, a.out, &err))
        return cli_die(CMD, &err);
    double sec = ecp_now() - t0;
    if (a.json)
        print_json(&a, sec);
    else
        printf("wrote %s: %lld training and %lld test points (diffsorp, noise %g) in %.1f s\n",
               a.out, (long long)a.o.n_train, (long long)a.o.n_test, a.o.noise, sec);
    return 0;
}
