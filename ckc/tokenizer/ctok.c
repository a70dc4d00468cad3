/* ckc tokenizer core: byte-level BPE, SentencePiece-style BPE, special tokens,
 * hand-written pre-tokenizer matchers, decoding.
 *
 * Encoding of one text:
 *   1. special/added tokens are cut out of the text (leftmost-longest match);
 *      control tokens only when parse_special, user-defined tokens always;
 *   2. each remaining fragment is encoded by its model:
 *      - BPE: the fragment's code points are split into words by the
 *        pre-tokenizer stages (each stage re-splits every piece of the one
 *        before, unmatched text stays a piece: HF's Split(Isolated)); each
 *        word is merged by merge rank (a binary heap over a linked list of
 *        symbols; short words use a linear scan with the same result);
 *        byte-level models start from one symbol per byte, raw models
 *        (Gemma 4 style) from one symbol per UTF-8 character with byte fallback;
 *      - SPM: ' ' -> U+2581 (with a dummy prefix), then pairs are merged by the
 *        score of the merged piece (highest first), then byte fallback.
 * Invalid UTF-8 never stops encoding: each invalid byte is its own symbol of
 * no Unicode category and is encoded through the byte tokens, so
 * decode(encode(x)) == x holds for any byte string the vocabulary can spell.
 *
 * Not thread-safe per handle (scratch and word cache live in the handle);
 * the Python binding serialises calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const uint16_t ctok_ucd_index[];
extern const uint8_t ctok_ucd_blocks[];

#define CAT_L 1
#define CAT_N 2
#define CAT_P 4
#define CAT_S 8
#define CAT_M 16
#define CAT_WS 32
#define INVALID_BASE 0x110000u

/* token types (GGUF tokenizer.ggml.token_type values) */
enum { T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER = 4, T_UNUSED = 5, T_BYTE = 6 };

/* model flags */
#define F_SPM 1            /* SentencePiece score-based BPE (GGUF model "llama") */
#define F_BYTE_LEVEL 2     /* GPT-2 byte-to-unicode alphabet */
#define F_ESCAPE_WS 4      /* ' ' -> U+2581 before encoding */
#define F_SPACE_PREFIX 8   /* SPM dummy prefix: ' ' before the first text / after a special */
#define F_BYTE_FALLBACK 16 /* unknown characters become <0xXX> tokens */
#define F_IGNORE_MERGES 32 /* a word that is a whole token is emitted as is */
#define F_NL_WORDS 64      /* Gemma 4: a word of only '\n' that is a token is emitted as is */

/* token attributes */
#define A_LSTRIP 1
#define A_RSTRIP 2

/* pre-tokenizer stages */
enum { PT_GPT2 = 1, PT_LLAMA3 = 2, PT_CLASS = 3, PT_WS_END = 4, PT_NEWLINES = 5 };

typedef struct {
    int kind;
    int ndig, marks;                      /* PT_LLAMA3 */
    int ws_prefix, negate, min, max;      /* PT_CLASS */
    unsigned catmask;
    int nranges;
    uint32_t *ranges;                     /* lo, hi pairs */
} stage;

typedef struct {
    int32_t *slot;
    uint32_t *hash;
    size_t mask;
    const char *blob;
    const int64_t *off;
} strtab;

/* word cache: 2-way sets of 64-byte entries (the newest word of a set first), 8 MiB,
 * allocated on the first encode */
#ifndef CACHE_SLOTS /* the fuzz build makes it small: 8 MiB zeroed per tokenizer is most of its run time */
#define CACHE_SLOTS (1u << 17)
#endif
#define CACHE_KEY 22
#define CACHE_IDS 9
typedef struct {
    uint32_t h;
    uint8_t len, nids;
    char key[CACHE_KEY];
    int32_t ids[CACHE_IDS];
} centry;
_Static_assert(sizeof(centry) == 64, "a cache entry is one cache line");

static centry *cache_get(centry *cache, uint64_t h, const uint8_t *w, size_t n) {
    centry *set = &cache[(h & (CACHE_SLOTS / 2 - 1)) * 2];
    uint32_t h32 = (uint32_t)(h >> 32) | 1u;
    for (int k = 0; k < 2; k++)
        if (set[k].h == h32 && set[k].len == n && memcmp(set[k].key, w, n) == 0) return &set[k];
    return NULL;
}

static void cache_put(centry *cache, uint64_t h, const uint8_t *w, size_t n, const int32_t *ids, size_t cnt) {
    centry *set = &cache[(h & (CACHE_SLOTS / 2 - 1)) * 2];
    set[1] = set[0];
    set[0].h = (uint32_t)(h >> 32) | 1u; set[0].len = (uint8_t)n; set[0].nids = (uint8_t)cnt;
    memcpy(set[0].key, w, n);
    memcpy(set[0].ids, ids, cnt * sizeof(int32_t));
}

typedef struct { int32_t rank, pos, lid, rid, res; } bpe_ent;
typedef struct { uint64_t key; int32_t rank, res; } mslot;
typedef struct { float score; int32_t left, right, size; } spm_ent;

typedef struct ctok {
    int32_t n;
    int flags;
    int32_t bos, eos, unk;
    int add_bos, add_eos;
    char *text; int64_t *text_off;      /* original token texts */
    char *piece; int64_t *piece_off;    /* bytes each token decodes to */
    uint8_t *type, *attr;
    float *score;
    strtab by_text, by_piece, spm;
    int32_t byte_tok[256];
    /* merges: (left id, right id) -> rank, result id (one cache line holds 4) */
    mslot *merge; size_t mmask;
    stage *stages; int nstages;
    /* special tokens matched in text, grouped by first byte, longest first */
    int32_t *sp; int32_t sp_start[257], n_sp, n_user;
    int spm_split;     /* SPM text may be cut before each "x▁" */
    centry *cache;
    /* scratch */
    int32_t *out; size_t nout, capout;
    uint32_t *cps, *offs; uint8_t *cats; size_t capcp;
    char *buf; size_t capbuf, nbuf;
    int32_t *wid, *wprv, *wnxt; size_t capw;
    void *heap; size_t capheap;
    char *dec; size_t capdec;
    const char *frag;   /* bytes of the fragment being split */
    int oom;
    char err[256];
} ctok;

/* ------------------------------------------------------------------ utils */

static void *grow(void *p, size_t *cap, size_t need, size_t esz, int *oom) {
    if (need <= *cap) return p;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(p, nc * esz);
    if (!q) { *oom = 1; return NULL; }
    *cap = nc;
    return q;
}

/* The one binary heap of the BPE and SPM merge loops: *hn entries of esz bytes
 * in t->heap (one word is encoded at a time, so both share the buffer), the
 * entry `before` all others on top. Ties in `before` never reorder. Inlined
 * with constant esz and before, so each use compiles to a typed heap. */
