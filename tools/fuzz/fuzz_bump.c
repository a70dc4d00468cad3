/* libFuzzer target: the C .bump reader (runtime/weights.c), as model.so opens it.
 *
 * The input is written to a memfd and opened by its /proc path, so the real
 * open + fstat + mmap path runs. The reader must either accept the file (then
 * every tensor's bytes are read and looked up by name) or reject it with a
 * one-line error naming the file; anything else aborts (a finding). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.bump", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    if (size && pwrite(fd, data, size, 0) != (ssize_t)size) abort();

    ck_weights *w = NULL;
    char err[512];
    int rc = ck_weights_open(path, &w, err, sizeof err);
    if (rc != CK_WEIGHTS_OK) {
        if (w) abort();                                   /* no handle on failure */
        if (strncmp(err, path, strlen(path)) != 0) abort(); /* names the file */
        if (strlen(err) <= strlen(path) + 2) abort();      /* says what was wrong */
        if (strchr(err, '\n')) abort();                    /* one line */
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int i = 0; i < ck_weights_count(w); i++) {
        const ck_tensor_info *t = ck_weights_tensor(w, i);
        const uint8_t *p = (const uint8_t *)t->data;
        for (uint64_t k = 0; k < t->nbytes; k++) sink ^= p[k]; /* in bounds, or ASan says so */
        if (ck_weights_find(w, t->name) != i) abort();
        if (!ck_weights_expect(w, t->name, t->dtype, t->ndim, t->shape, err, sizeof err)) abort();
    }
    (void)sink;
    ck_weights_close(w);
    return 0;
}
