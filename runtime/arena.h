/* ckc runtime: the one memory arena of a compiled model.
 *
 * plan-memory gives every buffer of a model (KV cache, activations, scratch) a byte
 * offset in one arena, 64-byte aligned, and may leave canary words between regions.
 * The generated code creates the arena once (ck_arena_init), addresses buffers as
 * base + offset, and in debug builds checks the canaries after each call
 * (ck_arena_check_canaries) so an out-of-bounds kernel write is caught and named.
 *
 * The struct is public so generated code can embed it in its model struct.
 */
#ifndef CK_RUNTIME_ARENA_H
#define CK_RUNTIME_ARENA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CK_ARENA_ALIGN 64
/* A canary is one 8-byte word with this value, at an 8-byte-aligned offset. */
#define CK_CANARY_BYTES 8
#define CK_CANARY_VALUE 0xC4C4CA7A4E5A11EDULL

typedef struct ck_arena {
    uint8_t *base;            /* CK_ARENA_ALIGN-aligned (page-aligned in practice), zeroed */
    size_t size;              /* bytes usable from base */
    size_t mapped;            /* bytes mapped (size rounded up to pages); 0 if none */
    size_t *canaries;         /* owned copy of the canary offsets */
    size_t ncanaries;
} ck_arena;

/* Maps `size` zeroed bytes (size 0 is allowed: base stays NULL) and writes a canary
 * word at each of the `ncanaries` byte offsets (each must be a multiple of 8 with
 * offset + 8 <= size). Returns 0, or -1 with one line in err (bad offset, out of
 * memory); on failure the arena is left empty (ck_arena_free is still safe). */
int ck_arena_init(ck_arena *a, size_t size, const size_t *canary_offsets, size_t ncanaries,
                  char *err, int errlen);

/* Index of the first canary whose word was overwritten, or -1 if all are intact. */
long ck_arena_check_canaries(const ck_arena *a);

/* Re-zeroes the whole arena and rewrites the canaries (e.g. on reset in debug runs). */
void ck_arena_clear(ck_arena *a);

/* Unmaps; the struct is zeroed. Safe on a zeroed or already freed arena. */
void ck_arena_free(ck_arena *a);

#ifdef __cplusplus
}
#endif
#endif /* CK_RUNTIME_ARENA_H */
