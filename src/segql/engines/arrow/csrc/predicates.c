/* Fused predicate trees (segql.engines.arrow.fused; docs/architecture.md,
 * "Fused predicates in C"; docs/decisions.md 260-269).
 *
 * A tree of and / or / not / is true / is false over leaves (a fixed-width
 * column compared with a constant, a bool bitmap, a null test, a dictionary
 * column's codes looked up in a per-code table, a plain string test) is
 * compiled by Python once into a flat array of nodes (NODE_WORDS int64 words
 * each) and run here over the rows of one or more *pieces* (row ranges where
 * every column is one contiguous Arrow array), in blocks of BLOCK_WORDS * 64
 * rows whose masks stay in L1.
 *
 * Every node has a *true* mask and, where nulls are possible and a node above
 * needs it, a *false* mask (Kleene: a null row is in neither); a node without
 * a false mask has false = ~true, exactly as fused.evaluate's pairs.  In an
 * and / or, an operand holding a string test ("costly") runs only on the rows
 * the operands before it leave open (the *care* mask); outside care a node's
 * masks may be anything (the node above has decided those rows already).
 *
 * The kernel writes the root's truth (and validity) bits at the pieces'
 * global row positions and returns how many rows are true.  It reads only
 * what the caller describes, allocates nothing, keeps no state.
 */
#include <string.h>

#include "segql_kernels.h"

#define NODE_WORDS 8
#define SLOT_WORDS 6
#define PIECE_HEAD 2
#define BLOCK_WORDS 16
#define BLOCK_ROWS (BLOCK_WORDS * 64)

enum {
    OP_AND = 1,
    OP_OR = 2,
    OP_NOT = 3,
    OP_TRUE = 4,
    OP_FALSE = 5,
    OP_COMPARE = 10,
    OP_BOOL = 11,
    OP_NULL = 12,
    OP_DICT = 13,
    OP_STRING = 14,
    OP_CONST = 15,
};

enum { F_NULLABLE = 1, F_WANTF = 2, F_COSTLY = 4 };
/* A leaf's word 7: 1 = plain loops only (no AVX2; tests compare both). */
enum { CMP_EQ = 0, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };
enum { T_I8 = 0, T_I16, T_I32, T_I64, T_U8, T_U16, T_U32, T_F32, T_F64 };
enum { S_EQUAL = 0, S_PREFIX, S_SUFFIX, S_CONTAINS };

typedef struct {
    const int64_t *prog;  /* the nodes */
    const int64_t *slots; /* this piece's column slots */
    int64_t rows;         /* rows of this piece */
    int64_t row;          /* the block's first row in the piece */
    int64_t words;        /* words of this block */
    uint64_t *scratch;    /* 3 * BLOCK_WORDS words per depth */
    int64_t depth_max;
} Ctx;

/* Up to 64 bits of a bitmap from bit `sh` (0-7) of `p`, word `w`, reading
 * only the bytes that hold the `nbits` wanted ones. */
static inline uint64_t load_bits(const uint8_t *p, int64_t sh, int64_t w, int64_t nbits) {
    const uint8_t *q = p + 8 * w;
    int64_t need = (sh + nbits + 7) >> 3;
    uint64_t lo = 0;
    if (need >= 8) {
        memcpy(&lo, q, 8);
    } else {
        for (int64_t i = 0; i < need; i++) lo |= (uint64_t)q[i] << (8 * i);
    }
    uint64_t v = lo >> sh;
    if (sh && need > 8) v |= (uint64_t)q[8] << (64 - sh);
    return v;
}

static inline int64_t word_rows(const Ctx *c, int64_t w) {
    int64_t left = c->rows - c->row - 64 * w;
    return left >= 64 ? 64 : left;
}

/* The row mask of word w of the block (its rows inside the piece). */
static inline uint64_t row_mask(const Ctx *c, int64_t w) {
    int64_t n = word_rows(c, w);
    return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
}

/* A bitmap slot's words for this block (values: index 0, validity: 2). */
static void slot_bits(const Ctx *c, const int64_t *slot, int which, uint64_t *out) {
    const uint8_t *p = (const uint8_t *)(intptr_t)slot[which];
    int64_t bit = slot[which + 1] + c->row;
    const uint8_t *base = p + (bit >> 3);
    int64_t sh = bit & 7;
    for (int64_t w = 0; w < c->words; w++) out[w] = load_bits(base, sh, w, word_rows(c, w));
}

