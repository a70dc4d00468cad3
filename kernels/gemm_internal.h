/* Blocking constants shared by the GEMM variants and the workspace query.
 * (Internal: not part of the public header.) */
#ifndef CK_GEMM_INTERNAL_H
#define CK_GEMM_INTERNAL_H

#define CKG_KC 256     /* k block: an MR x KC micro-panel of A stays in L1 */
#define CKG_MC 768     /* rows of A packed at once (A block, L2/L3); multiple of every MR */
#define CKG_NC 512     /* columns of B packed at once (KC x NC block, L2); multiple of every NR */
#define CKG_ALIGN 64
#define CKG_WS_PER_THREAD \
    ((size_t)(CKG_MC * CKG_KC + CKG_KC * CKG_NC) * sizeof(float) + CKG_ALIGN)

#endif
