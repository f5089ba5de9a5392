/* IDX files, plain or gzip-compressed (zlib detects which). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path)
        return 0;
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
