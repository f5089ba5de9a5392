/* Numeric CSV: comma-separated numbers, an optional header line (detected: a first line with a
 * non-numeric field), target columns chosen by index (default: the last). Regression only. */
#include "../internal.h"
#include "csv.h"
#include <errno.h>
#include <float.h>
#include <math.h>

#define CSV_MAX_BYTES ((size_t)8 << 30)
#define CSV_MAX_COLS 100000

/* Parses "1,3,5" into a sorted-unique column flag array of ncol entries. */
static ecp_status parse_targets(const char *path, const char *spec, int ncol, uint8_t *is_t,
                                int *nt, ecp_error *err)
{
    memset(is_t, 0, (size_t)ncol);
    *nt = 0;
    if (!spec || !*spec) {
        is_t[ncol - 1] = 1;
        *nt = 1;
        return ECP_OK;
    }
    const char *p = spec;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && (*end != ',' || !end[1])))
            return ecp_fail(err, ECP_ERR_ARG, "target_cols '%s': expected column numbers like 0,3",
                            spec);
        if (v < 0)
            v += ncol; /* -1 = the last column, as in Python */
        if (v < 0 || v >= ncol)
            return ecp_fail(err, ECP_ERR_ARG, "target_cols '%s': %s has only %d columns", spec,
                            path, ncol);
        if (!is_t[v])
            (*nt)++;
        is_t[v] = 1;
        p = *end ? end + 1 : end;
    }
    if (*nt == ncol)
        return ecp_fail(err, ECP_ERR_ARG, "target_cols '%s': no input column left in %s", spec,
                        path);
    return ECP_OK;
}

static int count_fields(const char *line, const char *eol)
{
    int n = 1;
    for (const char *p = line; p < eol; p++)
        n += *p == ',';
    return n;
}

static int is_number_field(const char *p, const char *eol)
{
    while (p < eol && (*p == ' ' || *p == '\t'))
        p++;
    char *end;
    errno = 0;
    strtod(p, &end);
    return end != p && (end == eol || *end == ',' || *end == ' ' || *end == '\t' || *end == '\r');
}

ecp_status ecp_csv_read(const char *path, const char *target_cols, ecp_dataset **out,
                        ecp_error *err)
{
    *out = NULL;
    unsigned char *buf;
    size_t len;
    ecp_status s = ecp_read_file(path, &buf, &len, CSV_MAX_BYTES, err);
    if (s)
        return s;
    char *text = (char *)buf, *end_text = text + len;
    char *line = text;
    /* Skip a UTF-8 BOM, which spreadsheet exports like to add. */
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
        line += 3;
    char *eol = memchr(line, '\n', (size_t)(end_text - line));
    if (!eol)
        eol = end_text;
    if (line == end_text) {
        free(buf);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: empty CSV file", path);
    }
    int ncol = count_fields(line, eol);
    if (ncol < 2 || ncol > CSV_MAX_COLS) {
        free(buf);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: need 2 to %d columns, found %d", path,
                        CSV_MAX_COLS, ncol);
    }
    int header = !is_number_field(line, eol);
    int64_t rows = 0;
    for (char *p = header ? eol : line; p < end_text;) {
        char *e = memchr(p, '\n', (size_t)(end_text - p));
        if (!e)
            e = end_text;
        char *q = p;
        while (q < e && (*q == ' ' || *q == '\r' || *q == '\t'))
            q++;
        rows += q < e;
        p = e + 1;
    }
    uint8_t *is_t = ecp_alloc((size_t)ncol, 1, path, err);
    if (!is_t) {
        free(buf);
        return ECP_ERR_MEMORY;
    }
    int nt;
    if ((s = parse_targets(path, target_cols, ncol, is_t, &nt, err))) {
        free(is_t);
        free(buf);
        return s;
    }
    ecp_dataset *d;
    if ((s = ecp_dataset_create(&d, rows, ncol - nt, nt, 0, err))) {
        free(is_t);
        free(buf);
        return s;
    }
    int64_t r = 0;
    int64_t lineno = header ? 1 : 0;
    for (char *p = header ? (eol < end_text ? eol + 1 : end_text) : line; p < end_text && !s;) {
        char *e = memchr(p, '\n', (size_t)(end_text - p));
        if (!e)
            e = end_text;
        lineno++;
        char *q = p;
        while (q < e && (*q == ' ' || *q == '\r' || *q == '\t'))
            q++;
        if (q == e) {
            p = e + 1;
            continue;
        }
        *e = 0; /* strtod must not run into the next line */
        int xi = 0, yi = 0, c = 0, ended = 0;
        char *f = p;
        for (; c < ncol; c++) {
            char *fe;
            errno = 0;
            double v = strtod(f, &fe);
            while (*fe == ' ' || *fe == '\t' || *fe == '\r')
                fe++;
            if (fe == f || (*fe != ',' && *fe != 0)) {
                s = ecp_fail(err, ECP_ERR_FORMAT, "%s:%lld: field %d is not a number", path,
                             (long long)lineno, c + 1);
                break;
            }
            /* The check is on the float the dataset stores: 1e39 is a finite double but
             * becomes Inf as a float. */
            if (!isfinite(v) || fabs(v) > FLT_MAX) {
                s = ecp_fail(err, ECP_ERR_NUMERIC, "%s: line %lld, column %d: %.*s is %s", path,
                             (long long)lineno, c + 1, (int)(fe - f > 40 ? 40 : fe - f), f,
                             isnan(v) ? "NaN" : isfinite(v) ? "beyond the float32 range" : "Inf");
                break;
            }
            if (is_t[c])
                d->y[(size_t)r * nt + yi++] = (float)v;
            else
                d->x[(size_t)r * (ncol - nt) + xi++] = (float)v;
            if (*fe == 0) {
                c++;
                ended = 1;
                break;
            }
            f = fe + 1;
        }
        if (!s && (c != ncol || !ended))
            s = ecp_fail(err, ECP_ERR_FORMAT, "%s:%lld: %s fields than the %d of the first line",
                         path, (long long)lineno, c != ncol ? "fewer" : "more", ncol);
        r++;
        p = e + 1;
    }
    free(is_t);
    free(buf);
    if (s) {
        ecp_dataset_free(d);
        return s;
    }
    if (rows == 0) {
        ecp_dataset_free(d);
        return ecp_fail(err, ECP_ERR_FORMAT, "%s: no data rows", path);
    }
    *out = d;
    return ECP_OK;
}
