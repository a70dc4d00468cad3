/* ckc runtime: .bump weights loading (format documented in weights.h). */
#define _POSIX_C_SOURCE 200809L
#include "weights.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ck_weights {
    char *path;
    const uint8_t *base;   /* the mapping (NULL for an empty file) */
    uint64_t size;
    int count;
    ck_tensor_info *tensors;
    char *names;           /* all names, NUL-terminated, one block */
    int *sorted;           /* tensor indices sorted by name (for lookup) */
};

static void seterr(char *err, int errlen, const char *path, const char *fmt, ...) {
    if (!err || errlen <= 0) return;
    int n = snprintf(err, (size_t)errlen, "%s: ", path ? path : "(null)");
    if (n < 0) n = 0;
    if (n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, (size_t)(errlen - n), fmt, ap);
        va_end(ap);
    }
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

uint64_t ck_fnv1a64(const void *data, size_t n, uint64_t h) {
    const uint8_t *p = (const uint8_t *)data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

const char *ck_dtype_name(int dtype) {
    switch (dtype) {
    case CK_DT_F32: return "f32";
    case CK_DT_F16: return "f16";
    case CK_DT_Q8_0: return "q8_0";
    case CK_DT_Q4_0: return "q4_0";
    case CK_DT_Q4_1: return "q4_1";
    case CK_DT_BF16: return "bf16";
    case CK_DT_F32P32: return "f32p32";
    case CK_DT_Q5_0: return "q5_0";
    case CK_DT_Q5_1: return "q5_1";
    case CK_DT_Q2_K: return "q2_k";
    case CK_DT_Q3_K: return "q3_k";
    case CK_DT_Q4_K: return "q4_k";
    case CK_DT_Q5_K: return "q5_k";
    case CK_DT_Q6_K: return "q6_k";
    case CK_DT_Q8_0R8: return "q8_0r8";
    case CK_DT_Q4_0R8: return "q4_0r8";
    case CK_DT_Q4_1R8: return "q4_1r8";
    case CK_DT_Q5_0R8: return "q5_0r8";
    case CK_DT_Q5_1R8: return "q5_1r8";
    default: return "?";
    }
}

uint64_t ck_dtype_row_bytes(int dtype, uint64_t n) {
    const uint64_t lim = (uint64_t)1 << 60;
    if (n >= lim) return 0;
    switch (dtype) {
    case CK_DT_F32: return n * 4;
    case CK_DT_F16:
    case CK_DT_BF16: return n * 2;
    case CK_DT_Q8_0: return n % 32 ? 0 : n / 32 * 34;
    case CK_DT_Q4_0: return n % 32 ? 0 : n / 32 * 18;
    case CK_DT_Q4_1: return n % 32 ? 0 : n / 32 * 20;
    case CK_DT_Q5_0: return n % 32 ? 0 : n / 32 * 22;
    case CK_DT_Q5_1: return n % 32 ? 0 : n / 32 * 24;
    case CK_DT_Q2_K: return n % 256 ? 0 : n / 256 * 84;
    case CK_DT_Q3_K: return n % 256 ? 0 : n / 256 * 110;
    case CK_DT_Q4_K: return n % 256 ? 0 : n / 256 * 144;
    case CK_DT_Q5_K: return n % 256 ? 0 : n / 256 * 176;
    case CK_DT_Q6_K: return n % 256 ? 0 : n / 256 * 210;
    default: return 0;
    }
}

/* Expected data size of a tensor; returns 0 and sets *ok = 0 when the shape does
 * not fit the dtype (or overflows). */
static uint64_t tensor_bytes(int dtype, int ndim, const int64_t *shape, int *ok) {
    const uint64_t lim = (uint64_t)1 << 60;
    *ok = 1;
    if (dtype == CK_DT_F32P32) {   /* [N, K] in panels of 32 rows (N padded) */
        if (ndim != 2) { *ok = 0; return 0; }
        const uint64_t n = (uint64_t)shape[0], k = (uint64_t)shape[1];
        if (n == 0 || k == 0) return 0;
        const uint64_t rows = (n + 31) / 32 * 32;
        if (rows > lim / k / 4) { *ok = 0; return 0; }
        return rows * k * 4;
    }
    if (dtype >= CK_DT_Q8_0R8 && dtype <= CK_DT_Q5_1R8) {   /* [N, K] in groups of 8 rows (N padded) */
        static const int base[] = {CK_DT_Q8_0, CK_DT_Q4_0, CK_DT_Q4_1, CK_DT_Q5_0, CK_DT_Q5_1};
        if (ndim != 2) { *ok = 0; return 0; }
        const uint64_t n = (uint64_t)shape[0];
        const uint64_t row = ck_dtype_row_bytes(base[dtype - CK_DT_Q8_0R8], (uint64_t)shape[1]);
        if (n == 0 || shape[1] == 0) return 0;
        if (row == 0 || (n + 7) / 8 * 8 > lim / row) { *ok = 0; return 0; }
        return (n + 7) / 8 * 8 * row;
    }
    uint64_t last = ndim > 0 ? (uint64_t)shape[ndim - 1] : 1;
    uint64_t rows = 1;
    for (int i = 0; i + 1 < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && rows > lim / d) { *ok = 0; return 0; }
        rows *= d;
    }
    if (last == 0 || rows == 0) return 0;
    uint64_t row = ck_dtype_row_bytes(dtype, last);
    if (row == 0 || rows > lim / row) { *ok = 0; return 0; }
    return rows * row;
}