/* 8 bytes each 0 or 1 -> 8 bits (byte i -> bit i). */
static inline uint64_t pack8(const uint8_t *b) {
    uint64_t x;
    memcpy(&x, b, 8);
    return (x * 0x0102040810204080ULL) >> 56;
}

static inline uint64_t pack64(const uint8_t *b) {
    uint64_t out = 0;
    for (int k = 0; k < 8; k++) out |= pack8(b + 8 * k) << (8 * k);
    return out;
}

/* ---------------------------------------------------------- comparisons */
#define CMP_LOOP(CTYPE, WIDE, EXPR)                                           \
    do {                                                                      \
        const CTYPE *v = (const CTYPE *)(intptr_t)slot[0] + c->row;            \
        uint8_t hit[64];                                                      \
        for (int64_t w = 0; w < c->words; w++) {                              \
            const CTYPE *x = v + 64 * w;                                      \
            int64_t n = word_rows(c, w);                                      \
            if (n == 64) {                                                    \
                for (int i = 0; i < 64; i++) {                                \
                    WIDE a = (WIDE)x[i];                                      \
                    hit[i] = (uint8_t)(EXPR);                                 \
                }                                                             \
            } else {                                                          \
                for (int i = 0; i < 64; i++) {                                \
                    WIDE a = i < n ? (WIDE)x[i] : (WIDE)0;                    \
                    hit[i] = (uint8_t)(i < n && (EXPR));                      \
                }                                                             \
            }                                                                 \
            out[w] = pack64(hit);                                             \
        }                                                                     \
    } while (0)

#define CMP_OPS(CTYPE, WIDE, K)                              \
    switch (op) {                                            \
        case CMP_EQ: CMP_LOOP(CTYPE, WIDE, a == K); break;   \
        case CMP_NE: CMP_LOOP(CTYPE, WIDE, a != K); break;   \
        case CMP_LT: CMP_LOOP(CTYPE, WIDE, a < K); break;    \
        case CMP_LE: CMP_LOOP(CTYPE, WIDE, a <= K); break;   \
        case CMP_GT: CMP_LOOP(CTYPE, WIDE, a > K); break;    \
        default: CMP_LOOP(CTYPE, WIDE, a >= K); break;       \
    }

#if defined(__x86_64__) && defined(__GNUC__)
#define SEGQL_AVX2 1
#include <immintrin.h>

#define LOAD_PD(p) _mm256_loadu_pd(p)
#define LOAD_PS_PD(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define LOAD_SI(p) _mm256_loadu_si256((const __m256i *)(p))

