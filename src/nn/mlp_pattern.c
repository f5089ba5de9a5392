/* The N:M pattern a model may promise (2:4 for sparse tensor cores, say): in every group of M
 * consecutive inputs of a row, at most N weights are non-zero. The last group of a row whose
 * fan-in M does not divide is shorter and obeys the same bound, as if the row were padded with
 * zeros to a multiple of M (which is what a hardware layout does). */
#include "../internal.h"
#include <errno.h>

ecp_status ecp_pattern_parse(const char *s, int *n, int *mm, ecp_error *err)
{
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10), b = 0;
    int ok = end != s && *end == ':' && !errno;
    if (ok) {
        const char *p = end + 1;
        b = strtol(p, &end, 10);
        ok = end != p && !*end && !errno;
    }
    if (!ok || a < 1 || b < 2 || a >= b || b > ECP_PATTERN_MAX_M)
        return ecp_fail(err, ECP_ERR_ARG, "pattern '%s': expected N:M with 1 <= N < M <= %d "
                        "(e.g. 2:4)", s, ECP_PATTERN_MAX_M);
    *n = (int)a;
    *mm = (int)b;
    return ECP_OK;
}

ecp_status ecp_mlp_set_pattern(ecp_mlp *m, int n, int mm, uint64_t layers, ecp_error *err)
{
    if (n == 0) {
        m->nm_n = m->nm_m = 0;
        m->nm_layers = 0;
        return ECP_OK;
    }
    if (n < 1 || mm < 2 || n >= mm || mm > ECP_PATTERN_MAX_M)
        return ecp_fail(err, ECP_ERR_ARG, "pattern %d:%d: expected 1 <= N < M <= %d", n, mm,
                        ECP_PATTERN_MAX_M);
    if (m->n_layers < 64 && (layers >> m->n_layers))
        return ecp_fail(err, ECP_ERR_ARG, "pattern layers: the model has %d layers",
                        m->n_layers);
    m->nm_n = n;
    m->nm_m = mm;
    m->nm_layers = layers;
    return ECP_OK;
}

int ecp_mlp_pattern(const ecp_mlp *m, int *n, int *mm, uint64_t *layers)
{
    if (n) *n = m->nm_n;
    if (mm) *mm = m->nm_m;
    if (layers) *layers = m->nm_layers;
    return m->nm_m > 0;
}

ecp_status ecp_mlp_check_pattern(const ecp_mlp *m, ecp_error *err)
{
    if (m->nm_m <= 0)
        return ECP_OK;
    for (int l = 0; l < m->n_layers && l < 64; l++) {
        if (!((m->nm_layers >> l) & 1))
            continue;
        const ecp_layer *Ly = &m->layer[l];
        for (int i = 0; i < Ly->n_out; i++)
            for (int g = 0; g < Ly->n_in; g += m->nm_m) {
                int kept = 0, end = g + m->nm_m < Ly->n_in ? g + m->nm_m : Ly->n_in;
                for (int j = g; j < end; j++)
                    kept += Ly->W[(size_t)i * Ly->n_in + j] != 0;
                if (kept > m->nm_n)
                    return ecp_fail(err, ECP_ERR_FORMAT, "pattern %d:%d does not hold: layer %d "
                                    "row %d inputs %d..%d keep %d weights", m->nm_n, m->nm_m, l,
                                    i, g, end - 1, kept);
            }
    }
    return ECP_OK;
}
