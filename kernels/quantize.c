/* fp32 rows -> GGUF block rows: the quantizers llama.cpp writes model files
 * with (ggml-quants.c, quantize_row_<fmt>_ref: what llama-quantize runs when
 * no importance matrix is given), so `ckc compile --weights q4_k` stores the
 * bytes llama-quantize would. Ported statement by statement, in the same
 * float expression order: the library is built as ISO C11 (no FMA
 * contraction) and ggml's reference is compiled without FMA too, so the bytes
 * are equal, not merely close (test/py/test_quantize.py compares them with
 * ggml's own functions). Block layouts: ckernels.h (section quant) and
 * kernels/internal/quant_k.h. The body is internal/quantize_impl.h; the
 * scale searches that dominate the K-quants run 16 groups side by side (one
 * per vector lane), each lane doing the reference's operations in its order,
 * so the avx2/avx512 builds of the same code are faster and give the same
 * bytes. Callers thread it over row ranges (ckc/quantize.py). */
#define QZ_SFX scalar
#include "internal/quantize_impl.h"
