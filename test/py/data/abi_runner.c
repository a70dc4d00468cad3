/* A model.so driven from plain C through runtime/ckc_abi.h (no Python):
 * greedy generation, printing the generated token ids on one line.
 *
 *   abi_runner MODEL.so WEIGHTS.bump STEPS TOKEN...
 *
 * Exit status 0 on success; on any error one line on stderr and status 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "ckc_abi.h"

#define LOAD(name) \
    typeof(&name) p_##name = (typeof(&name))dlsym(so, #name); \
    if (!p_##name) { fprintf(stderr, "%s: missing symbol %s\n", argv[1], #name); return 1; }

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL.so WEIGHTS.bump STEPS TOKEN...\n", argv[0]);
        return 1;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!so) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    LOAD(ckc_abi_version) LOAD(ckc_model_create) LOAD(ckc_model_destroy) LOAD(ckc_model_info)
    LOAD(ckc_prefill) LOAD(ckc_decode) LOAD(ckc_last_error)
    if (p_ckc_abi_version() != CKC_ABI_VERSION) {
        fprintf(stderr, "%s: ABI version %d, expected %d\n", argv[1], p_ckc_abi_version(), CKC_ABI_VERSION);
        return 1;
    }
    char err[512];
    ckc_model *m = p_ckc_model_create(argv[2], 1, err, sizeof err);
    if (!m) { fprintf(stderr, "%s\n", err); return 1; }
    ckc_info info;
    p_ckc_model_info(m, &info);
    int steps = atoi(argv[3]), n = argc - 4;
    int32_t *prompt = malloc(sizeof(int32_t) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)info.vocab);
    for (int i = 0; i < n; i++) prompt[i] = (int32_t)atoi(argv[4 + i]);
    int rc = p_ckc_prefill(m, prompt, n, logits);
    for (int s = 0; rc == CKC_OK && s < steps; s++) {
        int tok = argmax(logits, info.vocab);
        printf("%s%d", s ? " " : "", tok);
        if (s + 1 < steps) rc = p_ckc_decode(m, tok, logits);
    }
    printf("\n");
    if (rc != CKC_OK) fprintf(stderr, "%s\n", p_ckc_last_error(m));
    p_ckc_model_destroy(m);
    free(prompt);
    free(logits);
    return rc == CKC_OK ? 0 : 1;
}
