/* Processes: the one file that talks to MPI. Everything else asks it for a rank, a size, a sum
 * of doubles or an agreement on failure, and never includes <mpi.h>.
 *
 * MPI starts only when ecp_dist_init is called in a process that mpirun (or another PMIx
 * launcher) started: a plain `ecprune` or an embedder of the library never initialises MPI and
 * sees one process of rank 0. The state below is per process because MPI's own is: one
 * MPI_Init and one MPI_Finalize per process. */
#include "internal.h"
#include <mpi.h>
#include <stdlib.h>

static int dist_on;         /* MPI initialised by ecp_dist_init and not yet finalised */
static ecp_error dist_fail; /* the error every rank agreed on; later agreements repeat it */
static int dist_solo;       /* ecp_dist_solo: this process works alone for now */

static int launched_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

ecp_status ecp_dist_init(int *argc, char ***argv, ecp_error *err)
{
    if (dist_on || !launched_by_mpirun())
        return ECP_OK;
    /* With a rank on every core of the machine, any other process takes a core from a rank,
     * and a rank spinning in a sum keeps its partner waiting for a core: waiting ranks yield
     * (measured: training on 2 ranks of a loaded 2-core machine twice as fast). A setting of
     * the user's own wins. */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (local && atoi(local) >= ecp_online_cores())
        setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag && MPI_Init(argc, argv) != MPI_SUCCESS)
        return ecp_fail(err, ECP_ERR_UNSUPPORTED, "MPI: initialisation failed");
    /* Errors come back as codes: a failed call must not kill the job behind our back. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    dist_on = 1;
    return ECP_OK;
}

void ecp_dist_finalize(void)
{
    if (!dist_on)
        return;
    dist_on = 0;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
}

int ecp_dist_solo(int on)
{
    int prev = dist_solo;
    dist_solo = on;
    return prev;
}

/* Collectives run only with MPI on and outside a solo stretch. */
static int dist_live(void) { return dist_on && !dist_solo; }

int ecp_dist_rank(void)
{
    int r = 0;
    if (dist_live())
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int ecp_dist_size(void)
{
    int n = 1;
    if (dist_live())
        MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

int ecp_dist_local_size(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    int n = s ? atoi(s) : 0;
    return dist_live() && n > 0 ? n : ecp_dist_size() > 1 ? ecp_dist_size() : 1;
}

/* Every rank learns whether any rank failed: the lowest failing rank is found with one
 * MPI_Allreduce and its error (code and message) broadcast, so all ranks return the same one.
 * Once an agreement has failed, every later one returns that error without communicating: a
 * rank that stopped early and one still working pair their next agreements, and neither then
 * waits for a partner that has gone. */
ecp_status ecp_dist_agree(ecp_status s, ecp_error *err)
{
    if (!dist_live())
        return s;
    if (dist_fail.code) {
        if (err)
            *err = dist_fail;
        return dist_fail.code;
    }
    int size = ecp_dist_size(), me = s ? ecp_dist_rank() : size, first = size;
    if (MPI_Allreduce(&me, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        first = -1;
    if (first == size)
        return ECP_OK;
    ecp_error e = {0};
    if (first < 0) {
        ecp_fail(&e, ECP_ERR_IO, "MPI: the processes could not agree (a process was lost?)");
    } else {
        if (first == ecp_dist_rank() && err)
            e = *err;
        if (first == ecp_dist_rank() && !e.code)
            e.code = s;
        int code = (int)e.code;
        MPI_Bcast(&code, 1, MPI_INT, first, MPI_COMM_WORLD);
        MPI_Bcast(e.msg, (int)sizeof e.msg, MPI_CHAR, first, MPI_COMM_WORLD);
        e.code = (ecp_status)code;
        e.msg[sizeof e.msg - 1] = 0;
    }
    dist_fail = e;
    if (err)
        *err = e;
    return e.code;
}

/* MPI counts are int: large buffers go in pieces of at most chunk elements. */
static ecp_status sum_chunks(void *buf, size_t n, size_t elt, MPI_Datatype t, size_t chunk,
                             ecp_error *err)
{
    if (!dist_live() || !buf || n == 0)
        return ECP_OK;
    for (size_t at = 0; at < n; at += chunk) {
        int c = (int)(n - at < chunk ? n - at : chunk);
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * elt, c, t, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            return ecp_fail(err, ECP_ERR_IO, "MPI: a sum across processes failed");
    }
    return ECP_OK;
}

ecp_status ecp_dist_sum(double *buf, size_t n, ecp_error *err)
{
    return sum_chunks(buf, n, sizeof *buf, MPI_DOUBLE, (size_t)1 << 28, err);
}

ecp_status ecp_dist_sum_f32(float *buf, size_t n, size_t bucket, ecp_error *err)
{
    if (bucket == 0 || bucket > (size_t)1 << 30)
        bucket = (size_t)1 << 30;
    return sum_chunks(buf, n, sizeof *buf, MPI_FLOAT, bucket, err);
}

ecp_status ecp_dist_max(double *v, ecp_error *err)
{
    if (dist_live() &&
        MPI_Allreduce(MPI_IN_PLACE, v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        return ecp_fail(err, ECP_ERR_IO, "MPI: a maximum across processes failed");
    return ECP_OK;
}

ecp_status ecp_dist_bcast(void *buf, size_t bytes, int root, ecp_error *err)
{
    if (!dist_live() || bytes == 0)
        return ECP_OK;
    const size_t chunk = (size_t)1 << 30;
    for (size_t at = 0; at < bytes; at += chunk) {
        int c = (int)(bytes - at < chunk ? bytes - at : chunk);
        if (MPI_Bcast((char *)buf + at, c, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS)
            return ecp_fail(err, ECP_ERR_IO, "MPI: a broadcast across processes failed");
    }
    return ECP_OK;
}

void ecp_dist_shard(int64_t n, int64_t *lo, int64_t *hi)
{
    int64_t p = ecp_dist_size(), r = ecp_dist_rank();
    *lo = n * r / p;
    *hi = n * (r + 1) / p;
}

int ecp_dist_default_threads(void)
{
    if (ecp_dist_size() == 1)
        return 0;
    int per = ecp_online_cores() / ecp_dist_local_size();
    return per > 1 ? per : 1;
}
