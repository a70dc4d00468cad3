/* ck_quantize_rows_avx2: kernels/quantize.c's quantizers built with AVX2 (the
 * compiler vectorizes the 16-lane scale searches wider; same bytes). */
#define QZ_SFX avx2
#include "internal/quantize_impl.h"