typedef int (*heap_before_fn)(const void *a, const void *b);

static inline __attribute__((always_inline)) int heap_push(ctok *t, size_t *hn, const void *x, size_t esz,
                                                           heap_before_fn before) {
    uint8_t *h = grow(t->heap, &t->capheap, (*hn + 1) * esz, 1, &t->oom);
    if (!h) return -1;
    t->heap = h;
    size_t i = (*hn)++;
    while (i) {
        size_t pa = (i - 1) / 2;
        if (!before(x, h + pa * esz)) break;
        memcpy(h + i * esz, h + pa * esz, esz);
        i = pa;
    }
    memcpy(h + i * esz, x, esz);
    return 0;
}

/* Removes the top entry into *top (*hn > 0). */
static inline __attribute__((always_inline)) void heap_pop(ctok *t, size_t *hn, void *top, size_t esz,
                                                           heap_before_fn before) {
    uint8_t *h = t->heap;
    memcpy(top, h, esz);
    const size_t n = --(*hn);
    const uint8_t *x = h + n * esz;   /* the last entry sifts down from the root; slot n is never written */
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const uint8_t *best = x;
        if (l < n && before(h + l * esz, best)) { m = l; best = h + l * esz; }
        if (r < n && before(h + r * esz, best)) { m = r; best = h + r * esz; }
        if (m == i) break;
        memcpy(h + i * esz, h + m * esz, esz);
        i = m;
    }
    if (n) memcpy(h + i * esz, x, esz);
}

static inline uint64_t hbytes(const void *data, size_t n) {
    const uint8_t *s = (const uint8_t *)data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v; memcpy(&v, s, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull; h ^= h >> 32;
        s += 8; n -= 8;
    }
    uint64_t v = 0; memcpy(&v, s, n);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull; h ^= h >> 29;
    h *= 0x9E3779B97F4A7C15ull; h ^= h >> 32;
    return h;
}

static int strtab_init(strtab *t, size_t n, const char *blob, const int64_t *off) {
    size_t cap = 16;
    while (cap < 2 * n + 16) cap *= 2;
    t->slot = malloc(cap * sizeof *t->slot);
    t->hash = malloc(cap * sizeof *t->hash);
    if (!t->slot || !t->hash) return -1;
    memset(t->slot, 0xff, cap * sizeof *t->slot);
    t->mask = cap - 1; t->blob = blob; t->off = off;
    return 0;
}

static int32_t strtab_find(const strtab *t, const void *s, size_t n) {
    if (!t->slot) return -1;
    uint64_t h = hbytes(s, n);
    size_t i = h & t->mask;
    for (;;) {
        int32_t id = t->slot[i];
        if (id < 0) return -1;
        if (t->hash[i] == (uint32_t)(h >> 32) && (size_t)(t->off[id + 1] - t->off[id]) == n &&
            memcmp(t->blob + t->off[id], s, n) == 0)
            return id;
        i = (i + 1) & t->mask;
    }
}

/* later duplicates win (as a dict built in token order) */
static void strtab_put(strtab *t, int32_t id) {
    const char *s = t->blob + t->off[id];
    size_t n = (size_t)(t->off[id + 1] - t->off[id]);
    uint64_t h = hbytes(s, n);
    size_t i = h & t->mask;
    for (;;) {
        int32_t o = t->slot[i];
        if (o < 0) break;
        if (t->hash[i] == (uint32_t)(h >> 32) && (size_t)(t->off[o + 1] - t->off[o]) == n &&
            memcmp(t->blob + t->off[o], s, n) == 0)
            break;
        i = (i + 1) & t->mask;
    }
    t->slot[i] = id; t->hash[i] = (uint32_t)(h >> 32);
}

static inline uint32_t utf8_next(const uint8_t *s, size_t n, size_t i, int *adv) {
    uint8_t c = s[i];
    if (c < 0x80) { *adv = 1; return c; }
    if (c >= 0xC2 && c <= 0xDF) {
        if (i + 1 < n && (s[i + 1] & 0xC0) == 0x80) { *adv = 2; return ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F); }
    } else if (c >= 0xE0 && c <= 0xEF) {
        if (i + 2 < n && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80) {
            uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
            if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) { *adv = 3; return cp; }
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        if (i + 3 < n && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80 && (s[i + 3] & 0xC0) == 0x80) {
            uint32_t cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                          ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
            if (cp >= 0x10000 && cp <= 0x10FFFF) { *adv = 4; return cp; }
        }
    }
    *adv = 1;
    return INVALID_BASE | c;
}

static inline int is_lower_bar(const uint8_t *s, size_t j) {
    return s[j] == 0xE2 && s[j + 1] == 0x96 && s[j + 2] == 0x81;
}

static inline unsigned ucat(uint32_t cp) {
    if (cp >= 0x110000u) return 0;
    return ctok_ucd_blocks[((uint32_t)ctok_ucd_index[cp >> 8] << 8) | (cp & 0xFF)];
}

/* GPT-2 byte <-> unicode alphabet */
static void byte_alphabet(uint32_t b2u[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) b2u[b] = (uint32_t)b;
        else b2u[b] = 256u + (uint32_t)n++;
    }
}

static int push(ctok *t, int32_t id) {
    if (t->nout == t->capout) {
        int32_t *p = grow(t->out, &t->capout, t->nout + 1, sizeof *t->out, &t->oom);
        if (!p) return -1;
        t->out = p;
    }
    t->out[t->nout++] = id;
    return 0;
}

/* ------------------------------------------------------------------ setup */

const char *ctok_error(ctok *t) { return t ? t->err : "out of memory"; }

void ctok_free(ctok *t) {
    if (!t) return;
    free(t->text); free(t->text_off); free(t->piece); free(t->piece_off);
    free(t->type); free(t->attr); free(t->score);
    free(t->by_text.slot); free(t->by_text.hash); free(t->by_piece.slot); free(t->by_piece.hash);
    free(t->spm.slot); free(t->spm.hash);
    free(t->merge);
    for (int i = 0; i < t->nstages; i++) free(t->stages[i].ranges);
    free(t->stages); free(t->sp); free(t->cache);
    free(t->out); free(t->cps); free(t->offs); free(t->cats); free(t->buf);
    free(t->wid); free(t->wprv); free(t->wnxt); free(t->heap); free(t->dec);
    free(t);
}

/* Create a tokenizer over n tokens. Token i's text is blob[start[i] .. start[i]+len[i]).
 * types may be NULL (all normal), scores may be NULL, attrs may be NULL. */