/* Full words of a comparison with AVX2; 0: not a type it handles. */
__attribute__((target("avx2"))) static int compare_avx2(const void *vp, int64_t words_full, int64_t op,
                                                         int64_t dtype, int64_t ik, double fk, uint64_t *out) {
    /* Floats: float32 widened to float64, as the NumPy path compares; NaN is != only. */
#define FLOOP(LOAD, X, PRED)                                                       \
    for (int64_t w = 0; w < words_full; w++) {                                     \
        uint64_t bits = 0;                                                         \
        for (int i = 0; i < 64; i += 4)                                            \
            bits |= (uint64_t)_mm256_movemask_pd(_mm256_cmp_pd(LOAD(X + 64 * w + i), k, PRED)) << i; \
        out[w] = bits;                                                             \
    }
#define FSWITCH(LOAD, X)                                   \
    switch (op) {                                          \
        case CMP_EQ: FLOOP(LOAD, X, _CMP_EQ_OQ) break;     \
        case CMP_NE: FLOOP(LOAD, X, _CMP_NEQ_UQ) break;    \
        case CMP_LT: FLOOP(LOAD, X, _CMP_LT_OQ) break;     \
        case CMP_LE: FLOOP(LOAD, X, _CMP_LE_OQ) break;     \
        case CMP_GT: FLOOP(LOAD, X, _CMP_GT_OQ) break;     \
        default: FLOOP(LOAD, X, _CMP_GE_OQ) break;         \
    }
    if (dtype == T_F64 || dtype == T_F32) {
        __m256d k = _mm256_set1_pd(fk);
        if (dtype == T_F64) {
            FSWITCH(LOAD_PD, (const double *)vp)
        } else {
            FSWITCH(LOAD_PS_PD, (const float *)vp)
        }
        return 1;
    }
    /* Integers: = and != by equality, the others by "greater than" (negated for <=, >=, !=). */
#define ICMP(CTYPE, STEP, SET1, EQ, GT, MASK)                                    \
    do {                                                                         \
        __m256i k = SET1;                                                        \
        for (int64_t w = 0; w < words_full; w++) {                               \
            const CTYPE *x = (const CTYPE *)vp + 64 * w;                         \
            uint64_t bits = 0;                                                   \
            for (int i = 0; i < 64; i += STEP) {                                 \
                __m256i v = LOAD_SI(x + i), r;                                   \
                if (op == CMP_EQ || op == CMP_NE) r = EQ(v, k);                  \
                else if (op == CMP_GT || op == CMP_LE) r = GT(v, k);             \
                else r = GT(k, v);                                               \
                bits |= (uint64_t)(uint32_t)MASK(r) << i;                        \
            }                                                                    \
            out[w] = (op == CMP_NE || op == CMP_LE || op == CMP_GE) ? ~bits : bits; \
        }                                                                        \
    } while (0)
#define MASK64(r) _mm256_movemask_pd(_mm256_castsi256_pd(r))
#define MASK32(r) _mm256_movemask_ps(_mm256_castsi256_ps(r))
    if (dtype == T_I64) {
        ICMP(int64_t, 4, _mm256_set1_epi64x(ik), _mm256_cmpeq_epi64, _mm256_cmpgt_epi64, MASK64);
        return 1;
    }
    if (dtype == T_I32) {
        ICMP(int32_t, 8, _mm256_set1_epi32((int32_t)ik), _mm256_cmpeq_epi32, _mm256_cmpgt_epi32, MASK32);
        return 1;
    }
    return 0;
}

/* int32 dictionary codes against up to 4 codes (T: any of them, negated:
 * none of them). */
__attribute__((target("avx2"))) static void codes_avx2(const int32_t *v, int64_t words_full, const int64_t *codes,
                                                       int64_t ncodes, int negate, uint64_t *out) {
    __m256i k0 = _mm256_set1_epi32((int32_t)codes[0]), k1 = _mm256_set1_epi32((int32_t)codes[1]);
    __m256i k2 = _mm256_set1_epi32((int32_t)codes[2]), k3 = _mm256_set1_epi32((int32_t)codes[3]);
    for (int64_t w = 0; w < words_full; w++) {
        const int32_t *x = v + 64 * w;
        uint64_t bits = 0;
        for (int i = 0; i < 64; i += 8) {
            __m256i c = LOAD_SI(x + i);
            __m256i r = _mm256_setzero_si256();
            if (ncodes > 0) r = _mm256_cmpeq_epi32(c, k0);
            if (ncodes > 1) r = _mm256_or_si256(r, _mm256_cmpeq_epi32(c, k1));
            if (ncodes > 2) r = _mm256_or_si256(r, _mm256_cmpeq_epi32(c, k2));
            if (ncodes > 3) r = _mm256_or_si256(r, _mm256_cmpeq_epi32(c, k3));
            bits |= (uint64_t)(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(r)) << i;
        }
        out[w] = negate ? ~bits : bits;
    }
}
#endif

/* Integer columns compare in their own type (the bound was brought into it
 * by Python), floats as float64: NaN compares false except with != . */
static void compare_leaf(const Ctx *c, const int64_t *node, const int64_t *slot, uint64_t *out) {
    int64_t op = node[3], dtype = node[5];
    int64_t ik = node[4];
    double fk;
    memcpy(&fk, &node[4], 8);
#ifdef SEGQL_AVX2
    if (!node[7] && c->rows - c->row >= 64 * c->words && __builtin_cpu_supports("avx2")) {
        static const int64_t width[] = {1, 2, 4, 8, 1, 2, 4, 4, 8};
        const uint8_t *vp = (const uint8_t *)(intptr_t)slot[0] + c->row * width[dtype];
        if (compare_avx2(vp, c->words, op, dtype, ik, fk, out)) return;
    }
#endif
    switch (dtype) {
        case T_I8: { int8_t k = (int8_t)ik; CMP_OPS(int8_t, int8_t, k) } break;
        case T_I16: { int16_t k = (int16_t)ik; CMP_OPS(int16_t, int16_t, k) } break;
        case T_I32: { int32_t k = (int32_t)ik; CMP_OPS(int32_t, int32_t, k) } break;
        case T_I64: { int64_t k = ik; CMP_OPS(int64_t, int64_t, k) } break;
        case T_U8: { uint8_t k = (uint8_t)ik; CMP_OPS(uint8_t, uint8_t, k) } break;
        case T_U16: { uint16_t k = (uint16_t)ik; CMP_OPS(uint16_t, uint16_t, k) } break;
        case T_U32: { uint32_t k = (uint32_t)ik; CMP_OPS(uint32_t, uint32_t, k) } break;
        case T_F32: { double k = fk; CMP_OPS(float, double, k) } break;
        default: { double k = fk; CMP_OPS(double, double, k) } break;
    }
}