static void fmt_shape(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, len - n, "[");
    for (int i = 0; i < ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

typedef struct { const char *name; int index; } name_index;
static int cmp_names(const void *a, const void *b) {
    return strcmp(((const name_index *)a)->name, ((const name_index *)b)->name);
}

void ck_weights_close(ck_weights *w) {
    if (!w) return;
    if (w->base) munmap((void *)w->base, (size_t)w->size);
    free(w->tensors);
    free(w->names);
    free(w->sorted);
    free(w->path);
    free(w);
}

int ck_weights_open(const char *path, ck_weights **out, char *err, int errlen) {
    if (err && errlen > 0) err[0] = 0;
    if (!out) { seterr(err, errlen, path, "no output handle"); return CK_WEIGHTS_ENOENT; }
    *out = NULL;
    if (!path) { seterr(err, errlen, path, "no weights path given"); return CK_WEIGHTS_ENOENT; }

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, path, "cannot open weights file: %s", strerror(errno));
        return CK_WEIGHTS_ENOENT;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        seterr(err, errlen, path, "not a regular file");
        close(fd);
        return CK_WEIGHTS_ENOENT;
    }
    ck_weights *w = (ck_weights *)calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        close(fd);
        seterr(err, errlen, path, "out of memory");
        return CK_WEIGHTS_ENOMEM;
    }
    w->size = (uint64_t)st.st_size;
    if (w->size > 0) {
        void *p = mmap(NULL, (size_t)w->size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            seterr(err, errlen, path, "mmap failed: %s", strerror(errno));
            close(fd);
            ck_weights_close(w);
            return CK_WEIGHTS_ENOMEM;
        }
        w->base = (const uint8_t *)p;
    }
    close(fd);

    const uint8_t *b = w->base;
    const uint64_t size = w->size;
    int rc = CK_WEIGHTS_OK;
