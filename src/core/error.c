/* Errors: a code plus a message that names the file or option and the problem. */
#include "../internal.h"
#include <stdarg.h>

/* Length of the valid UTF-8 sequence at p that is not a C1 control (U+0080-U+009F, which some
 * terminals obey as escape sequences), or 0. */
static int utf8_len(const unsigned char *p)
{
    int n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || p[0] > 0xf4)
        return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
        return 0;
    if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 4 && p[0] == 0xf0 && p[1] < 0x90) ||
        (n == 4 && p[0] == 0xf4 && p[1] > 0x8f) || (n == 3 && p[0] == 0xed && p[1] > 0x9f))
        return 0; /* overlong, beyond U+10FFFF, surrogates */
    return n;
}

/* Copies src into dst (size n) with every control character and invalid UTF-8 byte written as
 * \xNN: messages quote names taken from files, and a name holding a newline or an escape
 * sequence must not forge lines or drive the terminal. A message cut short ends in "...". */
static void copy_escaped(char *dst, size_t n, const char *src, int cut)
{
    const unsigned char *p = (const unsigned char *)src;
    size_t o = 0;
    while (*p) {
        int k = *p >= 0x80 ? utf8_len(p) : (*p >= 0x20 && *p != 0x7f);
        size_t need = k ? (size_t)k : 4;
        if (o + need + 4 > n) {
            cut = 1;
            break;
        }
        if (k) {
            memcpy(dst + o, p, (size_t)k);
            p += k;
        } else {
            snprintf(dst + o, 5, "\\x%02x", *p++);
        }
        o += need;
    }
    if (cut && n >= 4) {
        if (o > n - 4)
            o = n - 4;
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = 0;
}

ecp_status ecp_fail(ecp_error *err, ecp_status code, const char *fmt, ...)
{
    if (err) {
        char raw[4096];
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        copy_escaped(err->msg, sizeof err->msg, raw, w >= (int)sizeof raw);
        err->code = code;
    }
    return code;
}

const char *ecp_status_name(ecp_status s)
{
    switch (s) {
    case ECP_OK: return "ok";
    case ECP_ERR_ARG: return "invalid argument";
    case ECP_ERR_IO: return "i/o error";
    case ECP_ERR_FORMAT: return "malformed input";
    case ECP_ERR_MEMORY: return "out of memory";
    case ECP_ERR_UNSUPPORTED: return "unsupported";
    case ECP_ERR_NUMERIC: return "non-finite value";
    case ECP_ERR_SHAPE: return "shape mismatch";
    }
    return "unknown error";
}
