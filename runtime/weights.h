/* ckc runtime: the .bump weights file, mapped read-only with mmap.
 *
 * A .bump file is one flat, mmap-able file holding every weight of a model.
 * All integers are little-endian. Layout:
 *
 *   offset 0   header, 64 bytes
 *     [0,  8)  magic        "CKCBUMP1"
 *     [8, 12)  u32 version  CK_BUMP_VERSION (1)
 *     [12,16)  u32 align    data alignment in bytes (64)
 *     [16,24)  u64 count    number of tensors
 *     [24,32)  u64 total    file size in bytes
 *     [32,40)  u64 data     offset of the first tensor's data (a multiple of align)
 *     [40,48)  u64 strtab   size in bytes of the name table
 *     [48,56)  u64 checksum FNV-1a 64 of bytes [0, data) with this field read as 0
 *     [56,64)  u64 reserved 0
 *   offset 64  tensor table: count entries of 96 bytes each
 *     [0, 4)   u32 dtype    CK_DT_* below
 *     [4, 8)   u32 ndim     0..CK_BUMP_MAX_DIMS
 *     [8, 72)  u64 shape[8] dims (row-major, outermost first); unused dims 0
 *     [72,80)  u64 offset   absolute file offset of the data (a multiple of align)
 *     [80,88)  u64 nbytes   data size in bytes (consistent with dtype and shape)
 *     [88,92)  u32 name_off offset of the name in the name table
 *     [92,96)  u32 name_len length of the name in bytes (no terminating NUL); names
 *                           are printable ASCII (0x20..0x7e), unique, and stored
 *                           back to back in table order (name_off of entry i is the
 *                           sum of name_len of entries 0..i-1)
 *   offset 64 + 96*count   name table (strtab bytes), then zero padding up to `data`
 *   offset data            tensor data, each tensor at its own aligned offset, in
 *                          table order (offsets strictly increasing, never overlapping),
 *                          zero padding between them; the file ends at `total`.
 *
 * The order of the tensors is the writer's choice (the compiler lays them out in
 * the order the generated code reads them). ckc/weights.py writes and reads the same
 * format in Python and produces the same one-line error messages.
 *
 * Quantized dtypes are stored in ggml's block layouts along the last dimension,
 * byte for byte the GGUF tensor (layouts in kernels/include/ckernels.h and
 * kernels/internal/quant_k.h):
 *   q8_0: f16 scale + 32 x i8               = 34 bytes per 32 values
 *   q4_0: f16 scale + 16 bytes of nibbles   = 18 bytes per 32 values
 *   q4_1: f16 scale + f16 min + 16 bytes    = 20 bytes per 32 values
 *   q5_0 22, q5_1 24 bytes per 32 values; q2_k 84, q3_k 110, q4_k 144,
 *   q5_k 176, q6_k 210 bytes per 256 values; bf16 2 bytes per value.
 * <fmt>r8 (q8_0r8 .. q5_1r8): a 2-D [N, K] weight of that block format in the
 * layout ck_qpack_<fmt> writes (groups of 8 rows, each block column of a group
 * interleaved; rows >= N of the last group zero): ceil(N/8) * 8 * row bytes.
 *
 * f32p32: a 2-D f32 weight W[N, K] (shape as in the model, [out, in]) stored in
 * the layout ck_gemm_packed_f32 reads (ckernels.h, ck_gemm_pack_f32): panels of
 * 32 rows, k-major, Wp[q][k][j] = W[32q + j][k], zero rows padding N up to a
 * multiple of 32; ceil(N/32) * 32 * K * 4 bytes. Only 2-D shapes.
 */
#ifndef CK_RUNTIME_WEIGHTS_H
#define CK_RUNTIME_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CK_BUMP_MAGIC "CKCBUMP1"
#define CK_BUMP_VERSION 1
#define CK_BUMP_ALIGN 64
#define CK_BUMP_HEADER_BYTES 64
#define CK_BUMP_ENTRY_BYTES 96
#define CK_BUMP_MAX_DIMS 8

