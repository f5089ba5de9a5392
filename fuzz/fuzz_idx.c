/* IDX files, plain or gzip-compressed (zlib detects which); and the same file as training
 * images left on disk (checked whole, a compressed one copied uncompressed to a temporary
 * file, then every row read back a chunk at a time). */
#include "fuzz_util.h"

/* Reads every image of the file through a dataset whose rows stay on disk. */
static void fuzz_streamed(const char *path)
{
    int fd = -1, copied = 0, nd = 0;
    int64_t dims[4];
    ecp_error err = {0};
    if (ecp_temp_fd(&fd, &err))
        return;
    if (ecp_idx_check(path, &nd, dims, fd, &copied, &err)) {
        fuzz_check_msg(&err);
        close(fd);
        return;
    }
    int64_t n = dims[0], feat = 1;
    for (int i = 1; i < nd; i++) /* dims < 2^32 each: saturate as the loader does */
        feat = feat > (1 << 16) ? feat : feat * dims[i];
    int32_t *lab = NULL;
    ecp_dataset *d = NULL;
    if (n < 1 || n > 65536 || feat < 1 || feat > (1 << 16) ||
        !(lab = calloc((size_t)n, sizeof *lab))) {
        close(fd);
        return;
    }
    if (!copied)
        close(fd);
    /* The dataset owns the copy's fd from here on, and lab once it is made. */
    if (ecp_dataset_file_rows(path, copied ? fd : -1, copied ? 0 : 4 + 4 * (int64_t)nd, 1, n,
                              (int)feat, 10, lab, NULL, &d, &err)) {
        fuzz_check_msg(&err);
        free(lab);
        return;
    }
    fuzz_read_rows(d);
    ecp_dataset_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path)
        return 0;
    fuzz_streamed(path);
    int nd = 0;
    int64_t dims[4];
    uint8_t *d = NULL;
    ecp_error err = {0};
    if (ecp_idx_read(path, &nd, dims, &d, &err)) {
        fuzz_check_msg(&err);
        return 0;
    }
    uint64_t count = 1;
    for (int i = 0; i < nd; i++)
        count *= (uint64_t)dims[i];
    /* Touch every byte the reader claims to return (ASan checks the bound). */
    volatile uint8_t sum = 0;
    for (uint64_t i = 0; i < count; i++)
        sum += d[i];
    free(d);
    return 0;
}
