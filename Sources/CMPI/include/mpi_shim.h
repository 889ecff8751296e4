#ifndef MIXMOE_MPI_SHIM_H
#define MIXMOE_MPI_SHIM_H
// A small shim over Open MPI, loaded at run time with dlopen so that MixMoE builds and runs on
// machines without MPI (a build never needs mpi.h or libmpi). Open MPI's predefined handles
// (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are macros over global objects (`&ompi_mpi_comm_world`,
// mpi.h: OMPI_PREDEFINED_GLOBAL), invisible to Swift; the shim resolves those objects with dlsym
// and exposes one function per collective MixMoE needs. All functions return an MPI error code
// (0 = MPI_SUCCESS); under Open MPI's default error handler (MPI_ERRORS_ARE_FATAL) a failing call
// ends the job before returning.
#include <stddef.h>

/// Loads `path` (NULL: libmpi.so.40, then libmpi.so) and resolves every symbol. Returns 0, or -1
/// with a message in `err`.
int mixmoe_mpi_load(const char *path, char *err, size_t errlen);
/// MPI_Init_thread(MPI_THREAD_SERIALIZED); returns 0, or -1 if the library gave less.
int mixmoe_mpi_init(void);
int mixmoe_mpi_finalize(void);
int mixmoe_mpi_rank(void);
int mixmoe_mpi_size(void);
int mixmoe_mpi_barrier(void);
/// In-place MPI_Allreduce of floats (op: 0 sum, 1 max).
int mixmoe_mpi_allreduce_float(float *buf, long count, int op);
/// In-place MPI_Allreduce of doubles (op: 0 sum, 1 max).
int mixmoe_mpi_allreduce_double(double *buf, long count, int op);
int mixmoe_mpi_bcast_float(float *buf, long count, int root);
int mixmoe_mpi_bcast_bytes(void *buf, long count, int root);
/// MPI_Reduce_scatter (sum): `send` holds the sum of `counts` floats; rank r receives its
/// counts[r] floats (the global sum of its part) in `recv`.
int mixmoe_mpi_reduce_scatter_float(const float *send, float *recv, const int *counts);
/// In-place MPI_Allgatherv: `buf` holds every rank's part (counts[r] floats at displs[r]), this
/// rank's already in place; afterwards every part.
int mixmoe_mpi_allgather_float(float *buf, const int *counts, const int *displs);
/// MPI_Abort(MPI_COMM_WORLD, code): ends every rank.
void mixmoe_mpi_abort(int code);
#endif
