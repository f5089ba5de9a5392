/* Standalone C99 source of a (pruned) model: NAME.h declares NAME_predict, NAME.c holds the
 * weights as const CSR arrays and the forward pass; it needs only libm, never allocates, and
 * compiles cleanly with gcc -std=c99 -Wall -Wextra -Werror -pedantic.
 *
 * Why CSR (by rows) and not the engine's CSC: per-row int8 scales apply once per row sum, and a
 * row loop needs no zeroed output buffer or scatter; small targets (microcontrollers) have no
 * gather or vector units, where CSR with uint16 indices is the fewest bytes read per weight.
 * Floats are written as C99 hexadecimal literals (%a), so the exported weights are bit-exact.
 *
 * int8 (--int8): per output row o, s_o = max_k |w_ok| / 127 and q_ok = round(w_ok / s_o), so
 * |w_ok - s_o q_ok| <= s_o / 2 and the row's pre-activation is off by at most
 * s_o / 2 * sum_k |x_k| over the row's kept inputs (plus float rounding). */
#include "sparse.h"
#include <math.h>
#include <stdarg.h>
#include <strings.h>
#include <unistd.h>

typedef struct {
    ecp_wfile wf;
    ecp_status st;
    ecp_error *err;
    size_t len;
    char buf[1 << 16];
} out_text;

static void out_flush(out_text *o)
{
    if (!o->st && o->len)
        o->st = ecp_wfile_write(&o->wf, o->buf, o->len, o->err);
    o->len = 0;
}

static void out_printf(out_text *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void out_printf(out_text *o, const char *fmt, ...)
{
    if (o->st)
        return;
    if (sizeof o->buf - o->len < 512)
        out_flush(o);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof o->buf - o->len) /* a line never exceeds 512 bytes */
        o->st = ecp_fail(o->err, ECP_ERR_FORMAT, "export-c: internal formatting error");
    else
        o->len += (size_t)n;
}

/* NAME.h must not stand in for a standard header when DIR is on the include path (the source
 * includes <math.h> and <stdint.h>, which include others); compared ignoring case, for
 * case-insensitive filesystems. */
static int is_std_header(const char *name)
{
    static const char *const h[] = {
        "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits",
        "locale", "math", "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool",
        "stddef", "stdint", "stdio", "stdlib", "stdnoreturn", "string", "tgmath", "threads",
        "time", "uchar", "wchar", "wctype", "features", "unistd", "alloca", "endian"};
    for (size_t i = 0; i < sizeof h / sizeof *h; i++)
        if (!strcasecmp(name, h[i]))
            return 1;
    return 0;
}

int ecp_export_c_name_ok(const char *name)
{
    if (!name || !*name || strlen(name) > 64)
        return 0;
    /* A leading letter: identifiers starting with '_' are reserved (and NAME_H, the header
     * guard, would then look like the C library's own guards, e.g. _STDINT_H). */
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return !is_std_header(name);
}

/* The activation as a C99 expression of the float variable z; parameters as hex literals, so
 * the compiled code sees the model's exact floats. */
static const char *act_expr(const ecp_layer *L, char *buf, size_t n)
{
    const char *sig = "(z >= 0.0f ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z)))";
    double p0 = L->act_p[0], p1 = L->act_p[1];
    switch (L->act) {
    case ECP_ACT_RELU: return "z > 0.0f ? z : 0.0f";
    case ECP_ACT_LEAKY_RELU: snprintf(buf, n, "z > 0.0f ? z : %af * z", p0); return buf;
    case ECP_ACT_TANH: return "tanhf(z)";
    case ECP_ACT_SIGMOID: return sig;
    case ECP_ACT_SOFTPLUS:
        snprintf(buf, n, "fmaxf(z, 0.0f) + log1pf(expf(-fabsf(%af * z))) / %af", p0, p0);
        return buf;
    case ECP_ACT_GELU: return "0.5f * z * (1.0f + erff(z * 0.70710678118654752f))";
    case ECP_ACT_SILU: snprintf(buf, n, "z * %s", sig); return buf;
    case ECP_ACT_ELU: snprintf(buf, n, "z > 0.0f ? z : %af * expm1f(z)", p0); return buf;
    case ECP_ACT_CLIP: snprintf(buf, n, "fminf(fmaxf(z, %af), %af)", p0, p1); return buf;
    case ECP_ACT_GELU_TANH:
        return "0.5f * z * (1.0f + tanhf(0.7978845608028654f * (z + 0.044715f * z * z * z)))";
    case ECP_ACT_HARDSIGMOID:
    case ECP_ACT_HARDSWISH:
        snprintf(buf, n, "%sfminf(fmaxf(%af * z + %af, 0.0f), 1.0f)",
                 L->act == ECP_ACT_HARDSWISH ? "z * " : "", p0, p1);
        return buf;
    default: return "z";
    }
}

