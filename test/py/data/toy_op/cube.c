/* y = x^3 elementwise, split over the pool's threads like the library's
   elementwise kernels (kernels/elementwise.c). */
#include "cube.h"

typedef struct {
    const float *x;
    float *y;
    int64_t n;
} cube_job;

static void cube_task(void *arg, int i, int nth) {
    const cube_job *j = (const cube_job *)arg;
    const int64_t lo = j->n * i / nth, hi = j->n * (i + 1) / nth;
    for (int64_t k = lo; k < hi; k++) j->y[k] = j->x[k] * j->x[k] * j->x[k];
}

void ck_cube_f32_scalar(const float *x, float *y, int64_t n, ck_pool *pool, int nth) {
    cube_job j = {x, y, n};
    ck_pool_run(pool, nth, cube_task, &j);
}
