/* ckc: recording every kernel call's outputs (`ckc parity`), for a model.so
 * whose model.c came from lower-to-c{record} and which is built with
 * -DCKC_RECORD. Included once, by the runtime compiled into that model.so
 * (runtime/library/ckc_runtime.c).
 *
 * fn(call K, output i, layer or -1, data, bytes, user) after every kernel
 * call, on the thread that runs the compute function (the generated code
 * calls ckc_rt_record with the pointer the kernel wrote through and the bytes
 * it wrote); fn(-1, n, pos, NULL, 0, user) before every compute function run
 * (the runtime calls CKC_RECORD_RUN). One recorder per library; ckc/parity/
 * record.py installs it with ckc_record_set and copies the bytes out. */
#ifndef CKC_RECORD_H
#define CKC_RECORD_H

#include <stdint.h>

typedef void (*ckc_record_fn)(int call, int out, int layer, const void *data, int64_t bytes, void *user);
static ckc_record_fn rec_fn;
static void *rec_user;

void ckc_record_set(ckc_record_fn fn, void *user) {
    rec_fn = fn;
    rec_user = user;
}

void ckc_rt_record(int k, int i, int layer, const void *p, int64_t bytes) {
    if (rec_fn) rec_fn(k, i, layer, p, bytes, rec_user);
}

#define CKC_RECORD_RUN(n, pos) \
    do {                       \
        if (rec_fn) rec_fn(-1, (n), (pos), NULL, 0, rec_user); \
    } while (0)

#endif /* CKC_RECORD_H */