ctok *ctok_new(int32_t n, int flags, const char *blob, const int64_t *start, const int64_t *len,
               const int32_t *types, const float *scores, const uint8_t *attrs) {
    ctok *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n = n; t->flags = flags; t->bos = t->eos = t->unk = -1;
    int64_t total = 0;
    for (int32_t i = 0; i < n; i++) total += len[i];
    t->text = malloc((size_t)total + 1);
    t->text_off = malloc(((size_t)n + 1) * sizeof(int64_t));
    t->type = malloc((size_t)n + 1);
    t->attr = calloc((size_t)n + 1, 1);
    t->score = calloc((size_t)n + 1, sizeof(float));
    if (!t->text || !t->text_off || !t->type || !t->attr || !t->score) goto oom;
    int64_t o = 0;
    for (int32_t i = 0; i < n; i++) {
        t->text_off[i] = o;
        memcpy(t->text + o, blob + start[i], (size_t)len[i]);
        o += len[i];
        int ty = types ? types[i] : T_NORMAL;
        if (ty < 1 || ty > 6) ty = T_NORMAL;
        t->type[i] = (uint8_t)ty;
        if (scores) t->score[i] = scores[i];
        if (attrs) t->attr[i] = attrs[i];
    }
    t->text_off[n] = o;

    /* decoded pieces: at most the text length (byte-level decoding shrinks) */
    t->piece = malloc((size_t)total + 1);
    t->piece_off = malloc(((size_t)n + 1) * sizeof(int64_t));
    if (!t->piece || !t->piece_off) goto oom;
    uint32_t b2u[256]; byte_alphabet(b2u);
    int16_t u2b[512]; for (int i = 0; i < 512; i++) u2b[i] = -1;
    for (int b = 0; b < 256; b++) u2b[b2u[b]] = (int16_t)b;
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    o = 0;
    for (int32_t i = 0; i < n; i++) {
        const uint8_t *s = (const uint8_t *)t->text + t->text_off[i];
        size_t m = (size_t)(t->text_off[i + 1] - t->text_off[i]);
        char *d = t->piece + o;
        size_t k = 0;
        int ty = t->type[i];
        if (ty == T_BYTE && m == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>') {
            unsigned v = 0;
            for (int j = 3; j < 5; j++) {
                int c = s[j];
                v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
            }
            d[k++] = (char)(v & 0xFF);
            if (!(flags & F_BYTE_LEVEL) && t->byte_tok[v & 0xFF] < 0) t->byte_tok[v & 0xFF] = i;
        } else if (ty == T_NORMAL && (flags & F_BYTE_LEVEL)) {
            size_t j = 0; int ok = 1;
            while (j < m) {
                int adv; uint32_t cp = utf8_next(s, m, j, &adv);
                if (cp < 512 && u2b[cp] >= 0) d[k++] = (char)u2b[cp];
                else { ok = 0; break; }
                j += (size_t)adv;
            }
            if (!ok) { memcpy(d, s, m); k = m; }
            else if (k == 1 && t->byte_tok[(uint8_t)d[0]] < 0) t->byte_tok[(uint8_t)d[0]] = i;
        } else if (ty == T_NORMAL && (flags & (F_SPM | F_ESCAPE_WS))) {
            size_t j = 0;
            while (j < m) {
                if (j + 3 <= m && s[j] == 0xE2 && s[j + 1] == 0x96 && s[j + 2] == 0x81) { d[k++] = ' '; j += 3; }
                else d[k++] = (char)s[j++];
            }
        } else if (ty == T_UNUSED) {
            k = 0;
        } else {
            memcpy(d, s, m); k = m;
        }
        t->piece_off[i] = o;
        o += (int64_t)k;
    }
    t->piece_off[n] = o;

    if (strtab_init(&t->by_text, (size_t)n, t->text, t->text_off)) goto oom;
    if (strtab_init(&t->by_piece, (size_t)n, t->piece, t->piece_off)) goto oom;
    if (strtab_init(&t->spm, (size_t)n, t->text, t->text_off)) goto oom;
    for (int32_t i = 0; i < n; i++) {
        strtab_put(&t->by_text, i);
        if (t->type[i] == T_NORMAL) strtab_put(&t->by_piece, i);
        if (t->type[i] == T_NORMAL || t->type[i] == T_USER) strtab_put(&t->spm, i);
    }
    if (flags & F_SPM) {
        t->spm_split = 1;
        for (int32_t i = 0; i < n && t->spm_split; i++) {
            if (t->type[i] != T_NORMAL && t->type[i] != T_USER) continue;
            const uint8_t *p = (const uint8_t *)t->text + t->text_off[i];
            size_t m = (size_t)(t->text_off[i + 1] - t->text_off[i]);
            for (size_t j = 1; j + 3 <= m; j++)
                if (is_lower_bar(p, j) && !(j >= 3 && is_lower_bar(p, j - 3))) { t->spm_split = 0; break; }
        }
    }
    /* byte symbols for SPM byte fallback when no BYTE types were given */
    if (!(flags & F_BYTE_LEVEL)) {
        for (int b = 0; b < 256; b++) {
            if (t->byte_tok[b] >= 0) continue;
            char nm[7]; snprintf(nm, sizeof nm, "<0x%02X>", b);
            t->byte_tok[b] = strtab_find(&t->by_text, nm, 6);
        }
    }
    return t;
oom:
    ctok_free(t);
    return NULL;
}

void ctok_set_special(ctok *t, int32_t bos, int32_t eos, int32_t unk, int add_bos, int add_eos) {
    t->bos = (bos >= 0 && bos < t->n) ? bos : -1;
    t->eos = (eos >= 0 && eos < t->n) ? eos : -1;
    t->unk = (unk >= 0 && unk < t->n) ? unk : -1;
    t->add_bos = add_bos && t->bos >= 0;
    t->add_eos = add_eos && t->eos >= 0;
}

/* merges: each is "left right" (split at the first ' ' after position 0), in rank order.
 * Merges whose parts or result are not tokens are skipped; returns the number kept. */