/* Dictionary codes through a per-code table (bit 0: true, bit 1: false); a
 * code out of the table (a null slot's code may be anything) reads 0. */
#define DICT_LOOP(CTYPE)                                                          \
    do {                                                                          \
        const CTYPE *v = (const CTYPE *)(intptr_t)slot[0] + c->row;                \
        for (int64_t w = 0; w < c->words; w++) {                                  \
            const CTYPE *x = v + 64 * w;                                          \
            int64_t n = word_rows(c, w);                                          \
            for (int i = 0; i < 64; i++) {                                        \
                uint64_t code = i < n ? (uint64_t)(int64_t)x[i] : (uint64_t)size; \
                hit[i] = code < (uint64_t)size ? table[code] : 0;                 \
            }                                                                     \
            uint64_t t = 0, f = 0;                                                \
            for (int k = 0; k < 8; k++) {                                         \
                uint64_t x8;                                                      \
                memcpy(&x8, hit + 8 * k, 8);                                      \
                t |= (((x8 & 0x0101010101010101ULL) * 0x0102040810204080ULL) >> 56) << (8 * k); \
                f |= ((((x8 >> 1) & 0x0101010101010101ULL) * 0x0102040810204080ULL) >> 56) << (8 * k); \
            }                                                                     \
            tout[w] = t;                                                          \
            if (fout) fout[w] = f;                                                \
        }                                                                         \
    } while (0)

/* slot[4]: a descriptor (int64): table size, table address, few codes (0:
 * none, 1: true = any of codes, 2: true = none of codes), how many (up to 4),
 * the codes, whether false = ~true for every code. */
static void dict_leaf(const Ctx *c, const int64_t *node, const int64_t *slot, uint64_t *tout, uint64_t *fout) {
    const int64_t *desc = (const int64_t *)(intptr_t)slot[4];
    int64_t size = desc[0];
    const uint8_t *table = (const uint8_t *)(intptr_t)desc[1];
#ifdef SEGQL_AVX2
    if (!node[7] && desc[2] && node[5] == 4 && (!fout || desc[8]) && c->rows - c->row >= 64 * c->words &&
        __builtin_cpu_supports("avx2")) {
        codes_avx2((const int32_t *)(intptr_t)slot[0] + c->row, c->words, desc + 4, desc[3], desc[2] == 2, tout);
        if (fout)
            for (int64_t w = 0; w < c->words; w++) fout[w] = ~tout[w];
        return;
    }
#endif
    uint8_t hit[64];
    switch (node[5]) {
        case 1: DICT_LOOP(int8_t); break;
        case 2: DICT_LOOP(int16_t); break;
        default: DICT_LOOP(int32_t); break;
    }
}

/* ---------------------------------------------------------------- strings */
/* Whether k bytes at a and b are equal (inline: most runs differ early). */
static inline int same(const uint8_t *a, const uint8_t *b, int64_t k) {
    for (; k >= 8; a += 8, b += 8, k -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return 0;
    }
    for (; k > 0; k--)
        if (*a++ != *b++) return 0;
    return 1;
}

static int contains(const uint8_t *hay, int64_t n, const uint8_t *needle, int64_t k) {
    if (k == 0) return 1;
    if (k > n) return 0;
    const uint8_t *end = hay + n - k + 1;
    const uint8_t *p = hay;
    while (p < end) {
        const uint8_t *q = memchr(p, needle[0], (size_t)(end - p));
        if (q == NULL) return 0;
        if (same(q, needle, k)) return 1;
        p = q + 1;
    }
    return 0;
}

