/* ck_quantize_rows_avx512: kernels/quantize.c's quantizers built with AVX512 (the
 * compiler vectorizes the 16-lane scale searches wider; same bytes). */
#define QZ_SFX avx512
#include "internal/quantize_impl.h"