static void put_float(out_text *o, float v, int last)
{
    out_printf(o, "%af%s", (double)v, last ? "" : ",");
}

/* One layer's arrays: ptr, idx, values (float or int8 + per-row scales), bias. */
static void emit_layer_data(out_text *o, const char *name, int l, const ecp_layer *L,
                            const ecp_spmat *A, int int8)
{
    int64_t nnz = A->nnz, cnt = nnz ? nnz : 1; /* C has no zero-length arrays */
    char act[64];
    ecp_act_format(L->act, L->act_p, act, sizeof act);
    out_printf(o, "\n/* layer %d: %d -> %d, %s, %lld of %lld weights kept */\n", l, L->n_in,
               L->n_out, act, (long long)nnz,
               (long long)L->n_in * (long long)L->n_out);
    out_printf(o, "static const int32_t %s_l%d_ptr[%d] = {", name, l, L->n_out + 1);
    for (int i = 0; i <= L->n_out; i++)
        out_printf(o, "%s%lld%s", i % 12 ? "" : "\n    ", (long long)A->ptr[i],
                   i == L->n_out ? "" : ",");
    out_printf(o, "\n};\nstatic const %s %s_l%d_idx[%lld] = {", A->idx16 ? "uint16_t" : "int32_t",
               name, l, (long long)cnt);
    for (int64_t k = 0; k < cnt; k++)
        out_printf(o, "%s%d%s", k % 12 ? "" : "\n    ",
                   nnz ? (A->idx16 ? (int)A->idx16[k] : (int)A->idx32[k]) : 0,
                   k == cnt - 1 ? "" : ",");
    if (!int8) {
        out_printf(o, "\n};\nstatic const float %s_l%d_val[%lld] = {", name, l, (long long)cnt);
        for (int64_t k = 0; k < cnt; k++) {
            out_printf(o, "%s", k % 4 ? " " : "\n    ");
            put_float(o, nnz ? A->val[k] : 0.0f, k == cnt - 1);
        }
    } else {
        out_printf(o, "\n};\nstatic const float %s_l%d_scale[%d] = {", name, l, L->n_out);
        for (int r = 0; r < L->n_out; r++) {
            float mx = 0.0f;
            for (int64_t k = A->ptr[r]; k < A->ptr[r + 1]; k++)
                mx = fabsf(A->val[k]) > mx ? fabsf(A->val[k]) : mx;
            out_printf(o, "%s", r % 4 ? " " : "\n    ");
            put_float(o, mx / 127.0f, r == L->n_out - 1);
        }
        out_printf(o, "\n};\nstatic const signed char %s_l%d_q[%lld] = {", name, l,
                   (long long)cnt);
        for (int r = 0, k = 0; r < L->n_out; r++) {
            float mx = 0.0f;
            for (int64_t j = A->ptr[r]; j < A->ptr[r + 1]; j++)
                mx = fabsf(A->val[j]) > mx ? fabsf(A->val[j]) : mx;
            float s = mx / 127.0f;
            for (int64_t j = A->ptr[r]; j < A->ptr[r + 1]; j++, k++) {
                long q = s > 0.0f ? lroundf(A->val[j] / s) : 0;
                q = q > 127 ? 127 : q < -127 ? -127 : q;
                out_printf(o, "%s%ld%s", k % 16 ? "" : "\n    ", q, k == cnt - 1 ? "" : ",");
            }
        }
        if (!nnz)
            out_printf(o, "\n    0");
    }
    out_printf(o, "\n};\nstatic const float %s_l%d_b[%d] = {", name, l, L->n_out);
    for (int r = 0; r < L->n_out; r++) {
        out_printf(o, "%s", r % 4 ? " " : "\n    ");
        put_float(o, L->b[r], r == L->n_out - 1);
    }
    out_printf(o, "\n};\n");
}