int64_t ctok_set_merges(ctok *t, int64_t m, const char *blob, const int64_t *start, const int64_t *len) {
    size_t cap = 16;
    while (cap < 2 * (size_t)m + 16) cap *= 2;
    free(t->merge);
    t->merge = malloc(cap * sizeof *t->merge);
    if (!t->merge) { snprintf(t->err, sizeof t->err, "out of memory"); return -1; }
    memset(t->merge, 0xff, cap * sizeof *t->merge);
    t->mmask = cap - 1;
    char *tmp = NULL; size_t captmp = 0;
    int64_t kept = 0;
    for (int64_t r = 0; r < m; r++) {
        const char *s = blob + start[r];
        size_t n = (size_t)len[r], sp = 0;
        for (size_t j = 1; j < n; j++) if (s[j] == ' ') { sp = j; break; }
        if (!sp) continue;
        int32_t a = strtab_find(&t->by_text, s, sp);
        int32_t b = strtab_find(&t->by_text, s + sp + 1, n - sp - 1);
        if (a < 0 || b < 0) continue;
        char *p = grow(tmp, &captmp, n, 1, &t->oom);
        if (!p) { free(tmp); snprintf(t->err, sizeof t->err, "out of memory"); return -1; }
        tmp = p;
        memcpy(tmp, s, sp); memcpy(tmp + sp, s + sp + 1, n - sp - 1);
        int32_t c = strtab_find(&t->by_text, tmp, n - 1);
        if (c < 0) continue;
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & t->mmask;
        while (t->merge[i].key != UINT64_MAX && t->merge[i].key != key) i = (i + 1) & t->mmask;
        if (t->merge[i].key == key) continue; /* first (lowest rank) wins */
        t->merge[i].key = key; t->merge[i].rank = (int32_t)r; t->merge[i].res = c;
        kept++;
    }
    free(tmp);
    return kept;
}

static inline int merge_find(const ctok *t, int32_t a, int32_t b, int32_t *res) {
    if (!t->merge || a < 0 || b < 0) return -1;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & t->mmask;
    for (;;) {
        uint64_t k = t->merge[i].key;
        if (k == key) { *res = t->merge[i].res; return t->merge[i].rank; }
        if (k == UINT64_MAX) return -1;
        i = (i + 1) & t->mmask;
    }
}

/* stages: a flat int array; per stage
 *   kind, ndig, marks, ws_prefix, negate, min, max, catmask, nranges, lo0, hi0, ... */
int ctok_set_pretok(ctok *t, const int32_t *spec, int32_t nspec) {
    int count = 0;
    for (int32_t i = 0; i < nspec;) {
        if (i + 9 > nspec) goto bad;
        int nr = spec[i + 8];
        if (nr < 0 || i + 9 + 2 * nr > nspec) goto bad;
        i += 9 + 2 * nr; count++;
    }
    t->stages = calloc((size_t)count + 1, sizeof(stage));
    if (!t->stages) return -1;
    t->nstages = count;
    int k = 0;
    for (int32_t i = 0; i < nspec; k++) {
        stage *s = &t->stages[k];
        s->kind = spec[i]; s->ndig = spec[i + 1]; s->marks = spec[i + 2];
        s->ws_prefix = spec[i + 3]; s->negate = spec[i + 4]; s->min = spec[i + 5]; s->max = spec[i + 6];
        s->catmask = (unsigned)spec[i + 7]; s->nranges = spec[i + 8];
        if (s->kind < PT_GPT2 || s->kind > PT_NEWLINES) goto bad;
        if (s->nranges) {
            s->ranges = malloc(2 * (size_t)s->nranges * sizeof(uint32_t));
            if (!s->ranges) return -1;
            for (int r = 0; r < 2 * s->nranges; r++) s->ranges[r] = (uint32_t)spec[i + 9 + r];
        }
        if (s->max <= 0) s->max = 0x7fffffff;
        if (s->min <= 0) s->min = 1;
        if (s->ndig <= 0) s->ndig = 0x7fffffff;
        i += 9 + 2 * s->nranges;
    }
    return 0;
bad:
    snprintf(t->err, sizeof t->err, "malformed pre-tokenizer spec");
    return -1;
}

/* Sort key of a special token: by first byte, longest first, then id. The
   key carries everything the comparison needs, so no global state is shared
   between tokenizers built at the same time on different threads. */
