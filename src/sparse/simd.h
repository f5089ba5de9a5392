/* The kernels of this directory use the library's one set of vector helpers. */
#include "sparse.h"
#include "../core/simd.h"