static void emit_layer_code(out_text *o, const char *name, int l, const ecp_layer *L, int int8,
                            const char *in, const char *out)
{
    out_printf(o, "    for (o = 0; o < %d; o++) {\n        float s = 0.0f, z;\n        int32_t k;\n",
               L->n_out);
    out_printf(o, "        for (k = %s_l%d_ptr[o]; k < %s_l%d_ptr[o + 1]; k++)\n", name, l, name,
               l);
    if (int8) {
        out_printf(o, "            s += (float)%s_l%d_q[k] * %s[%s_l%d_idx[k]];\n", name, l, in,
                   name, l);
        out_printf(o, "        z = %s_l%d_b[o] + %s_l%d_scale[o] * s;\n", name, l, name, l);
    } else {
        out_printf(o, "            s += %s_l%d_val[k] * %s[%s_l%d_idx[k]];\n", name, l, in, name,
                   l);
        out_printf(o, "        z = %s_l%d_b[o] + s;\n", name, l);
    }
    char expr[256];
    out_printf(o, "        %s[o] = %s;\n    }\n", out, act_expr(L, expr, sizeof expr));
}

static ecp_status write_source(out_text *o, const ecp_mlp *m, const ecp_spmat *A,
                               const char *name, int int8)
{
    int L = m->n_layers, wmax = 1;
    for (int l = 1; l < L; l++) /* hidden widths only: input and output are the caller's */
        wmax = m->sizes[l] > wmax ? m->sizes[l] : wmax;
    out_printf(o, "/* %s.c: generated by ecprune %s (export-c%s). Standalone C99: no malloc,\n"
                  " * only libm. Weights in CSR (row pointers, column indices, values). */\n",
               name, ECP_VERSION, int8 ? " --int8" : "");
    out_printf(o, "#include \"%s.h\"\n#include <math.h>\n#include <stdint.h>\n", name);
    for (int l = 0; l < L; l++)
        emit_layer_data(o, name, l, &m->layer[l], &A[l], int8);
    /* Hidden activations: on the stack when small (reentrant), else static (not reentrant,
     * but a large model would overflow a small stack). */
    int on_stack = (size_t)wmax * 2 * sizeof(float) <= 64 * 1024;
    if (!on_stack)
        out_printf(o, "\n/* hidden activations: static (too large for the stack); not reentrant */"
                      "\nstatic float %s_h0[%d], %s_h1[%d];\n", name, wmax, name, wmax);
    out_printf(o, "\nvoid %s_predict(const float *in, float *out)\n{\n", name);
    if (on_stack)
        out_printf(o, "    float h0[%d], h1[%d];\n", wmax, wmax);
    else
        out_printf(o, "    float *h0 = %s_h0, *h1 = %s_h1;\n", name, name);
    out_printf(o, "    int o;\n");
    if (L == 1)
        out_printf(o, "    (void)h0;\n    (void)h1;\n");
    else if (L == 2)
        out_printf(o, "    (void)h1;\n");
    for (int l = 0; l < L; l++) {
        char in[8], out[8];
        snprintf(in, sizeof in, "%s", l == 0 ? "in" : (l % 2) ? "h0" : "h1");
        snprintf(out, sizeof out, "%s", l == L - 1 ? "out" : (l % 2) ? "h1" : "h0");
        emit_layer_code(o, name, l, &m->layer[l], int8, in, out);
    }
    out_printf(o, "}\n");
    out_flush(o);
    return o->st;
}

static ecp_status write_header(out_text *o, const ecp_mlp *m, const char *name, int int8)
{
    char guard[80];
    size_t i = 0;
    for (; name[i] && i < sizeof guard - 3; i++)
        guard[i] = (name[i] >= 'a' && name[i] <= 'z') ? (char)(name[i] - 'a' + 'A') : name[i];
    memcpy(guard + i, "_H", 3);
    out_printf(o, "/* %s.h: generated by ecprune %s (export-c%s). */\n#ifndef %s\n#define %s\n\n",
               name, ECP_VERSION, int8 ? " --int8" : "", guard, guard);
    out_printf(o, "#define %s_N_IN %d\n#define %s_N_OUT %d\n\n", name, m->sizes[0], name,
               m->sizes[m->n_layers]);
    out_printf(o, "/* in: %d floats, out: %d floats (the network's raw outputs: logits for a\n"
                  " * classifier). */\nvoid %s_predict(const float *in, float *out);\n\n#endif\n",
               m->sizes[0], m->sizes[m->n_layers], name);
    out_flush(o);
    return o->st;
}

