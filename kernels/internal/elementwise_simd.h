/* SIMD template for elementwise.c (included by elementwise_avx2.c / _avx512.c). */
typedef struct {
    const float *a, *b;
    float *y;
    int64_t n;
    float s;
    int op;
} ew_args;

static void ew_task(void *arg, int ith, int nth)
{
    const ew_args *p = (const ew_args *)arg;
    int64_t lo, hi;
    ckk_split_aligned(p->n, 64, ith, nth, &lo, &hi);
    const float *a = p->a, *b = p->b;
    float *y = p->y;
    const vf s = v_set1(p->s);
    int64_t i = lo;
    switch (p->op) {
    case 0:
        for (; i + CK_W <= hi; i += CK_W) v_store(y + i, v_add(v_load(a + i), v_load(b + i)));
        if (i < hi) v_store_n(y + i, v_add(v_load_n(a + i, (int)(hi - i)), v_load_n(b + i, (int)(hi - i))), (int)(hi - i));
        break;
    case 1:
        for (; i + CK_W <= hi; i += CK_W) v_store(y + i, v_mul(s, v_load(a + i)));
        if (i < hi) v_store_n(y + i, v_mul(s, v_load_n(a + i, (int)(hi - i))), (int)(hi - i));
        break;
    case 3:
        for (; i + CK_W <= hi; i += CK_W) v_store(y + i, v_mul(v_load(a + i), v_load(b + i)));
        if (i < hi) v_store_n(y + i, v_mul(v_load_n(a + i, (int)(hi - i)), v_load_n(b + i, (int)(hi - i))), (int)(hi - i));
        break;
    default:
        for (; i + CK_W <= hi; i += CK_W) v_store(y + i, v_fmadd(s, v_load(a + i), v_load(y + i)));
        if (i < hi) {
            int r = (int)(hi - i);
            v_store_n(y + i, v_fmadd(s, v_load_n(a + i, r), v_load_n(y + i, r)), r);
        }
        break;
    }
}

static void ew_run(ew_args *args, ck_pool *pool, int nth)
{
    ck_pool_run(pool, ckk_threads_for(args->n, 1 << 15, nth), ew_task, args);
}

void CK_FN(ck_add_f32)(const float *a, const float *b, float *y, int64_t n, ck_pool *pool, int nth)
{
    ew_args args = {a, b, y, n, 0.0f, 0};
    ew_run(&args, pool, nth);
}

void CK_FN(ck_scale_f32)(const float *x, float *y, int64_t n, float s, ck_pool *pool, int nth)
{
    ew_args args = {x, NULL, y, n, s, 1};
    ew_run(&args, pool, nth);
}

void CK_FN(ck_axpy_f32)(float *y, const float *x, int64_t n, float a, ck_pool *pool, int nth)
{
    ew_args args = {x, NULL, y, n, a, 2};
    ew_run(&args, pool, nth);
}

void CK_FN(ck_mul_f32)(const float *a, const float *b, float *y, int64_t n, ck_pool *pool, int nth)
{
    ew_args args = {a, b, y, n, 0.0f, 3};
    ew_run(&args, pool, nth);
}
