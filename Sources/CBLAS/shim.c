// Intentionally empty: SwiftPM needs one source file for a C target; the symbols come from libopenblas.
#include "cblas_shim.h"
