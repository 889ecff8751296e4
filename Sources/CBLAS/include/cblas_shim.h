#ifndef MIXMOE_CBLAS_SHIM_H
#define MIXMOE_CBLAS_SHIM_H
// The few OpenBLAS entry points MixMoE uses. Declared here rather than including <cblas.h>,
// whose location differs between Debian's openblas flavours (pthread/openmp/serial).
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE transA, enum CBLAS_TRANSPOSE transB,
                 int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
#endif
