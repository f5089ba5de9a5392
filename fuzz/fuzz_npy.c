/* NumPy .npy files: header parsing, sizes against the file length, conversions; and the same
 * file as a training set left on disk (the header through ecp_npy_open, then every row read
 * back a chunk at a time, each checked as it is read). */
#include "fuzz_util.h"

/* Reads every row of the file through a dataset whose rows stay in it. */
static void fuzz_streamed(const char *path)
{
    ecp_npy h;
    int fd = -1;
    int64_t data_at = 0;
    ecp_error err = {0};
    if (ecp_npy_open(path, &h, &fd, &data_at, &err)) {
        fuzz_check_msg(&err);
        return;
    }
    int64_t n = h.shape[0], feat = h.shape[1];
    int32_t *lab = NULL;
    ecp_dataset *d = NULL;
    if (h.dtype == ECP_NPY_I8 || n < 1 || n > 65536 || feat < 1 || feat > (1 << 16) ||
        !(lab = calloc((size_t)n, sizeof *lab))) {
        close(fd);
        ecp_npy_release(&h);
        return;
    }
    /* The dataset owns fd from here on, and lab once it is made. */
    if (ecp_dataset_file_rows(path, fd, data_at, h.dtype == ECP_NPY_F4 ? 4 : 8, n, (int)feat, 1,
                              lab, NULL, &d, &err)) {
        fuzz_check_msg(&err);
        free(lab);
        ecp_npy_release(&h);
        return;
    }
    fuzz_read_rows(d);
    ecp_dataset_free(d);
    ecp_npy_release(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path)
        return 0;
    fuzz_streamed(path);
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
