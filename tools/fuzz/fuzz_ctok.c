/* libFuzzer target: the C tokenizer core (ckc/tokenizer/ctok.c).
 *
 * A vocabulary file reaches ctok through ctok_gguf_strings (GGUF string arrays
 * split in C) and ctok_new/ctok_set_merges (tokens and merges of any bytes);
 * the text to encode is any bytes. The input is split into lines:
 *   byte 0: model flags, byte 1: pre-tokenizer and options, then lines
 *   "M<left> <right>"  a merge,  "X<text>" the text to encode,
 *   "<digit><text>"    a token of that type (1 normal .. 6 byte), other lines normal tokens.
 * Every call must stay in bounds (ASan/UBSan) and decode(encode(x)) must not fail. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctok ctok;
ctok *ctok_new(int32_t n, int flags, const char *blob, const int64_t *start, const int64_t *len,
               const int32_t *types, const float *scores, const uint8_t *attrs);
void ctok_free(ctok *t);
void ctok_set_special(ctok *t, int32_t bos, int32_t eos, int32_t unk, int add_bos, int add_eos);
int64_t ctok_set_merges(ctok *t, int64_t m, const char *blob, const int64_t *start, const int64_t *len);
int ctok_set_pretok(ctok *t, const int32_t *spec, int32_t nspec);
int ctok_build_specials(ctok *t);
int64_t ctok_encode(ctok *t, const char *text, int64_t n, int add_special, int parse_special);
void ctok_ids(const ctok *t, int32_t *dst);
int64_t ctok_decode(ctok *t, const int32_t *ids, int64_t n, int skip_special, int *state);
int64_t ctok_utf8_ready(const char *buf, int64_t n);
int64_t ctok_gguf_strings(const uint8_t *data, int64_t size, int64_t off, int64_t count, int64_t *start, int64_t *len);
int64_t ctok_token_text(const ctok *t, int32_t id, const char **ptr);
int64_t ctok_piece(const ctok *t, int32_t id, const char **ptr);

/* the pre-tokenizer stage lists the Python binding passes (kind, ndig, marks, ws, neg, lo, hi, cats, nranges, ranges) */
static const int32_t PT_NONE[] = {0};
static const int32_t PT_GPT2[] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
static const int32_t PT_LLAMA3[] = {2, 3, 0, 0, 0, 0, 0, 0, 0};
static const int32_t PT_DIGITS[] = {3, 0, 0, 0, 0, 1, 3, 2, 0, 3, 0, 0, 1, 0, 0, 0, 0, 1, 0x30, 0x39};
static const int32_t PT_WS[] = {4, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0};
static const struct { const int32_t *spec; int32_t n; } STAGES[] = {
    {PT_NONE, 0}, {PT_GPT2, 9}, {PT_LLAMA3, 9}, {PT_DIGITS, 20}, {PT_WS, 18},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the GGUF string-array splitter on the raw bytes, as read_gguf_metadata calls it */
    if (size >= 2) {
        int64_t count = data[1] % 16, st[16], ln[16];
        int64_t end = ctok_gguf_strings(data, (int64_t)size, 2, count, st, ln);
        if (end > (int64_t)size) abort();
        for (int64_t i = 0; end >= 0 && i < count; i++)
            if (st[i] < 0 || ln[i] < 0 || st[i] + ln[i] > (int64_t)size) abort();
    }
    if (size < 2) return 0;
    int flags = data[0] & 127, opt = data[1];
    const char *p = (const char *)data + 2, *e = (const char *)data + size;
    size_t cap = size + 1;
    int64_t *ts = malloc(cap * sizeof *ts), *tl = malloc(cap * sizeof *tl);
    int64_t *ms = malloc(cap * sizeof *ms), *ml = malloc(cap * sizeof *ml);
    int32_t *ty = malloc(cap * sizeof *ty);
    float *sc = malloc(cap * sizeof *sc);
    uint8_t *at = malloc(cap);
    int32_t n = 0, m = 0;
    const char *text = "", *blob = (const char *)data;
    int64_t ntext = 0;
    while (p < e) {
        const char *q = memchr(p, '\n', (size_t)(e - p));
        if (!q) q = e;
        if (p < q && *p == 'M') { ms[m] = p + 1 - blob; ml[m] = q - p - 1; m++; }
        else if (p < q && *p == 'X') { text = p + 1; ntext = q - p - 1; }
        else if (p < q && *p >= '1' && *p <= '6') {
            ty[n] = *p - '0'; ts[n] = p + 1 - blob; tl[n] = q - p - 1;
            sc[n] = -(float)n; at[n] = (uint8_t)(n % 4); n++;
        } else { ty[n] = 1; ts[n] = p - blob; tl[n] = q - p; sc[n] = -(float)n; at[n] = 0; n++; }
        p = q + 1;
    }
    ctok *t = ctok_new(n, flags, blob, ts, tl, (opt & 8) ? ty : NULL, (opt & 16) ? sc : NULL, (opt & 32) ? at : NULL);
    if (!t) abort(); /* only out of memory may fail */
    if (m && ctok_set_merges(t, m, blob, ms, ml) < 0) abort();
    int s = opt % 5;
    if (ctok_set_pretok(t, STAGES[s].spec, STAGES[s].n) != 0) abort();
    if (ctok_build_specials(t) != 0) abort();
    ctok_set_special(t, n ? 0 : -1, n > 1 ? 1 : -1, n > 2 ? 2 : -1, opt & 64, opt & 128);
    int64_t k = ctok_encode(t, text, ntext, (opt >> 6) & 1, (opt >> 7) & 1);
    if (k >= 0) {
        int32_t *ids = malloc(((size_t)k + 1) * sizeof *ids);
        ctok_ids(t, ids);
        for (int64_t i = 0; i < k; i++) {
            if (ids[i] < 0 || ids[i] >= n) abort(); /* every id is a token */
            const char *ptr;
            ctok_token_text(t, ids[i], &ptr);
            ctok_piece(t, ids[i], &ptr);
        }
        int state = 0;
        if (ctok_decode(t, ids, k, opt & 1, &state) < 0) abort();
        free(ids);
    }
    ctok_utf8_ready(text, ntext);
    ctok_free(t);
    free(ts); free(tl); free(ms); free(ml); free(ty); free(sc); free(at);
    return 0;
}