#define FAIL(code, ...) do { seterr(err, errlen, path, __VA_ARGS__); rc = (code); goto fail; } while (0)

    if (size >= 8 && memcmp(b, CK_BUMP_MAGIC, 8) != 0)
        FAIL(CK_WEIGHTS_EMAGIC, "bad magic: not a ckc weights file (expected \"%s\")", CK_BUMP_MAGIC);
    if (size < CK_BUMP_HEADER_BYTES)
        FAIL(CK_WEIGHTS_ETRUNC, "truncated: %llu bytes, shorter than the %d-byte header",
             (unsigned long long)size, CK_BUMP_HEADER_BYTES);
    uint32_t version = rd32(b + 8), align = rd32(b + 12);
    uint64_t count = rd64(b + 16), total = rd64(b + 24), data = rd64(b + 32);
    uint64_t strtab = rd64(b + 40), checksum = rd64(b + 48);
    if (version != CK_BUMP_VERSION)
        FAIL(CK_WEIGHTS_EMAGIC, "unsupported .bump version %u (this runtime reads %d)", version,
             CK_BUMP_VERSION);
    if (align < CK_BUMP_ALIGN || align > 65536 || (align & (align - 1)))
        FAIL(CK_WEIGHTS_EALIGN, "bad alignment %u (expected a power of two >= %d)", align, CK_BUMP_ALIGN);
    if (count > (size - CK_BUMP_HEADER_BYTES) / CK_BUMP_ENTRY_BYTES || count > 0x7fffffff)
        FAIL(CK_WEIGHTS_ETRUNC, "truncated: table of %llu tensors does not fit in %llu bytes",
             (unsigned long long)count, (unsigned long long)size);
    uint64_t table_end = CK_BUMP_HEADER_BYTES + count * CK_BUMP_ENTRY_BYTES;
    if (strtab > size - table_end)
        FAIL(CK_WEIGHTS_ETRUNC, "truncated: name table of %llu bytes runs past the end (%llu bytes)",
             (unsigned long long)strtab, (unsigned long long)size);
    if (data < table_end + strtab)
        FAIL(CK_WEIGHTS_ECORRUPT, "corrupt header: data offset %llu inside the tensor table",
             (unsigned long long)data);
    if (data > size)
        FAIL(CK_WEIGHTS_ETRUNC, "truncated: data starts at %llu but the file has %llu bytes",
             (unsigned long long)data, (unsigned long long)size);
    if (data % align)
        FAIL(CK_WEIGHTS_EALIGN, "bad alignment: data offset %llu is not %u-byte aligned",
             (unsigned long long)data, align);
    {
        static const uint8_t zero8[8] = {0};
        uint64_t h = ck_fnv1a64(b, 48, CK_FNV1A64_INIT);
        h = ck_fnv1a64(zero8, 8, h);
        h = ck_fnv1a64(b + 56, (size_t)(data - 56), h);
        if (h != checksum)
            FAIL(CK_WEIGHTS_ECORRUPT, "header checksum mismatch (stored %016llx, computed %016llx): "
                 "corrupt file", (unsigned long long)checksum, (unsigned long long)h);
    }

    w->count = (int)count;
    w->tensors = (ck_tensor_info *)calloc(count ? count : 1, sizeof *w->tensors);
    w->names = (char *)malloc(strtab + count + 1);
    w->sorted = (int *)malloc((count ? count : 1) * sizeof(int));
    if (!w->tensors || !w->names || !w->sorted) FAIL(CK_WEIGHTS_ENOMEM, "out of memory");

    const uint8_t *names = b + table_end;
    uint64_t prev_end = data, npos = 0;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *e = b + CK_BUMP_HEADER_BYTES + i * CK_BUMP_ENTRY_BYTES;
        ck_tensor_info *t = &w->tensors[i];
        uint32_t noff = rd32(e + 88), nlen = rd32(e + 92);
        /* names lie back to back in table order: name i starts where name i-1 ends */
        int name_ok = nlen > 0 && noff == npos - i && noff <= strtab && nlen <= strtab - noff;
        for (uint32_t k = 0; name_ok && k < nlen; k++)
            name_ok = names[noff + k] >= 0x20 && names[noff + k] <= 0x7e; /* printable ASCII */
        if (!name_ok)
            FAIL(CK_WEIGHTS_ECORRUPT, "corrupt table: tensor #%llu has a bad name", (unsigned long long)i);
        memcpy(w->names + npos, names + noff, nlen);
        w->names[npos + nlen] = 0;
        t->name = w->names + npos;
        npos += nlen + 1;
        t->dtype = (int)rd32(e);
        uint32_t ndim = rd32(e + 4);
        if (t->dtype < 0 || t->dtype >= CK_DT_COUNT)
            FAIL(CK_WEIGHTS_ECORRUPT, "tensor '%s' has unknown dtype code %u", t->name, rd32(e));
        if (ndim > CK_BUMP_MAX_DIMS)
            FAIL(CK_WEIGHTS_ECORRUPT, "tensor '%s' has %u dims (at most %d)", t->name, ndim, CK_BUMP_MAX_DIMS);
        t->ndim = (int)ndim;
        for (int d = 0; d < CK_BUMP_MAX_DIMS; d++) {
            uint64_t v = rd64(e + 8 + 8 * d);
            if (v > ((uint64_t)1 << 48))
                FAIL(CK_WEIGHTS_ECORRUPT, "tensor '%s' has an impossible dim %llu", t->name, (unsigned long long)v);
            t->shape[d] = (int64_t)v;
        }
        t->offset = rd64(e + 72);
        t->nbytes = rd64(e + 80);
        int ok;
        uint64_t want = tensor_bytes(t->dtype, t->ndim, t->shape, &ok);
        if (!ok || want != t->nbytes) {
            char s[160];
            fmt_shape(s, sizeof s, t->ndim, t->shape);
            FAIL(CK_WEIGHTS_ECORRUPT, "tensor '%s': %llu bytes do not match %s %s", t->name,
                 (unsigned long long)t->nbytes, ck_dtype_name(t->dtype), s);
        }
        if (t->offset % align)
            FAIL(CK_WEIGHTS_EALIGN, "bad alignment: tensor '%s' at offset %llu is not %u-byte aligned",
                 t->name, (unsigned long long)t->offset, align);
        if (t->offset < prev_end)
            FAIL(CK_WEIGHTS_ECORRUPT, "corrupt table: tensor '%s' at offset %llu overlaps the %s",
                 t->name, (unsigned long long)t->offset, i ? "previous tensor" : "header");
        if (t->offset > size || t->nbytes > size - t->offset)
            FAIL(CK_WEIGHTS_ETRUNC, "truncated: tensor '%s' needs bytes [%llu, %llu) but the file has %llu",
                 t->name, (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes),
                 (unsigned long long)size);
        prev_end = t->offset + t->nbytes;
        t->data = b + t->offset;
    }
    if (size < total)
        FAIL(CK_WEIGHTS_ETRUNC, "truncated: %llu bytes but the header says %llu",
             (unsigned long long)size, (unsigned long long)total);
    if (size > total)
        FAIL(CK_WEIGHTS_ECORRUPT, "%llu bytes but the header says %llu (trailing data)",
             (unsigned long long)size, (unsigned long long)total);

    {
        name_index *ni = (name_index *)malloc((count ? count : 1) * sizeof *ni);
        if (!ni) FAIL(CK_WEIGHTS_ENOMEM, "out of memory");
        for (int i = 0; i < w->count; i++) ni[i] = (name_index){w->tensors[i].name, i};
        qsort(ni, (size_t)w->count, sizeof *ni, cmp_names);
        const char *dup = NULL;
        for (int i = 0; i < w->count; i++) {
            w->sorted[i] = ni[i].index;
            if (i && !dup && strcmp(ni[i - 1].name, ni[i].name) == 0) dup = ni[i].name;
        }
        free(ni);
        if (dup) FAIL(CK_WEIGHTS_ECORRUPT, "corrupt table: tensor '%s' appears twice", dup);
    }