/* One row's test against one needle of 1-16 bytes (not contains), compared
 * as one or two 8-byte words, no call and no loop; `size`: the data's size,
 * so that a word read stays inside it.  Inlined with constant `kind`, `wide`
 * and `longer` (k1 >= 8): one loop per shape (decisions 291). */
static inline __attribute__((always_inline)) uint64_t fast_row(const uint8_t *data, int64_t size,
                                                               const int32_t *o32, const int64_t *o64, int64_t r,
                                                               int kind, int wide, int longer, int64_t k1,
                                                               uint64_t n1, uint64_t n2, uint64_t low) {
    int64_t start = wide ? o64[r] : (int64_t)o32[r];
    int64_t end = wide ? o64[r + 1] : (int64_t)o32[r + 1];
    int64_t n = end - start;
    /* equality branch-free: a row of another length reads the data's first bytes */
    int ok = kind == S_EQUAL ? n == k1 : n >= k1;
    int64_t at = ok ? (kind == S_SUFFIX ? end - k1 : start) : 0;
    uint64_t x, y;
    if (longer) {
        memcpy(&x, data + at, 8);
        memcpy(&y, data + at + k1 - 8, 8);
        return (uint64_t)(ok & (x == n1) & (y == n2));
    }
    int tail = at + 8 > size; /* the last bytes of the data: the word ending at the run's end */
    memcpy(&x, data + (tail ? at + k1 - 8 : at), 8);
    return (uint64_t)(ok & (((x >> (tail ? 8 * (8 - k1) : 0)) & low) == n1));
}

static inline __attribute__((always_inline)) void fast_words(const Ctx *c, const uint64_t *care,
                                                             const uint64_t *valid, uint64_t *out, int negated,
                                                             const uint8_t *data, int64_t size, const int32_t *o32,
                                                             const int64_t *o64, int kind, int wide, int longer,
                                                             int64_t k1, uint64_t n1, uint64_t n2, uint64_t low) {
    for (int64_t w = 0; w < c->words; w++) {
        uint64_t todo = row_mask(c, w);
        if (care) todo &= care[w];
        if (valid) todo &= valid[w];
        uint64_t bits = 0;
        int64_t base = 64 * w;
        if (todo == ~(uint64_t)0) { /* every row: a straight loop the compiler can schedule */
            for (int i = 0; i < 64; i++)
                bits |= fast_row(data, size, o32, o64, base + i, kind, wide, longer, k1, n1, n2, low) << i;
        } else {
            while (todo) {
                int i = __builtin_ctzll(todo);
                todo &= todo - 1;
                bits |= fast_row(data, size, o32, o64, base + i, kind, wide, longer, k1, n1, n2, low) << i;
            }
        }
        out[w] = negated ? ~bits : bits;
    }
}

/* A plain string column's test of the rows set in `care` (NULL: every row):
 * needles are (address, length) pairs; equality is any of them. */
