/* Numeric CSV. The first byte picks the target columns, the rest is the file. */
#include "fuzz_util.h"
#include "data/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const targets[] = {NULL, "0", "-1", "0,2", "1,-1", "5", "0,0,1"};
    if (size < 1)
        return 0;
    const char *spec = targets[data[0] % (sizeof targets / sizeof *targets)];
    const char *path = fuzz_file(data + 1, size - 1);
    if (!path)
        return 0;
    ecp_dataset *d = NULL;
    ecp_error err = {0};
    if (ecp_csv_read(path, spec, &d, &err)) {
        fuzz_check_msg(&err);
        return 0;
    }
    if (ecp_dataset_validate(d, path, &err))
        abort(); /* the reader lets no non-finite value through */
    ecp_dataset_free(d);
    return 0;
}
