// See include/mpi_shim.h. The types below are Open MPI's ABI (mpi.h, Open MPI 4.x and 5.x):
// handles are pointers to opaque structs, MPI_IN_PLACE is (void *)1, counts are C ints.
#include "mpi_shim.h"
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>

typedef void *Handle;
#define MPI_IN_PLACE_ ((void *)1)
#define MPI_THREAD_SERIALIZED_ 2

static int (*p_init_thread)(int *, char ***, int, int *);
static int (*p_finalize)(void);
static int (*p_comm_rank)(Handle, int *);
static int (*p_comm_size)(Handle, int *);
static int (*p_barrier)(Handle);
static int (*p_allreduce)(const void *, void *, int, Handle, Handle, Handle);
static int (*p_bcast)(void *, int, Handle, int, Handle);
static int (*p_reduce_scatter)(const void *, void *, const int *, Handle, Handle, Handle);
static int (*p_allgatherv)(const void *, int, Handle, void *, const int *, const int *, Handle, Handle);
static int (*p_abort)(Handle, int);
static Handle comm_world, type_float, type_double, type_byte, op_sum, op_max;

static void *sym(void *lib, const char *name, char *err, size_t errlen, int *failed) {
    void *p = dlsym(lib, name);
    if (!p && !*failed) {
        snprintf(err, errlen, "symbol %s not found (is this Open MPI?)", name);
        *failed = 1;
    }
    return p;
}

int mixmoe_mpi_load(const char *path, char *err, size_t errlen) {
    // RTLD_GLOBAL: Open MPI dlopens its own components, which need libmpi's symbols.
    void *lib = NULL;
    if (path) {
        lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    } else {
        lib = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
        if (!lib) lib = dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL);
    }
    if (!lib) {
        const char *e = dlerror();
        snprintf(err, errlen, "%s", e ? e : "dlopen failed");
        return -1;
    }
    int failed = 0;
    *(void **)&p_init_thread = sym(lib, "MPI_Init_thread", err, errlen, &failed);
    *(void **)&p_finalize = sym(lib, "MPI_Finalize", err, errlen, &failed);
    *(void **)&p_comm_rank = sym(lib, "MPI_Comm_rank", err, errlen, &failed);
    *(void **)&p_comm_size = sym(lib, "MPI_Comm_size", err, errlen, &failed);
    *(void **)&p_barrier = sym(lib, "MPI_Barrier", err, errlen, &failed);
    *(void **)&p_allreduce = sym(lib, "MPI_Allreduce", err, errlen, &failed);
    *(void **)&p_bcast = sym(lib, "MPI_Bcast", err, errlen, &failed);
    *(void **)&p_reduce_scatter = sym(lib, "MPI_Reduce_scatter", err, errlen, &failed);
    *(void **)&p_allgatherv = sym(lib, "MPI_Allgatherv", err, errlen, &failed);
    *(void **)&p_abort = sym(lib, "MPI_Abort", err, errlen, &failed);
    // the predefined handles: addresses of Open MPI's global objects
    comm_world = sym(lib, "ompi_mpi_comm_world", err, errlen, &failed);
    type_float = sym(lib, "ompi_mpi_float", err, errlen, &failed);
    type_double = sym(lib, "ompi_mpi_double", err, errlen, &failed);
    type_byte = sym(lib, "ompi_mpi_byte", err, errlen, &failed);
    op_sum = sym(lib, "ompi_mpi_op_sum", err, errlen, &failed);
    op_max = sym(lib, "ompi_mpi_op_max", err, errlen, &failed);
    return failed ? -1 : 0;
}

int mixmoe_mpi_init(void) {
    int provided = 0;
    int rc = p_init_thread(NULL, NULL, MPI_THREAD_SERIALIZED_, &provided);
    if (rc != 0) return rc;
    return provided >= MPI_THREAD_SERIALIZED_ ? 0 : -1;
}

int mixmoe_mpi_finalize(void) { return p_finalize(); }

int mixmoe_mpi_rank(void) {
    int r = -1;
    p_comm_rank(comm_world, &r);
    return r;
}

int mixmoe_mpi_size(void) {
    int s = 0;
    p_comm_size(comm_world, &s);
    return s;
}

int mixmoe_mpi_barrier(void) { return p_barrier(comm_world); }

// MPI counts are ints: long buffers go in pieces of at most INT_MAX / 2 elements.
#define PIECE (INT_MAX / 2)

static int allreduce_pieces(char *buf, long count, size_t elem, Handle type, int op) {
    for (long at = 0; at < count; at += PIECE) {
        long n = count - at < PIECE ? count - at : PIECE;
        int rc = p_allreduce(MPI_IN_PLACE_, buf + at * elem, (int)n, type, op ? op_max : op_sum, comm_world);
        if (rc) return rc;
    }
    return 0;
}

static int bcast_pieces(char *buf, long count, size_t elem, Handle type, int root) {
    for (long at = 0; at < count; at += PIECE) {
        long n = count - at < PIECE ? count - at : PIECE;
        int rc = p_bcast(buf + at * elem, (int)n, type, root, comm_world);
        if (rc) return rc;
    }
    return 0;
}

int mixmoe_mpi_allreduce_float(float *buf, long count, int op) {
    return allreduce_pieces((char *)buf, count, sizeof(float), type_float, op);
}

int mixmoe_mpi_allreduce_double(double *buf, long count, int op) {
    return allreduce_pieces((char *)buf, count, sizeof(double), type_double, op);
}

int mixmoe_mpi_bcast_float(float *buf, long count, int root) {
    return bcast_pieces((char *)buf, count, sizeof(float), type_float, root);
}

int mixmoe_mpi_bcast_bytes(void *buf, long count, int root) { return bcast_pieces((char *)buf, count, 1, type_byte, root); }

int mixmoe_mpi_reduce_scatter_float(const float *send, float *recv, const int *counts) {
    return p_reduce_scatter(send, recv, counts, type_float, op_sum, comm_world);
}

int mixmoe_mpi_allgather_float(float *buf, const int *counts, const int *displs) {
    return p_allgatherv(MPI_IN_PLACE_, 0, type_float, buf, counts, displs, type_float, comm_world);
}

void mixmoe_mpi_abort(int code) { p_abort(comm_world, code); }