static void string_leaf(const Ctx *c, const int64_t *node, const int64_t *slot, const uint64_t *care,
                        const uint64_t *valid, uint64_t *out) {
    const int64_t *needles = (const int64_t *)(intptr_t)node[4];
    int64_t count = node[5], kind = node[6] & 3, negated = (node[6] >> 2) & 1, wide = node[3];
    const uint8_t *data = (const uint8_t *)(intptr_t)slot[4];
    const int32_t *o32 = (const int32_t *)(intptr_t)slot[0] + c->row;
    const int64_t *o64 = (const int64_t *)(intptr_t)slot[0] + c->row;
    /* One needle of 1-16 bytes (not contains): compared as one or two
     * 8-byte words, no call and no loop (slot[5]: the data's size, so that a
     * word read stays inside it). */
    const uint8_t *one = (const uint8_t *)(intptr_t)needles[0];
    int64_t k1 = count == 1 ? needles[1] : 0, size = slot[5];
    int fast = count == 1 && kind != S_CONTAINS && k1 >= 1 && k1 <= 16 && size >= 16;
    uint64_t n1 = 0, n2 = 0, low = 0;
    if (fast && k1 >= 8) {
        memcpy(&n1, one, 8);
        memcpy(&n2, one + k1 - 8, 8);
    } else if (fast) {
        for (int64_t j = 0; j < k1; j++) n1 |= (uint64_t)one[j] << (8 * j);
        low = ((uint64_t)1 << (8 * k1)) - 1;
    }
    if (fast) {
        int longer = k1 >= 8;
#define FAST(KIND, WIDE, LONGER) \
    fast_words(c, care, valid, out, (int)negated, data, size, o32, o64, KIND, WIDE, LONGER, k1, n1, n2, low)
#define FAST_KIND(KIND)                                                     \
    do {                                                                    \
        if (wide) {                                                         \
            if (longer) FAST(KIND, 1, 1); else FAST(KIND, 1, 0);            \
        } else {                                                            \
            if (longer) FAST(KIND, 0, 1); else FAST(KIND, 0, 0);            \
        }                                                                   \
    } while (0)
        if (kind == S_EQUAL) FAST_KIND(S_EQUAL);
        else if (kind == S_PREFIX) FAST_KIND(S_PREFIX);
        else FAST_KIND(S_SUFFIX);
#undef FAST_KIND
#undef FAST
        return;
    }
    for (int64_t w = 0; w < c->words; w++) {
        uint64_t todo = row_mask(c, w);
        if (care) todo &= care[w];
        if (valid) todo &= valid[w];
        uint64_t bits = 0;
        while (todo) {
            int i = __builtin_ctzll(todo);
            todo &= todo - 1;
            int64_t r = 64 * w + i;
            int64_t start = wide ? o64[r] : (int64_t)o32[r];
            int64_t end = wide ? o64[r + 1] : (int64_t)o32[r + 1];
            int64_t n = end - start;
            const uint8_t *s = data + start;
            int hit = 0;
            for (int64_t j = 0; j < count && !hit; j++) {
                const uint8_t *needle = (const uint8_t *)(intptr_t)needles[2 * j];
                int64_t k = needles[2 * j + 1];
                switch (kind) {
                    case S_EQUAL: hit = n == k && same(s, needle, k); break;
                    case S_PREFIX: hit = n >= k && same(s, needle, k); break;
                    case S_SUFFIX: hit = n >= k && same(s + n - k, needle, k); break;
                    default: hit = contains(s, n, needle, k); break;
                }
            }
            bits |= (uint64_t)hit << i;
        }
        out[w] = negated ? ~bits : bits;
    }
}

/* ------------------------------------------------------------------ tree */
/* The node's true mask into t, its false mask into f when it is nullable and
 * asked for (F_WANTF); care: the rows that matter (NULL: all). */