#undef FAIL
    *out = w;
    return CK_WEIGHTS_OK;
fail:
    ck_weights_close(w);
    return rc;
}

int ck_weights_count(const ck_weights *w) { return w ? w->count : 0; }
uint64_t ck_weights_size(const ck_weights *w) { return w ? w->size : 0; }
const char *ck_weights_path(const ck_weights *w) { return w ? w->path : ""; }

const ck_tensor_info *ck_weights_tensor(const ck_weights *w, int index) {
    if (!w || index < 0 || index >= w->count) return NULL;
    return &w->tensors[index];
}

int ck_weights_find(const ck_weights *w, const char *name) {
    if (!w || !name) return -1;
    int lo = 0, hi = w->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(w->tensors[w->sorted[mid]].name, name);
        if (c == 0) return w->sorted[mid];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

const void *ck_weights_expect(const ck_weights *w, const char *name, int dtype, int ndim,
                              const int64_t *shape, char *err, int errlen) {
    const char *path = w ? w->path : "(no weights)";
    int i = ck_weights_find(w, name);
    if (i < 0) {
        seterr(err, errlen, path, "missing tensor '%s'", name ? name : "(null)");
        return NULL;
    }
    const ck_tensor_info *t = &w->tensors[i];
    if (t->dtype != dtype) {
        seterr(err, errlen, path, "tensor '%s' has dtype %s, expected %s", name, ck_dtype_name(t->dtype),
               ck_dtype_name(dtype));
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char got[160], want[160];
        fmt_shape(got, sizeof got, t->ndim, t->shape);
        fmt_shape(want, sizeof want, ndim > CK_BUMP_MAX_DIMS ? CK_BUMP_MAX_DIMS : ndim, shape);
        seterr(err, errlen, path, "tensor '%s' has shape %s, expected %s", name, got, want);
        return NULL;
    }
    return t->data;
}
