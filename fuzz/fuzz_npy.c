/* NumPy .npy files: header parsing, sizes against the file length, conversions. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path)
        return 0;
    ecp_npy a;
    ecp_error err = {0};
    if (ecp_npy_read(path, &a, &err)) {
        fuzz_check_msg(&err);
        return 0;
    }
    float *f = NULL;
    int32_t *lab = NULL;
    if (ecp_npy_to_f32(&a, path, &f, &err))
        fuzz_check_msg(&err);
    if (ecp_npy_to_labels(&a, path, &lab, &err))
        fuzz_check_msg(&err);
    free(f);
    free(lab);
    ecp_npy_release(&a);
    return 0;
}