/* Element types. Codes are part of the file format: never renumber. */
enum {
    CK_DT_F32 = 0,
    CK_DT_F16 = 1,
    CK_DT_Q8_0 = 2,
    CK_DT_Q4_0 = 3,
    CK_DT_Q4_1 = 4,
    CK_DT_BF16 = 5,
    CK_DT_F32P32 = 6,   /* f32 [N, K] prepacked for ck_gemm_packed_f32 (see above) */
    CK_DT_Q5_0 = 7,
    CK_DT_Q5_1 = 8,
    CK_DT_Q2_K = 9,
    CK_DT_Q3_K = 10,
    CK_DT_Q4_K = 11,
    CK_DT_Q5_K = 12,
    CK_DT_Q6_K = 13,
    CK_DT_Q8_0R8 = 14,  /* [N, K] repacked by ck_qpack_q8_0 (see above) */
    CK_DT_Q4_0R8 = 15,
    CK_DT_Q4_1R8 = 16,
    CK_DT_Q5_0R8 = 17,
    CK_DT_Q5_1R8 = 18,
    CK_DT_COUNT
};

/* Error codes of ck_weights_open (0 = success). */
enum {
    CK_WEIGHTS_OK = 0,
    CK_WEIGHTS_ENOENT = 1,    /* missing / unreadable file */
    CK_WEIGHTS_EMAGIC = 2,    /* not a .bump file, or an unsupported version */
    CK_WEIGHTS_ETRUNC = 3,    /* the file ends before the header, table or a tensor */
    CK_WEIGHTS_EALIGN = 4,    /* alignment field or a tensor offset is misaligned */
    CK_WEIGHTS_ECORRUPT = 5,  /* checksum mismatch or an inconsistent table entry */
    CK_WEIGHTS_ENOMEM = 6,
};

typedef struct ck_weights ck_weights;

/* One tensor of an open file. Pointers stay valid until ck_weights_close. */
typedef struct ck_tensor_info {
    const char *name;      /* NUL-terminated */
    int dtype;             /* CK_DT_* */
    int ndim;
    int64_t shape[CK_BUMP_MAX_DIMS];
    uint64_t offset;       /* file offset of the data */
    uint64_t nbytes;
    const void *data;      /* inside the read-only mapping, CK_BUMP_ALIGN-aligned */
} ck_tensor_info;

/* Maps `path` read-only and validates header, checksum and table. On success
 * returns 0 and sets *out; on failure returns a CK_WEIGHTS_E* code, sets *out to
 * NULL and writes one line ("<path>: <what is wrong>") into err (if errlen > 0).
 * Never reads outside the file, whatever its contents. */
int ck_weights_open(const char *path, ck_weights **out, char *err, int errlen);

/* Unmaps and frees; NULL is allowed. */
void ck_weights_close(ck_weights *w);

int ck_weights_count(const ck_weights *w);
/* Index of the tensor named `name`, or -1. */
int ck_weights_find(const ck_weights *w, const char *name);
/* Info for tensor `index` (0 <= index < count): NULL if out of range. */
const ck_tensor_info *ck_weights_tensor(const ck_weights *w, int index);
/* Total mapped bytes (the file size). */
uint64_t ck_weights_size(const ck_weights *w);
const char *ck_weights_path(const ck_weights *w);

/* For generated code: the data of tensor `name`, checked to have `dtype`, `ndim`
 * dims and exactly `shape`. Returns NULL with one line in err on any mismatch,
 * e.g. "model.bump: tensor 'blk.0.attn_q.weight' has shape [64, 32], expected [64, 64]". */
const void *ck_weights_expect(const ck_weights *w, const char *name, int dtype, int ndim,
                              const int64_t *shape, char *err, int errlen);

/* Bytes taken by `n` values of `dtype` in one row (n a multiple of the block for
 * quantized types); 0 if dtype is unknown or n does not fit its blocks. */
uint64_t ck_dtype_row_bytes(int dtype, uint64_t n);
/* "f32", "f16", "q8_0", ... or "?" */
const char *ck_dtype_name(int dtype);

/* FNV-1a 64 (the header checksum), exposed for tests. */
uint64_t ck_fnv1a64(const void *data, size_t n, uint64_t h);
#define CK_FNV1A64_INIT 0xcbf29ce484222325ULL

#ifdef __cplusplus
}
#endif
#endif /* CK_RUNTIME_WEIGHTS_H */