static void eval_node(const Ctx *c, int64_t index, uint64_t *t, uint64_t *f, const uint64_t *care, int64_t depth) {
    const int64_t *node = c->prog + NODE_WORDS * index;
    int64_t op = node[0], flags = node[1];
    int hasf = (flags & F_NULLABLE) && (flags & F_WANTF);
    int64_t nw = c->words;
    uint64_t *tmp_t = c->scratch + (3 * depth) * BLOCK_WORDS;
    uint64_t *tmp_f = tmp_t + BLOCK_WORDS;
    uint64_t *tmp_c = tmp_f + BLOCK_WORDS;
    if (op >= OP_COMPARE) {
        const int64_t *slot = c->slots + SLOT_WORDS * node[2];
        uint64_t *valid = NULL;
        if (slot[2]) {
            valid = tmp_c;
            slot_bits(c, slot, 2, valid);
        }
        switch (op) {
            case OP_COMPARE: compare_leaf(c, node, slot, t); break;
            case OP_BOOL: slot_bits(c, slot, 0, t); break;
            case OP_NULL: {
                int64_t negated = node[3];
                for (int64_t w = 0; w < nw; w++) t[w] = valid ? (negated ? valid[w] : ~valid[w]) : (negated ? ~(uint64_t)0 : 0);
                return; /* never null */
            }
            case OP_CONST:
                for (int64_t w = 0; w < nw; w++) t[w] = node[3] ? ~(uint64_t)0 : 0;
                break;
            case OP_DICT: dict_leaf(c, node, slot, t, hasf ? f : NULL); break;
            default: string_leaf(c, node, slot, care, valid, t); break;
        }
        if (op == OP_DICT) {
            if (hasf) {
                for (int64_t w = 0; w < nw; w++) {
                    uint64_t v = valid ? valid[w] : ~(uint64_t)0;
                    t[w] &= v;
                    f[w] &= v;
                }
            } else if (valid) {
                for (int64_t w = 0; w < nw; w++) t[w] &= valid[w];
            }
            return;
        }
        if (valid) {
            for (int64_t w = 0; w < nw; w++) {
                if (hasf) f[w] = ~t[w] & valid[w];
                t[w] &= valid[w];
            }
        } else if (hasf) {
            for (int64_t w = 0; w < nw; w++) f[w] = ~t[w];
        }
        return;
    }
    if (op == OP_NOT || op == OP_FALSE) {
        const int64_t *child = c->prog + NODE_WORDS * node[2];
        int child_f = (child[1] & F_NULLABLE) && (child[1] & F_WANTF);
        eval_node(c, node[2], tmp_t, tmp_f, care, depth + 1);
        for (int64_t w = 0; w < nw; w++) {
            uint64_t ct = tmp_t[w], cf = child_f ? tmp_f[w] : ~ct;
            t[w] = cf;
            if (hasf) f[w] = ct; /* only "not" is nullable */
        }
        return;
    }
    if (op == OP_TRUE) {
        eval_node(c, node[2], t, tmp_f, care, depth + 1);
        return;
    }
    /* and / or */
    const int64_t *kids = c->prog + node[2];
    int64_t nkids = node[3];
    int is_and = op == OP_AND;
    const int64_t *first = c->prog + NODE_WORDS * kids[0];
    int acc_f = (first[1] & F_NULLABLE) && (first[1] & F_WANTF); /* f holds the chain's false mask */
    eval_node(c, kids[0], t, f, care, depth + 1);
    for (int64_t k = 1; k < nkids; k++) {
        const int64_t *child = c->prog + NODE_WORDS * kids[k];
        const uint64_t *child_care = NULL;
        if (child[1] & F_COSTLY) {
            for (int64_t w = 0; w < nw; w++) {
                uint64_t still;
                if (is_and) still = (acc_f && (flags & F_WANTF)) ? ~f[w] : t[w];
                else still = ~t[w];
                tmp_c[w] = care ? (still & care[w]) : still;
            }
            child_care = tmp_c;
        }
        int child_f = (child[1] & F_NULLABLE) && (child[1] & F_WANTF);
        eval_node(c, kids[k], tmp_t, tmp_f, child_care, depth + 1);
        if (hasf) {
            for (int64_t w = 0; w < nw; w++) {
                uint64_t af = acc_f ? f[w] : ~t[w];
                uint64_t cf = child_f ? tmp_f[w] : ~tmp_t[w];
                f[w] = is_and ? (af | cf) : (af & cf);
            }
            acc_f = 1;
        }
        if (is_and) {
            for (int64_t w = 0; w < nw; w++) t[w] &= tmp_t[w];
        } else {
            for (int64_t w = 0; w < nw; w++) t[w] |= tmp_t[w];
        }
    }
    if (hasf && !acc_f) {
        for (int64_t w = 0; w < nw; w++) f[w] = ~t[w];
    }
}

/* nbits (1-64) of `word` at bit `pos` of `out` (the other bits kept). */
static inline void put_bits(uint64_t *out, int64_t pos, uint64_t word, int64_t nbits) {
    uint64_t keep = nbits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << nbits) - 1);
    word &= keep;
    int64_t at = pos >> 6, sh = pos & 63;
    if (sh == 0 && nbits == 64) {
        out[at] = word;
        return;
    }
    out[at] = (out[at] & ~(keep << sh)) | (word << sh);
    if (sh && sh + nbits > 64) {
        int64_t rest = sh + nbits - 64;
        uint64_t keep2 = ((uint64_t)1 << rest) - 1;
        out[at + 1] = (out[at + 1] & ~keep2) | (word >> (64 - sh));
    }
}

/* The values (`width` bytes each) of the rows whose bit is set in `word`
 * (row i at values + i * width) into `out` from value `n` on. */
static inline void select_bits(uint64_t word, const uint8_t *values, int64_t width, uint8_t *out, int64_t n) {
    while (word) {
        int64_t r = __builtin_ctzll(word);
        word &= word - 1;
        switch (width) {
            case 8: memcpy(out + 8 * n, values + 8 * r, 8); break;
            case 4: memcpy(out + 4 * n, values + 4 * r, 4); break;
            case 2: memcpy(out + 2 * n, values + 2 * r, 2); break;
            default: out[n] = values[r]; break;
        }
        n++;
    }
}

/* As select_bits, writing only the values before the `cap`-th (the others
 * are counted, not written: the place left for them was too small). */
