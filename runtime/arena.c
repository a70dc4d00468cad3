/* ckc runtime: the model arena (see arena.h). */
#define _DEFAULT_SOURCE
#include "arena.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

static void put_canary(uint8_t *p) {
    const uint64_t v = CK_CANARY_VALUE;
    memcpy(p, &v, sizeof v);
}

int ck_arena_init(ck_arena *a, size_t size, const size_t *canary_offsets, size_t ncanaries,
                  char *err, int errlen) {
    if (err && errlen > 0) err[0] = 0;
    if (!a) return -1;
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < ncanaries; i++) {
        size_t off = canary_offsets[i];
        if (off % CK_CANARY_BYTES || off > size || size - off < CK_CANARY_BYTES) {
            if (err && errlen > 0)
                snprintf(err, (size_t)errlen, "arena: canary #%zu at offset %zu does not fit an "
                         "8-aligned word inside %zu bytes", i, off, size);
            return -1;
        }
    }
    if (ncanaries) {
        a->canaries = (size_t *)malloc(ncanaries * sizeof(size_t));
        if (!a->canaries) goto oom;
        memcpy(a->canaries, canary_offsets, ncanaries * sizeof(size_t));
        a->ncanaries = ncanaries;
    }
    if (size) {
        long page = sysconf(_SC_PAGESIZE);
        size_t pg = page > 0 ? (size_t)page : 4096;
        if (size > SIZE_MAX - pg) goto oom;
        size_t mapped = (size + pg - 1) / pg * pg;
        /* Anonymous pages are zeroed and page-aligned (hence 64-byte aligned). */
        void *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) goto oom;
        a->base = (uint8_t *)p;
        a->mapped = mapped;
        a->size = size;
    }
    for (size_t i = 0; i < a->ncanaries; i++) put_canary(a->base + a->canaries[i]);
    return 0;
oom:
    if (err && errlen > 0)
        snprintf(err, (size_t)errlen, "arena: cannot allocate %zu bytes: %s", size, strerror(errno ? errno : ENOMEM));
    ck_arena_free(a);
    return -1;
}

long ck_arena_check_canaries(const ck_arena *a) {
    if (!a) return -1;
    for (size_t i = 0; i < a->ncanaries; i++) {
        uint64_t v;
        memcpy(&v, a->base + a->canaries[i], sizeof v);
        if (v != CK_CANARY_VALUE) return (long)i;
    }
    return -1;
}

void ck_arena_clear(ck_arena *a) {
    if (!a || !a->base) return;
    memset(a->base, 0, a->size);
    for (size_t i = 0; i < a->ncanaries; i++) put_canary(a->base + a->canaries[i]);
}

void ck_arena_free(ck_arena *a) {
    if (!a) return;
    if (a->base) munmap(a->base, a->mapped);
    free(a->canaries);
    memset(a, 0, sizeof *a);
}