typedef struct { int64_t len; int32_t id; uint8_t first; } sp_key;
static int cmp_sp(const void *a, const void *b) {
    const sp_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

/* the tokens matched whole in text: control, user-defined and unknown ones */
int ctok_build_specials(ctok *t) {
    int32_t cnt = 0;
    for (int32_t i = 0; i < t->n; i++) {
        int ty = t->type[i];
        if ((ty == T_CONTROL || ty == T_USER || ty == T_UNKNOWN) && t->text_off[i + 1] > t->text_off[i]) cnt++;
    }
    free(t->sp);
    t->sp = malloc(((size_t)cnt + 1) * sizeof(int32_t));
    if (!t->sp) return -1;
    int32_t k = 0;
    for (int32_t i = 0; i < t->n; i++) {
        int ty = t->type[i];
        if ((ty == T_CONTROL || ty == T_USER || ty == T_UNKNOWN) && t->text_off[i + 1] > t->text_off[i]) t->sp[k++] = i;
    }
    sp_key *keys = malloc(((size_t)cnt + 1) * sizeof(sp_key));
    if (!keys) return -1;
    for (int32_t j = 0; j < cnt; j++) {
        int32_t i = t->sp[j];
        keys[j].id = i;
        keys[j].len = t->text_off[i + 1] - t->text_off[i];
        keys[j].first = (uint8_t)t->text[t->text_off[i]];  /* len > 0 by the filter above */
    }
    qsort(keys, (size_t)cnt, sizeof(sp_key), cmp_sp);
    for (int32_t j = 0; j < cnt; j++) t->sp[j] = keys[j].id;
    free(keys);
    t->n_sp = cnt; t->n_user = 0;
    for (int32_t j = 0; j < cnt; j++) t->n_user += t->type[t->sp[j]] == T_USER;
    for (int b = 0; b <= 256; b++) t->sp_start[b] = cnt;
    for (int32_t j = cnt - 1; j >= 0; j--) t->sp_start[(uint8_t)t->text[t->text_off[t->sp[j]]]] = j;
    for (int b = 255; b >= 0; b--) if (t->sp_start[b] > t->sp_start[b + 1]) t->sp_start[b] = t->sp_start[b + 1];
    return 0;
}

/* ---------------------------------------------------------- pre-tokenizer */

static inline uint32_t lower_ascii(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static size_t m_gpt2(const uint32_t *cp, const uint8_t *ct, size_t p, size_t e) {
    uint32_t c = cp[p];
    if (c == '\'' && p + 1 < e) {
        uint32_t c1 = cp[p + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return p + 2;
        if (p + 2 < e) {
            uint32_t c2 = cp[p + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return p + 3;
        }
    }
    size_t q = p + (c == ' ');
    if (q < e) {
        unsigned f = ct[q];
        if (f & CAT_L) { q++; while (q < e && (ct[q] & CAT_L)) q++; return q; }
        if (f & CAT_N) { q++; while (q < e && (ct[q] & CAT_N)) q++; return q; }
        if (!(f & (CAT_WS | CAT_L | CAT_N))) {
            q++;
            while (q < e && !(ct[q] & (CAT_WS | CAT_L | CAT_N))) q++;
            return q;
        }
    }
    if (ct[p] & CAT_WS) {
        size_t r = p + 1;
        while (r < e && (ct[r] & CAT_WS)) r++;
        if (r == e) return r;          /* \s+(?!\S) at the end */
        if (r - p >= 2) return r - 1;  /* \s+(?!\S): leave one before the word */
        return r;                      /* \s+ */
    }
    return p + 1;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,ndig}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * with marks: \p{L} -> [\p{L}\p{M}] in the word and "other" classes (Qwen 3.5). */
static size_t m_llama3(const uint32_t *cp, const uint8_t *ct, size_t p, size_t e, int ndig, int marks) {
    uint32_t c = cp[p];
    unsigned LM = CAT_L | (marks ? CAT_M : 0);
    if (c == '\'' && p + 1 < e) {
        uint32_t c1 = lower_ascii(cp[p + 1]);
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return p + 2;
        if (p + 2 < e) {
            uint32_t c2 = lower_ascii(cp[p + 2]);
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return p + 3;
        }
    }
    unsigned f = ct[p];
    size_t q;
    if (f & LM) {
        q = p + 1;
        while (q < e && (ct[q] & LM)) q++;
        return q;
    }
    if (c != '\r' && c != '\n' && !(f & (CAT_L | CAT_N)) && p + 1 < e && (ct[p + 1] & LM)) {
        q = p + 2;
        while (q < e && (ct[q] & LM)) q++;
        return q;
    }
    if (f & CAT_N) {
        q = p + 1;
        while (q < e && (int)(q - p) < ndig && (ct[q] & CAT_N)) q++;
        return q;
    }
    unsigned OX = CAT_WS | CAT_L | CAT_N | (marks ? CAT_M : 0);
    q = p + (c == ' ');
    if (q < e && !(ct[q] & OX)) {
        q++;
        while (q < e && !(ct[q] & OX)) q++;
        while (q < e && (cp[q] == '\r' || cp[q] == '\n')) q++;
        return q;
    }
    if (f & CAT_WS) {
        size_t r = p + 1;
        while (r < e && (ct[r] & CAT_WS)) r++;
        for (size_t k = r; k > p; k--)
            if (cp[k - 1] == '\r' || cp[k - 1] == '\n') return k;   /* \s*[\r\n]+ */
        if (r == e) return r;
        if (r - p >= 2) return r - 1;
        return r;
    }
    return p + 1;
}

static inline int cls_has(const stage *s, uint32_t c, unsigned cat) {
    int in = (cat & s->catmask) != 0;
    for (int r = 0; !in && r < s->nranges; r++) in = c >= s->ranges[2 * r] && c <= s->ranges[2 * r + 1];
    return s->negate ? !in : in;
}

static size_t m_class(const stage *s, const uint32_t *cp, const uint8_t *ct, size_t p, size_t e) {
    if (s->ws_prefix && (ct[p] & CAT_WS)) {
        size_t q = p + 1;
        while (q < e && (int)(q - p - 1) < s->max && cls_has(s, cp[q], ct[q])) q++;
        if ((int)(q - p - 1) >= s->min) return q;
    }
    size_t q = p;
    while (q < e && (int)(q - p) < s->max && cls_has(s, cp[q], ct[q])) q++;
    if ((int)(q - p) >= s->min) return q;
    return p;
}

static size_t stage_match(const stage *s, const uint32_t *cp, const uint8_t *ct, size_t p, size_t e, size_t *memo) {
    switch (s->kind) {
    case PT_GPT2: return m_gpt2(cp, ct, p, e);
    case PT_LLAMA3: return m_llama3(cp, ct, p, e, s->ndig, s->marks);
    case PT_CLASS: return m_class(s, cp, ct, p, e);
    case PT_WS_END: {   /* \s+$ */
        if (!(ct[p] & CAT_WS)) return p;
        if (*memo <= p) {
            size_t r = p + 1;
            while (r < e && (ct[r] & CAT_WS)) r++;
            *memo = r;
        }
        return *memo == e ? e : p;
    }
    case PT_NEWLINES: {  /* [^\n]+|[\n]+ */
        int nl = cp[p] == '\n';
        size_t q = p + 1;
        while (q < e && (cp[q] == '\n') == nl) q++;
        return q;
    }
    }
    return p;
}

/* --------------------------------------------------------------- BPE words */

static inline int bpe_before(const void *pa, const void *pb) {
    const bpe_ent *a = pa, *b = pb;
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

/* Merge the symbols wid[0..n) by rank; returns the number left (compacted in wid). */
static int bpe_merge(ctok *t, size_t n) {
    int32_t *id = t->wid;
    if (n < 2) return (int)n;
    if (n <= 24) {
        /* linear scan: lowest rank, leftmost first (same order as the heap) */
        int32_t rk[24], rs[24];
        for (size_t i = 0; i + 1 < n; i++) rk[i] = merge_find(t, id[i], id[i + 1], &rs[i]);
        for (;;) {
            int best = -1; int32_t br = 0;
            for (size_t i = 0; i + 1 < n; i++)
                if (rk[i] >= 0 && (best < 0 || rk[i] < br)) { best = (int)i; br = rk[i]; }
            if (best < 0) break;
            id[best] = rs[best];
            for (size_t i = (size_t)best + 1; i + 1 < n; i++) { id[i] = id[i + 1]; rk[i] = rk[i + 1]; rs[i] = rs[i + 1]; }
            n--;
            if (best > 0) rk[best - 1] = merge_find(t, id[best - 1], id[best], &rs[best - 1]);
            if ((size_t)best + 1 < n) rk[best] = merge_find(t, id[best], id[best + 1], &rs[best]);
        }
        return (int)n;
    }
    int32_t *prv = t->wprv, *nxt = t->wnxt;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) { prv[i] = (int32_t)i - 1; nxt[i] = (i + 1 < n) ? (int32_t)i + 1 : -1; }
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t res, r = merge_find(t, id[i], id[i + 1], &res);
        if (r >= 0 && heap_push(t, &hn, &(bpe_ent){r, (int32_t)i, id[i], id[i + 1], res}, sizeof(bpe_ent), bpe_before)) return -1;
    }
    while (hn) {
        bpe_ent e;
        heap_pop(t, &hn, &e, sizeof e, bpe_before);
        int32_t l = e.pos, r = nxt[l];
        if (id[l] != e.lid || r < 0 || id[r] != e.rid) continue;  /* stale */
        id[l] = e.res;
        id[r] = -2;                                              /* dead */
        nxt[l] = nxt[r];
        if (nxt[r] >= 0) prv[nxt[r]] = l;
        int32_t res, rk;
        if (prv[l] >= 0 && (rk = merge_find(t, id[prv[l]], id[l], &res)) >= 0)
            if (heap_push(t, &hn, &(bpe_ent){rk, prv[l], id[prv[l]], id[l], res}, sizeof(bpe_ent), bpe_before)) return -1;
        if (nxt[l] >= 0 && (rk = merge_find(t, id[l], id[nxt[l]], &res)) >= 0)
            if (heap_push(t, &hn, &(bpe_ent){rk, l, id[l], id[nxt[l]], res}, sizeof(bpe_ent), bpe_before)) return -1;
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = nxt[i]) id[k++] = id[i];
    return (int)k;
}

static int reserve_word(ctok *t, size_t n) {
    if (n <= t->capw) return 0;
    size_t cap = t->capw;
    int32_t *a = grow(t->wid, &cap, n, sizeof(int32_t), &t->oom);
    if (!a) return -1;
    t->wid = a;
    cap = t->capw;
    a = grow(t->wprv, &cap, n, sizeof(int32_t), &t->oom);
    if (!a) return -1;
    t->wprv = a;
    cap = t->capw;
    a = grow(t->wnxt, &cap, n, sizeof(int32_t), &t->oom);
    if (!a) return -1;
    t->wnxt = a;
    t->capw = cap;
    return 0;
}

static int emit_unknown_bytes(ctok *t, const uint8_t *s, size_t n) {
    for (size_t j = 0; j < n; j++) {
        int32_t b = t->byte_tok[s[j]];
        if (b >= 0) { if (push(t, b)) return -1; }
        else if (t->unk >= 0) { if (push(t, t->unk)) return -1; return 0; }
    }
    return 0;
}

/* encode(t, w, n) through the word cache: a hit replays the ids an earlier call
 * gave for the same bytes. Inlined with a constant encode. */
static inline __attribute__((always_inline)) int cached(ctok *t, const uint8_t *w, size_t n,
                                                        int (*encode)(ctok *, const uint8_t *, size_t)) {
    uint64_t h = 0;
    int cacheable = n <= CACHE_KEY && t->cache;
    if (cacheable) {
        h = hbytes(w, n);
        centry *ce = cache_get(t->cache, h, w, n);
        if (ce) {
            for (int i = 0; i < ce->nids; i++) if (push(t, ce->ids[i])) return -1;
            return 0;
        }
    }
    size_t out0 = t->nout;
    if (encode(t, w, n)) return -1;
    size_t cnt = t->nout - out0;
    if (cacheable && cnt <= CACHE_IDS && cnt > 0) cache_put(t->cache, h, w, n, t->out + out0, cnt);
    return 0;
}

static int bpe_word_uncached(ctok *t, const uint8_t *w, size_t n) {
    int bl = t->flags & F_BYTE_LEVEL;
    int32_t whole = -1;
    if (t->flags & F_IGNORE_MERGES) whole = strtab_find(bl ? &t->by_piece : &t->spm, w, n);
    if (whole < 0 && (t->flags & F_NL_WORDS)) {
        size_t j = 0;
        while (j < n && w[j] == '\n') j++;
        if (j == n) whole = strtab_find(&t->by_text, w, n);
    }
    if (whole >= 0) {
        if (push(t, whole)) return -1;
    } else {
        if (reserve_word(t, n)) return -1;
        size_t k = 0;
        /* byte offsets of raw (non byte-level) symbols live in wprv during setup */
        if (bl) {
            for (size_t j = 0; j < n; j++) t->wid[k++] = t->byte_tok[w[j]];
        } else {
            size_t j = 0;
            while (j < n) {
                int adv; utf8_next(w, n, j, &adv);
                int32_t id = strtab_find(&t->by_text, w + j, (size_t)adv);
                t->wid[k] = id >= 0 ? id : -3 - (int32_t)j;  /* remember where unknown bytes are */
                k++; j += (size_t)adv;
            }
        }
        /* unknown symbols never merge: -3-j < 0 is not found by merge_find */
        int m = bpe_merge(t, k);
        if (m < 0) return -1;
        for (int i = 0; i < m; i++) {
            int32_t id = t->wid[i];
            if (id >= 0) { if (push(t, id)) return -1; }
            else if (bl) { if (t->unk >= 0 && push(t, t->unk)) return -1; }
            else {
                size_t j = (size_t)(-3 - id);
                int adv; utf8_next(w, n, j, &adv);
                if (t->flags & F_BYTE_FALLBACK) { if (emit_unknown_bytes(t, w + j, (size_t)adv)) return -1; }
                else if (t->unk >= 0 && push(t, t->unk)) return -1;
            }
        }
    }
    return 0;
}

static int bpe_word(ctok *t, const uint8_t *w, size_t n) {
    if (n == 0) return 0;
    if ((t->flags & F_BYTE_LEVEL) && n == 1)
        return t->byte_tok[w[0]] >= 0 ? push(t, t->byte_tok[w[0]]) : emit_unknown_bytes(t, w, 1);
    return cached(t, w, n, bpe_word_uncached);
}

static int split(ctok *t, int si, size_t b, size_t e) {
    if (si == t->nstages)
        return bpe_word(t, (const uint8_t *)t->frag + t->offs[b], (size_t)(t->offs[e] - t->offs[b]));
    const stage *s = &t->stages[si];
    size_t gs = b, p = b, memo = 0;
    while (p < e) {
        size_t m = stage_match(s, t->cps, t->cats, p, e, &memo);
        if (m > p) {
            if (gs < p && split(t, si + 1, gs, p)) return -1;
            if (split(t, si + 1, p, m)) return -1;
            p = gs = m;
        } else {
            p++;
        }
    }
    if (gs < e && split(t, si + 1, gs, e)) return -1;
    return 0;
}

/* ------------------------------------------------------------------ SPM */

static inline int spm_before(const void *pa, const void *pb) {
    const spm_ent *a = pa, *b = pb;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

/* symbols: wid = byte start, wprv/wnxt = links, cps (reused) = byte length */
static int spm_try(ctok *t, size_t *hn, const uint8_t *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return 0;
    uint32_t *len = t->cps;
    size_t size = len[l] + len[r];
    int32_t id = strtab_find(&t->spm, s + t->wid[l], size);
    if (id < 0) return 0;
    return heap_push(t, hn, &(spm_ent){t->score[id], l, r, (int32_t)size}, sizeof(spm_ent), spm_before);
}

static int spm_word(ctok *t, const uint8_t *s, size_t n) {
    if (!n) return 0;
    if (reserve_word(t, n)) return -1;
    if (n > t->capcp) {
        size_t cap = t->capcp;
        uint32_t *a = grow(t->cps, &cap, n, sizeof(uint32_t), &t->oom);
        if (!a) return -1;
        t->cps = a;
        cap = t->capcp;
        a = grow(t->offs, &cap, n + 1, sizeof(uint32_t), &t->oom);
        if (!a) return -1;
        t->offs = a;
        cap = t->capcp;
        uint8_t *c = grow(t->cats, &cap, n, 1, &t->oom);
        if (!c) return -1;
        t->cats = c;
        t->capcp = cap;
    }
    int32_t *start = t->wid, *prv = t->wprv, *nxt = t->wnxt;
    uint32_t *len = t->cps;
    size_t k = 0, j = 0;
    while (j < n) {
        int adv; utf8_next(s, n, j, &adv);
        start[k] = (int32_t)j; len[k] = (uint32_t)adv;
        prv[k] = (int32_t)k - 1; nxt[k] = -1;
        if (k) nxt[k - 1] = (int32_t)k;
        k++; j += (size_t)adv;
    }
    size_t hn = 0;
    for (size_t i = 1; i < k; i++) if (spm_try(t, &hn, s, (int32_t)i - 1, (int32_t)i)) return -1;
    while (hn) {
        spm_ent e;
        heap_pop(t, &hn, &e, sizeof e, spm_before);
        int32_t l = e.left, r = e.right;
        if (len[l] == 0 || len[r] == 0 || (int32_t)(len[l] + len[r]) != e.size) continue;
        len[l] += len[r]; len[r] = 0;
        nxt[l] = nxt[r];
        if (nxt[r] >= 0) prv[nxt[r]] = l;
        if (spm_try(t, &hn, s, prv[l], l)) return -1;
        if (spm_try(t, &hn, s, l, nxt[l])) return -1;
    }
    for (int32_t i = 0; i >= 0; i = nxt[i]) {
        int32_t id = strtab_find(&t->spm, s + start[i], len[i]);
        if (id >= 0) { if (push(t, id)) return -1; }
        else if (emit_unknown_bytes(t, s + start[i], len[i])) return -1;
    }
    return 0;
}

/* A cached SPM segment. */
static int spm_segment(ctok *t, const uint8_t *w, size_t n) { return cached(t, w, n, spm_word); }

/* When no piece has U+2581 after another character (t->spm_split), no merge can
 * cross the start of a "▁word", so the text is encoded segment by segment, which
 * gives the same ids as one pass and keeps the work per segment small. */
static int spm_encode(ctok *t, const uint8_t *s, size_t n) {
    if (!t->spm_split) return spm_word(t, s, n);
    size_t b = 0;
    for (size_t j = 3; j + 3 <= n; j++) {
        if (is_lower_bar(s, j) && !is_lower_bar(s, j - 3)) {
            if (spm_segment(t, s + b, j - b)) return -1;
            b = j;
            j += 2;
        }
    }
    return spm_segment(t, s + b, n - b);
}

/* ---------------------------------------------------------------- encode */

static int escape_into_buf(ctok *t, const char *s, size_t n, int prefix) {
    char *b = grow(t->buf, &t->capbuf, 3 * n + 3, 1, &t->oom);
    if (!b) return -1;
    t->buf = b;
    size_t k = 0;
    if (prefix) { b[k++] = (char)0xE2; b[k++] = (char)0x96; b[k++] = (char)0x81; }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') { b[k++] = (char)0xE2; b[k++] = (char)0x96; b[k++] = (char)0x81; }
        else b[k++] = s[i];
    }
    t->nbuf = k;
    return 0;
}

static int encode_fragment(ctok *t, const char *s, size_t n, int after_special) {
    if (n == 0) return 0;
    if (t->flags & F_SPM) {
        int prefix = (t->flags & F_SPACE_PREFIX) && after_special;
        if (escape_into_buf(t, s, n, prefix)) return -1;
        return spm_encode(t, (const uint8_t *)t->buf, t->nbuf);
    }
    if (t->flags & F_ESCAPE_WS) {
        if (escape_into_buf(t, s, n, 0)) return -1;
        s = t->buf; n = t->nbuf;
    }
    /* code points, categories and byte offsets of the fragment */
    if (n + 1 > t->capcp) {
        size_t cap = t->capcp;
        uint32_t *a = grow(t->cps, &cap, n + 1, sizeof(uint32_t), &t->oom);
        if (!a) return -1;
        t->cps = a;
        cap = t->capcp;
        a = grow(t->offs, &cap, n + 1, sizeof(uint32_t), &t->oom);
        if (!a) return -1;
        t->offs = a;
        cap = t->capcp;
        uint8_t *c = grow(t->cats, &cap, n + 1, 1, &t->oom);
        if (!c) return -1;
        t->cats = c;
        t->capcp = cap;
    }
    const uint8_t *u = (const uint8_t *)s;
    size_t k = 0, j = 0;
    while (j < n) {
        uint32_t c;
        int adv;
        if (u[j] < 0x80) { c = u[j]; adv = 1; }
        else c = utf8_next(u, n, j, &adv);
        t->cps[k] = c; t->cats[k] = (uint8_t)ucat(c); t->offs[k] = (uint32_t)j;
        k++; j += (size_t)adv;
    }
    t->offs[k] = (uint32_t)n;
    t->frag = s;
    return split(t, 0, 0, k);
}

/* Encode text[0..n). Returns the number of ids (read them with ctok_ids) or -1. */
static int64_t encode_into(ctok *t, const char *text, int64_t n, int add_special, int parse_special) {
    t->oom = 0; t->err[0] = 0;
    if (n < 0 || n > 0x7ffffff0LL) { snprintf(t->err, sizeof t->err, "text of %lld bytes: at most 2 GiB per call", (long long)n); return -1; }
    if (!t->cache) {
        t->cache = aligned_alloc(64, CACHE_SLOTS * sizeof(centry));
        if (t->cache) memset(t->cache, 0, CACHE_SLOTS * sizeof(centry));
    }
    if (add_special && t->add_bos && push(t, t->bos)) goto oom;
    size_t fs = 0, i = 0, len = (size_t)n;
    int after_special = 1;
    const uint8_t *u = (const uint8_t *)text;
    if (!(parse_special ? t->n_sp : t->n_user)) i = len;  /* nothing to look for */
    while (i < len) {
        uint8_t c = u[i];
        int32_t a = t->sp_start[c], b = t->sp_start[c + 1];
        int32_t hit = -1;
        for (int32_t j = a; j < b; j++) {
            int32_t id = t->sp[j];
            int ty = t->type[id];
            if (!parse_special && ty != T_USER) continue;
            size_t m = (size_t)(t->text_off[id + 1] - t->text_off[id]);
            if (m <= len - i && memcmp(text + i, t->text + t->text_off[id], m) == 0) { hit = id; break; }
        }
        if (hit < 0) { i++; continue; }
        size_t m = (size_t)(t->text_off[hit + 1] - t->text_off[hit]);
        size_t fe = i;
        if (t->attr[hit] & A_LSTRIP) while (fe > fs && (text[fe - 1] == ' ' || (text[fe - 1] >= 9 && text[fe - 1] <= 13))) fe--;
        if (encode_fragment(t, text + fs, fe - fs, after_special)) goto fail;
        if (push(t, hit)) goto oom;
        after_special = 1;
        i += m;
        if (t->attr[hit] & A_RSTRIP) while (i < len && (text[i] == ' ' || (text[i] >= 9 && text[i] <= 13))) i++;
        fs = i;
        continue;
    }
    if (fs < len) {
        if (encode_fragment(t, text + fs, len - fs, after_special)) goto fail;
    }
    if (add_special && t->add_eos && push(t, t->eos)) goto oom;
    return (int64_t)t->nout;
fail:
    if (!t->oom) return -1;
oom:
    snprintf(t->err, sizeof t->err, "out of memory while encoding %lld bytes", (long long)n);
    return -1;
}

int64_t ctok_encode(ctok *t, const char *text, int64_t n, int add_special, int parse_special) {
    t->nout = 0;
    return encode_into(t, text, n, add_special, parse_special);
}

/* Encode count texts (text i is blob[start[i] .. start[i]+len[i])) in one call; counts[i]
 * receives the number of ids of text i. Returns the total (ids via ctok_ids_ptr) or -1. */
int64_t ctok_encode_batch(ctok *t, const char *blob, const int64_t *start, const int64_t *len, int64_t count,
                          int add_special, int parse_special, int64_t *counts) {
    t->nout = 0;
    for (int64_t i = 0; i < count; i++) {
        size_t before = t->nout;
        if (encode_into(t, blob + start[i], len[i], add_special, parse_special) < 0) return -1;
        counts[i] = (int64_t)(t->nout - before);
    }
    return (int64_t)t->nout;
}

void ctok_ids(const ctok *t, int32_t *dst) {
    if (t->nout) memcpy(dst, t->out, t->nout * sizeof(int32_t)); /* out is NULL before the first id */
}

/* ---------------------------------------------------------------- decode */

/* Decode ids into bytes (read with ctok_decoded). state: 1 at the start or after a
 * special token (the SPM dummy-prefix space of the next piece is dropped), carried
 * between calls for streaming. Ids out of range decode to nothing. */
int64_t ctok_decode(ctok *t, const int32_t *ids, int64_t n, int skip_special, int *state) {
    size_t k = 0;
    int st = state ? *state : 1;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n) continue;
        int ty = t->type[id];
        int special = ty == T_CONTROL || ty == T_UNKNOWN || ty == T_USER;
        const char *p = t->piece + t->piece_off[id];
        size_t m = (size_t)(t->piece_off[id + 1] - t->piece_off[id]);
        if ((ty == T_CONTROL || ty == T_UNKNOWN) && skip_special) m = 0;
        if (!special && st && (t->flags & F_SPACE_PREFIX) && m && p[0] == ' ') { p++; m--; }
        if (ty != T_BYTE || m) st = special;
        char *d = grow(t->dec, &t->capdec, k + m + 1, 1, &t->oom);
        if (!d) { snprintf(t->err, sizeof t->err, "out of memory"); return -1; }
        t->dec = d;
        memcpy(d + k, p, m);
        k += m;
    }
    if (state) *state = st;
    return (int64_t)k;
}

const char *ctok_decoded(const ctok *t) { return t->dec; }

/* the raw vocabulary text of a token (as stored in the model file) */
int64_t ctok_token_text(const ctok *t, int32_t id, const char **ptr) {
    if (id < 0 || id >= t->n) { *ptr = ""; return 0; }
    *ptr = t->text + t->text_off[id];
    return t->text_off[id + 1] - t->text_off[id];
}

int64_t ctok_piece(const ctok *t, int32_t id, const char **ptr) {
    if (id < 0 || id >= t->n) { *ptr = ""; return 0; }
    *ptr = t->piece + t->piece_off[id];
    return t->piece_off[id + 1] - t->piece_off[id];
}

int32_t ctok_lookup(const ctok *t, const char *s, int64_t n) { return strtab_find(&t->by_text, s, (size_t)n); }

/* How many leading bytes of buf[0..n) can be emitted now: all but a trailing
 * UTF-8 sequence that is valid so far but incomplete (held back for streaming). */
int64_t ctok_utf8_ready(const char *buf, int64_t n) {
    const uint8_t *s = (const uint8_t *)buf;
    for (int64_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t c = s[n - back];
        if ((c & 0xC0) == 0x80) continue;          /* continuation: look further back */
        int need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        if (need > back) {
            /* the bytes after the lead must be plausible continuations */
            if (back >= 2) {
                uint8_t c1 = s[n - back + 1];
                if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
                    return n;
            }
            return n - back;
        }
        return n;
    }
    return n;
}

/* Split the GGUF string array at data[off..) with count entries ([u64 len][bytes] each)
 * into start/len arrays; returns the end offset or -1 when it runs past size. */
int64_t ctok_gguf_strings(const uint8_t *data, int64_t size, int64_t off, int64_t count, int64_t *start, int64_t *len) {
    for (int64_t i = 0; i < count; i++) {
        if (off + 8 > size) return -1;
        uint64_t m; memcpy(&m, data + off, 8);
        off += 8;
        if (m > (uint64_t)(size - off)) return -1;
        start[i] = off; len[i] = (int64_t)m;
        off += (int64_t)m;
    }
    return off;
}

/* For tests: turn the SPM segment split off (0) or back to what the vocabulary allows (1). */
int ctok_spm_split(ctok *t, int on) {
    if (!on) { t->spm_split = 0; return 0; }
    t->spm_split = 1;
    for (int32_t i = 0; i < t->n && t->spm_split; i++) {
        if (t->type[i] != T_NORMAL && t->type[i] != T_USER) continue;
        const uint8_t *p = (const uint8_t *)t->text + t->text_off[i];
        size_t m = (size_t)(t->text_off[i + 1] - t->text_off[i]);
        for (size_t j = 1; j + 3 <= m; j++)
            if (is_lower_bar(p, j) && !(j >= 3 && is_lower_bar(p, j - 3))) { t->spm_split = 0; break; }
    }
    if (t->cache) memset(t->cache, 0, CACHE_SLOTS * sizeof(centry));
    return t->spm_split;
}

/* the ids of the last ctok_encode (valid until the next call on this handle) */
const int32_t *ctok_ids_ptr(const ctok *t) { return t->out; }
