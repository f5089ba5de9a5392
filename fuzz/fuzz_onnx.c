/* ONNX model files: the wire-format pre-scan, protobuf-c's unpack, the graph walk, sparse
 * initializers and external data references (the memfd's directory is /proc/self/fd, whose
 * entries are links leading out of it, so every external location ends in a refusal); a model
 * that loads is run once on a zero input and written back, dense and sparse. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path)
        return 0;
    ecp_mlp *m = NULL;
    ecp_error err = {0};
    if (ecp_onnx_load(&m, path, &err)) {
        fuzz_check_msg(&err);
        return 0;
    }
    ecp_ws *ws = NULL;
    if (!ecp_ws_create(&ws, m, 1, &err)) {
        float *x = calloc((size_t)ecp_mlp_n_in(m), sizeof *x);
        if (x)
            ecp_mlp_forward(m, ws, x, 1);
        free(x);
        ecp_ws_free(ws);
    }
    char out[] = "/tmp/ecprune-fuzz-XXXXXX";
    int fd = mkstemp(out);
    if (fd >= 0) {
        close(fd);
        /* Dense, then sparse initializers where smaller. */
        for (int sparse = 0; sparse < 2; sparse++) {
            ecp_onnx_options o = {.sparse = sparse};
            if (ecp_onnx_save_with(m, out, &o, &err) == ECP_OK) {
                ecp_mlp *back = NULL;
                /* What we write, we read back with the same shape. */
                if (ecp_onnx_load(&back, out, &err) ||
                    ecp_mlp_n_params(back) != ecp_mlp_n_params(m))
                    abort();
                ecp_mlp_free(back);
            }
        }
        unlink(out);
    }
    ecp_mlp_free(m);
    return 0;
}