static ecp_status open_out(out_text *o, const char *dir, const char *name, const char *ext,
                           ecp_error *err)
{
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext) >= (int)sizeof path)
        return ecp_fail(err, ECP_ERR_ARG, "export-c: output path too long");
    o->err = err;
    o->st = ECP_OK;
    o->len = 0;
    return ecp_wfile_open(&o->wf, path, err);
}

/* The outermost directory of dir that does not exist yet (what mkdir -p creates), or "". */
static void first_missing_dir(const char *dir, char *top, size_t n)
{
    char buf[4200];
    top[0] = 0;
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return;
    for (;;) {
        size_t len = strlen(buf);
        while (len > 1 && buf[len - 1] == '/')
            buf[--len] = 0;
        if (ecp_dir_exists(buf) || !len)
            return;
        snprintf(top, n, "%s", buf);
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf)
            return;
        *slash = 0;
    }
}

/* rmdir of dir and its parents up to top; a directory that is not empty stays. */
static void remove_created_dirs(const char *dir, const char *top)
{
    char buf[4200];
    snprintf(buf, sizeof buf, "%s", dir);
    for (;;) {
        size_t len = strlen(buf);
        while (len > 1 && buf[len - 1] == '/')
            buf[--len] = 0;
        if (rmdir(buf) != 0 || !strcmp(buf, top))
            return;
        char *slash = strrchr(buf, '/');
        if (!slash)
            return;
        *slash = 0;
    }
}

ecp_status ecp_export_c(const ecp_mlp *m, const char *dir, const char *name, int int8,
                        ecp_error *err)
{
    ECP_REQUIRE(m, err);
    ECP_REQUIRE(dir, err);
    ECP_REQUIRE(name, err);
    if (!ecp_export_c_name_ok(name))
        return ecp_fail(err, ECP_ERR_ARG,
                        "name '%s': not a usable C identifier (letters, digits and _, "
                        "starting with a letter, at most 64 characters, not a standard "
                        "header's name)",
                        name ? name : "");
    if (!dir || !*dir)
        return ecp_fail(err, ECP_ERR_ARG, "dir: empty output directory");
    ecp_status st = ECP_OK;
    ecp_spmat *A = ecp_zalloc((size_t)m->n_layers, sizeof *A, "export-c", err);
    if (!A)
        return ECP_ERR_MEMORY;
    for (int l = 0; l < m->n_layers && !st; l++) {
        const ecp_layer *Ly = &m->layer[l];
        st = ecp_spmat_build(&A[l], Ly->W, Ly->pruned, Ly->n_out, Ly->n_in, 0, err);
        if (!st && A[l].nnz > INT32_MAX)
            st = ecp_fail(err, ECP_ERR_UNSUPPORTED, "export-c: layer %d has more than 2^31 "
                          "weights", l);
    }
    out_text *c = NULL, *h = NULL;
    if (!st) {
        c = ecp_alloc(1, sizeof *c, "export-c", err);
        h = ecp_alloc(1, sizeof *h, "export-c", err);
        if (!c || !h)
            st = ECP_ERR_MEMORY;
    }
    int c_open = 0, h_open = 0;
    /* The directories this call creates are removed again if it fails. */
    char top[4200] = "";
    first_missing_dir(dir, top, sizeof top);
    if (!st)
        st = ecp_mkdir_p(dir, err);
    if (!st && !(st = open_out(h, dir, name, "h", err)))
        h_open = 1;
    if (!st && !(st = open_out(c, dir, name, "c", err)))
        c_open = 1;
    if (!st)
        st = write_header(h, m, name, int8);
    if (!st)
        st = write_source(c, m, A, name, int8);
    /* Both files or neither: the header is committed first and removed again if the source
     * cannot be. */
    if (!st) {
        char hpath[4200];
        snprintf(hpath, sizeof hpath, "%s", h->wf.path);
        h_open = 0;
        st = ecp_wfile_commit(&h->wf, err);
        if (!st) {
            c_open = 0;
            st = ecp_wfile_commit(&c->wf, err);
            if (st)
                remove(hpath);
        }
    }
    if (h_open)
        ecp_wfile_abort(&h->wf);
    if (c_open)
        ecp_wfile_abort(&c->wf);
    free(c);
    free(h);
    for (int l = 0; l < m->n_layers; l++)
        ecp_spmat_release(&A[l]);
    free(A);
    if (st && *top)
        remove_created_dirs(dir, top);
    return st;
}