static void select_bits_capped(uint64_t word, const uint8_t *values, int64_t width, uint8_t *out, int64_t cap,
                               int64_t n) {
    while (word && n < cap) {
        int64_t r = __builtin_ctzll(word);
        word &= word - 1;
        memcpy(out + width * n, values + width * r, (size_t)width);
        n++;
    }
}

/* Run the tree (root node `root`) over `npieces` pieces; a piece is
 * PIECE_HEAD words (its first row in the output, its rows) then `nslots`
 * slots of SLOT_WORDS words: (values address, values bit offset, validity
 * address or 0, validity bit offset, data address, data length).  Writes the
 * root's truth into `true_out` (when not NULL) and its validity into
 * `valid_out` (when not NULL: true | false) at each piece's rows; returns
 * the number of true rows.  `scratch`: 3 * BLOCK_WORDS * (depth + 2) words.
 * Both outputs NULL: only the count.  `select_out` not NULL: the values
 * (`width` bytes each, read at slot `select` from the piece's first row) of
 * the true rows, in row order, are written there as the rows are decided
 * (a segment's member keys with no bitmap in between), at most `cap` of
 * them (the count goes on). */
SEGQL_EXPORT int64_t segql_fused_run(const int64_t *prog, int64_t root, const int64_t *pieces, int64_t npieces,
                                     int64_t nslots, uint64_t *true_out, uint64_t *valid_out, uint64_t *scratch,
                                     int64_t depth, int64_t select, int64_t width, uint8_t *select_out, int64_t cap) {
    int64_t total = 0;
    uint64_t *t = scratch;
    uint64_t *f = scratch + BLOCK_WORDS;
    Ctx c;
    c.prog = prog;
    c.scratch = scratch + 3 * BLOCK_WORDS;
    c.depth_max = depth;
    const int64_t *rootnode = prog + NODE_WORDS * root;
    int root_f = (rootnode[1] & F_NULLABLE) && (rootnode[1] & F_WANTF);
    for (int64_t p = 0; p < npieces; p++) {
        const int64_t *piece = pieces + p * (PIECE_HEAD + SLOT_WORDS * nslots);
        int64_t at = piece[0];
        c.rows = piece[1];
        c.slots = piece + PIECE_HEAD;
        for (c.row = 0; c.row < c.rows; c.row += BLOCK_ROWS) {
            int64_t left = c.rows - c.row;
            c.words = left >= BLOCK_ROWS ? BLOCK_WORDS : (left + 63) / 64;
            eval_node(&c, root, t, f, NULL, 0);
            for (int64_t w = 0; w < c.words; w++) {
                int64_t n = word_rows(&c, w);
                uint64_t keep = row_mask(&c, w);
                uint64_t tw = t[w] & keep;
                if (select_out && tw) {
                    const uint8_t *values = (const uint8_t *)(intptr_t)c.slots[SLOT_WORDS * select] +
                                            (c.row + 64 * w) * width;
                    if (total + __builtin_popcountll(tw) <= cap)
                        select_bits(tw, values, width, select_out, total);
                    else
                        select_bits_capped(tw, values, width, select_out, cap, total);
                }
                total += __builtin_popcountll(tw);
                int64_t pos = at + c.row + 64 * w;
                if (true_out) put_bits(true_out, pos, tw, n);
                if (valid_out) put_bits(valid_out, pos, root_f ? (tw | f[w]) : keep, n);
            }
        }
    }
    return total;
}

/* The values (`width` bytes each) of the rows whose bit is set in `bits`
 * (from bit `bit`, `rows` rows), in row order, into `out`; returns how many. */
SEGQL_EXPORT int64_t segql_select_values(const uint8_t *bits, int64_t bit, int64_t rows, const uint8_t *values,
                                         int64_t width, uint8_t *out) {
    const uint8_t *base = bits + (bit >> 3);
    int64_t sh = bit & 7, n = 0;
    for (int64_t w = 0; 64 * w < rows; w++) {
        int64_t left = rows - 64 * w;
        int64_t nbits = left >= 64 ? 64 : left;
        uint64_t word = load_bits(base, sh, w, nbits);
        if (nbits < 64) word &= ((uint64_t)1 << nbits) - 1;
        select_bits(word, values + 64 * w * width, width, out, n);
        n += __builtin_popcountll(word);
    }
    return n;
}
