/* The toy op's kernel (test/py/test_add_op.py): what an in-tree kernel declares
   in kernels/include/ckernels.h. Only a scalar variant. */
#ifndef TOY_CUBE_H
#define TOY_CUBE_H
#include <stdint.h>
#include "ckernels.h"

void ck_cube_f32_scalar(const float *x, float *y, int64_t n, ck_pool *pool, int nth);

#endif
