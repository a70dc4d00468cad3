/* Blocking constants shared by the GEMM variants and the workspace query.
 * (Internal: not part of the public header.) */
#ifndef CK_GEMM_INTERNAL_H
#define CK_GEMM_INTERNAL_H

#define CKG_KC 256     /* k block: an MR x KC micro-panel of A stays in L1 */
#define CKG_MC 768     /* rows of A packed at once (A block, shared by the threads); multiple of every MR */
#define CKG_NC 512     /* widest column chunk of B packed at once (KC x NC block, L2); multiple of every NR */
#define CKG_PW 32      /* column panel width of prepacked weights (ck_gemm_pack_f32); multiple of every NR */
#define CKG_ALIGN 64
/* workspace: one shared A block, then one B block per thread */
#define CKG_WS_A ((size_t)CKG_MC * CKG_KC * sizeof(float))
#define CKG_WS_B ((size_t)CKG_KC * CKG_NC * sizeof(float))

#endif
