/* Shared by the libFuzzer harnesses: the readers take paths, so each input goes into one
 * memfd (a regular file in memory, reopened through /proc/self/fd) that is rewritten per run. */
#ifndef ECP_FUZZ_UTIL_H
#define ECP_FUZZ_UTIL_H

#include "ecprune.h"
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The path of a memfd holding exactly data[0..n); NULL when the memfd cannot be made. */
static inline const char *fuzz_file(const uint8_t *data, size_t n)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("ecprune-fuzz", 0);
        if (fd < 0)
            return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        /* Inputs are small; a budget far below the fuzzer's RSS limit keeps the reader's own
         * refusals (not the fuzzer's OOM) the answer to inputs that ask for too much. */
        ecp_set_max_memory((uint64_t)256 << 20);
    }
    if (ftruncate(fd, 0) != 0 || (n && pwrite(fd, data, n, 0) != (ssize_t)n))
        return NULL;
    return path;
}

/* Every error message is one printable line: no control bytes, terminated, within bounds. */
static inline void fuzz_check_msg(const ecp_error *err)
{
    size_t n = strnlen(err->msg, sizeof err->msg);
    if (n == sizeof err->msg)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)err->msg[i] < 0x20 || err->msg[i] == 0x7f)
            abort();
}

/* Every row of a dataset whose rows stay on disk, read a chunk at a time; each value is read
 * (ASan checks the bound), a failure must be one printable line. */
static inline void fuzz_read_rows(const ecp_dataset *d)
{
    int64_t chunk = ecp_dataset_chunk_rows(d);
    volatile float sum = 0;
    for (int64_t at = 0; at < d->n; at += chunk) {
        ecp_dataset v;
        ecp_error err = {0};
        if (ecp_dataset_rows(d, at, d->n - at < chunk ? d->n - at : chunk, &v, &err)) {
            fuzz_check_msg(&err);
            return;
        }
        for (int64_t i = 0; i < v.n * v.n_in; i++)
            sum += v.x[i];
    }
    (void)sum;
}

#endif
