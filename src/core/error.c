/* Errors: a code plus a message that names the file or option and the problem. */
#include "../internal.h"
#include <stdarg.h>

ecp_status ecp_fail(ecp_error *err, ecp_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
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
