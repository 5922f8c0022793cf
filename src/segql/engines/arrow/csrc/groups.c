/* Related-table aggregates in one pass (docs/architecture.md, "Related
 * aggregates in C"; docs/decisions.md 270-279).  The NumPy twins are in
 * aggregate.py (the blockwise path and Groups), keys.py (KeyIndex) and
 * exactsum.py (group_fsum): the same answers, bit for bit.
 *
 * segql_groups_pass reads a range of a related table's rows and, per row:
 *  1. evaluates the `where` filters: each filter is the AND of leaves, a leaf
 *     a column compared with a constant (integers, dates, timestamps in the
 *     column's own unit, doubles) or a boolean column (a keep-bitmap Python
 *     computed); a null fails the leaf (SQL's "unknown" keeps no row);
 *  2. looks its key up in the dense direct-address table (keys.KeyIndex):
 *     rows with a null key, a key outside the table or a slot without a
 *     profile are skipped;
 *  3. adds the row to each aggregate whose filter it passes, at the row's
 *     profile position: a count (of rows, or of non-null values), an exact
 *     sum of doubles or integers in a 128-bit integer, a min or max.
 * Rows are handled a block at a time (BLOCK rows: filter bits, then keys,
 * then each aggregate), so each loop is tight and type dispatch is per block.
 *
 * Exact sums.  A finite double is m * 2**e with an integer 0 < m < 2**53.
 * Python chooses a window [lo, hi) for the column (hi - lo <= 126 - bits of
 * the table's row count): every value whose lowest set bit is at 2**lo or
 * above and whose magnitude is below 2**hi is the integer m * 2**(e - lo)
 * times 2**lo, below 2**(hi - lo) in magnitude, and is added to its group's
 * int128 exactly.  A group holds at most R rows (R the rows of the whole
 * table, R < 2**(126 - (hi - lo)) by the window's choice), so its sum stays
 * below R * 2**(hi - lo) <= 2**126 in magnitude: no overflow, in any order
 * of the rows (so several threads give the same bits).  The int128 is kept
 * as two 64-bit words (low, high) side by side: one cache line per update.  A value outside the window is
 * counted as a misfit (the caller then takes the NumPy path).  NaN and infinities set a group's
 * flags (1: NaN, 2: +inf, 4: -inf), zeros add nothing.  segql_groups_round
 * rounds each group's integer times 2**lo once to the nearest double, ties
 * to even (subnormals and overflow included): math.fsum's result, which the
 * NumPy twin computes too, so the bits agree.  Integer sums add int64 values
 * into the int128 (|sum| < 2**63 * R < 2**127 for any R < 2**63: exact). */
#include <math.h>
#include <string.h>

#include "segql_kernels.h"

typedef __int128 i128 __attribute__((aligned(8)));
typedef unsigned __int128 u128;

enum { T_I8 = 1, T_I16, T_I32, T_I64, T_U8, T_U16, T_U32, T_F64, T_BOOL };
enum { OP_LT = 0, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE };
enum { K_COUNT = 0, K_SUM_F, K_SUM_I, K_MIN_F, K_MAX_F, K_MIN_I, K_MAX_I };

/* A column's values from row `offset` on (Arrow's buffers: `data` the
 * values, or the bits of a boolean column; `valid` the validity bitmap or
 * NULL when no value is null). */
typedef struct {
    const void *data;
    const uint8_t *valid;
    int64_t offset;
    int32_t type;
    int32_t pad;
} segql_column;

/* One leaf of a filter: `column op constant` (ivalue for integer columns,
 * fvalue for doubles), or a boolean column (op ignored). */
typedef struct {
    segql_column column;
    int32_t op;
    int32_t filter; /* the filter (bit 0..31) it belongs to */
    int64_t ivalue;
    double fvalue;
} segql_leaf;

/* One aggregate: its accumulators have one slot per profile row. */
typedef struct {
    segql_column value; /* data NULL: count(rows) */
    int32_t kind;
    int32_t filter; /* -1: every row */
    void *out;      /* int64 counts; sums: their low 64 bits */
    int64_t *high;  /* sums: their high 64 bits, interleaved with the low ones (group p's
                     * at out[2p], high[2p] with high = out + 1: one cache line per update) */
    uint8_t *flags; /* sums of doubles: 1 NaN, 2 +inf, 4 -inf; min/max: 1 a value seen, 2 a NaN */
    int32_t lo, hi; /* sums of doubles: the window */
} segql_agg;

#define BLOCK 4096
/* Accumulators are prefetched this many kept rows ahead (random lines of
 * arrays far larger than the caches: the loads overlap instead of stalling). */
#define AHEAD 16

static inline int bit(const uint8_t *bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

static inline int64_t int_at(const segql_column *c, int64_t i) {
    const int64_t k = c->offset + i;
    switch (c->type) {
        case T_I8: return ((const int8_t *)c->data)[k];
        case T_I16: return ((const int16_t *)c->data)[k];
        case T_I32: return ((const int32_t *)c->data)[k];
        case T_U8: return ((const uint8_t *)c->data)[k];
        case T_U16: return ((const uint16_t *)c->data)[k];
        case T_U32: return ((const uint32_t *)c->data)[k];
        default: return ((const int64_t *)c->data)[k];
    }
}

/* fb[i] loses bit `filter` where the test fails, for rows start..start+n-1. */
#define CMP_LOOP(CT, V, CONST)                                                     \
    do {                                                                           \
        const CT *v = (const CT *)c->data + c->offset + start;                     \
        switch (leaf->op) {                                                        \
            case OP_LT: for (int i = 0; i < n; i++) fb[i] &= ((V) < (CONST)) ? all : clear; break; \
            case OP_LE: for (int i = 0; i < n; i++) fb[i] &= ((V) <= (CONST)) ? all : clear; break; \
            case OP_GT: for (int i = 0; i < n; i++) fb[i] &= ((V) > (CONST)) ? all : clear; break; \
            case OP_GE: for (int i = 0; i < n; i++) fb[i] &= ((V) >= (CONST)) ? all : clear; break; \
            case OP_EQ: for (int i = 0; i < n; i++) fb[i] &= ((V) == (CONST)) ? all : clear; break; \
            default: for (int i = 0; i < n; i++) fb[i] &= ((V) != (CONST)) ? all : clear; break;   \
        }                                                                          \
    } while (0)

/* Compiled twice, the AVX2 version chosen at load time where the CPU has it
 * (the comparisons of a block then run 4 or 8 values at a time); only where
 * the loader resolves such clones (GCC, x86-64, glibc's ifuncs). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SEGQL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SEGQL_CLONES
#endif

SEGQL_CLONES
static void apply_leaf(const segql_leaf *leaf, int64_t start, int n, uint32_t *fb) {
    const segql_column *c = &leaf->column;
    const uint32_t all = 0xFFFFFFFFu, clear = ~(1u << leaf->filter);
    const int64_t k = leaf->ivalue;
    const double f = leaf->fvalue;
    switch (c->type) {
        case T_I8: CMP_LOOP(int8_t, (int64_t)v[i], k); break;
        case T_I16: CMP_LOOP(int16_t, (int64_t)v[i], k); break;
        case T_I32: CMP_LOOP(int32_t, (int64_t)v[i], k); break;
        case T_I64: CMP_LOOP(int64_t, v[i], k); break;
        case T_U8: CMP_LOOP(uint8_t, (int64_t)v[i], k); break;
        case T_U16: CMP_LOOP(uint16_t, (int64_t)v[i], k); break;
        case T_U32: CMP_LOOP(uint32_t, (int64_t)v[i], k); break;
        case T_F64: CMP_LOOP(double, v[i], f); break;
        case T_BOOL: {
            const uint8_t *bits = (const uint8_t *)c->data;
            const int64_t first = c->offset + start;
            for (int i = 0; i < n; i++) fb[i] &= bit(bits, first + i) ? all : clear;
            break;
        }
        default: for (int i = 0; i < n; i++) fb[i] &= clear;
    }
    if (c->valid != NULL) {
        const int64_t first = c->offset + start;
        for (int i = 0; i < n; i++) fb[i] &= bit(c->valid, first + i) ? all : clear;
    }
}

/* The kept rows of a block: index in the block, profile position, filter bits. */
typedef struct {
    int32_t row[BLOCK];
    int32_t pos[BLOCK];
    uint32_t fb[BLOCK];
    int m;
} kept_rows;

/* Keys looked up without branches on the data (a mispredicted branch per
 * kept row cost more than the loads): the candidate rows first (those some
 * filter keeps, or all), then their keys gathered in a loop of independent
 * loads (the rows are sparse: most of their cache lines miss, and a loop
 * that only loads keeps many misses in flight), then their slots, prefetched
 * AHEAD rows ahead from the gathered keys, kept where a profile is. */
#define GATHER_KEYS(CT)                                                             \
    do {                                                                            \
        const CT *keys = (const CT *)key->data + key->offset + start;               \
        for (int j = 0; j < c; j++) off[j] = (uint64_t)(int64_t)keys[out->row[j]] - (uint64_t)base; \
    } while (0)

static void lookup(const segql_column *key, const int32_t *slots, int64_t base, int64_t size, int64_t start, int n,
                   const uint32_t *fb, int skip_empty, kept_rows *out) {
    int c = 0, m = 0;
    if (skip_empty) {
        for (int i = 0; i < n; i++) {
            out->row[c] = i;
            c += fb[i] != 0;
        }
    } else {
        for (int i = 0; i < n; i++) out->row[i] = i;
        c = n;
    }
    if (key->valid != NULL) { /* null keys drop out */
        int v = 0;
        for (int j = 0; j < c; j++) {
            const int i = out->row[j];
            out->row[v] = i;
            v += bit(key->valid, key->offset + start + i);
        }
        c = v;
    }
    uint64_t off[BLOCK];
    switch (key->type) {
        case T_I8: GATHER_KEYS(int8_t); break;
        case T_I16: GATHER_KEYS(int16_t); break;
        case T_I32: GATHER_KEYS(int32_t); break;
        case T_U8: GATHER_KEYS(uint8_t); break;
        case T_U16: GATHER_KEYS(uint16_t); break;
        case T_U32: GATHER_KEYS(uint32_t); break;
        default: GATHER_KEYS(int64_t); break;
    }
    int missing = 0;
    for (int j = 0; j < c; j++) {
        if (j + AHEAD < c && off[j + AHEAD] < (uint64_t)size) __builtin_prefetch(&slots[off[j + AHEAD]]);
        const uint64_t d = off[j];
        const int inside = d < (uint64_t)size;
        const int32_t p = slots[inside ? d : 0];
        out->pos[j] = inside ? p : -1;
        missing += !inside | (p < 0);
    }
    for (int j = 0; j < c; j++) out->fb[j] = fb[out->row[j]];
    if (missing) { /* rows without a profile drop out */
        for (int j = 0; j < c; j++) {
            out->row[m] = out->row[j];
            out->pos[m] = out->pos[j];
            out->fb[m] = out->fb[j];
            m += out->pos[j] >= 0;
        }
    } else {
        m = c;
    }
    out->m = m;
}

static inline int passes(const segql_agg *a, uint32_t fb) { return a->filter < 0 || ((fb >> a->filter) & 1u); }

static inline int value_valid(const segql_column *c, int64_t i) {
    return c->valid == NULL || bit(c->valid, c->offset + i);
}

/* Adds the double x to a group's integer sum (window [lo, hi)); 1 if x does not fit. */
static inline void add128(uint64_t *low, int64_t *high, i128 v) {
    const i128 sum = (i128)(((u128)(uint64_t)*high << 64) | *low) + v;
    *low = (uint64_t)sum;
    *high = (int64_t)(sum >> 64);
}

static inline i128 get128(const uint64_t *low, const int64_t *high, int64_t i) {
    return (i128)(((u128)(uint64_t)high[2 * i] << 64) | low[2 * i]);
}

static inline int add_double(uint64_t *low, int64_t *high, uint8_t *flags, double x, int lo, int hi) {
    uint64_t u;
    memcpy(&u, &x, 8);
    const int biased = (int)((u >> 52) & 0x7FF);
    const uint64_t frac = u & ((1ULL << 52) - 1);
    if (biased == 0x7FF) {
        *flags |= frac ? 1 : (u >> 63) ? 4 : 2;
        return 0;
    }
    if (biased == 0 && frac == 0) return 0; /* ±0.0 adds nothing */
    const uint64_t m = biased ? (frac | (1ULL << 52)) : frac;
    const int e = (biased ? biased : 1) - 1075;
    const int bottom = e + __builtin_ctzll(m);
    if (bottom < lo || e + 53 > hi) return 1;
    const int shift = e - lo;
    const i128 v = shift >= 0 ? (i128)((u128)m << shift) : (i128)(m >> -shift);
    add128(low, high, (u >> 63) ? -v : v);
    return 0;
}

static int64_t accumulate(const segql_agg *a, int64_t start, const kept_rows *k) {
    int64_t misfits = 0;
    const segql_column *v = &a->value;
    switch (a->kind) {
        case K_COUNT: {
            int64_t *out = (int64_t *)a->out;
            if (v->data == NULL && a->filter >= 0) {
                /* The positions of the rows that pass first (no branch), then only
                 * their counts touched: a nested filter keeps a third of the rows. */
                const int f = a->filter;
                int32_t taken[BLOCK];
                int c = 0;
                for (int j = 0; j < k->m; j++) {
                    taken[c] = k->pos[j];
                    c += (k->fb[j] >> f) & 1u;
                }
                for (int j = 0; j < c; j++) {
                    if (j + AHEAD < c) __builtin_prefetch(&out[taken[j + AHEAD]], 1);
                    out[taken[j]]++;
                }
            } else if (v->data == NULL) {
                for (int j = 0; j < k->m; j++) out[k->pos[j]]++;
            } else {
                for (int j = 0; j < k->m; j++)
                    out[k->pos[j]] += passes(a, k->fb[j]) & value_valid(v, start + k->row[j]);
            }
            break;
        }
        case K_SUM_F: {
            uint64_t *low = (uint64_t *)a->out;
            int64_t *high = a->high;
            const double *x = (const double *)v->data + v->offset + start;
            for (int j = 0; j < k->m; j++) {
                if (j + AHEAD < k->m) {
                    __builtin_prefetch(&low[2 * (int64_t)k->pos[j + AHEAD]], 1);
                }
                if (!passes(a, k->fb[j]) || !value_valid(v, start + k->row[j])) continue;
                const int32_t p = k->pos[j];
                misfits += add_double(&low[2 * (int64_t)p], &high[2 * (int64_t)p], &a->flags[p], x[k->row[j]], a->lo, a->hi);
            }
            break;
        }
        case K_SUM_I: {
            uint64_t *low = (uint64_t *)a->out;
            int64_t *high = a->high;
            for (int j = 0; j < k->m; j++)
                if (passes(a, k->fb[j]) && value_valid(v, start + k->row[j]))
                    add128(&low[2 * (int64_t)k->pos[j]], &high[2 * (int64_t)k->pos[j]], int_at(v, start + k->row[j]));
            break;
        }
        case K_MIN_F:
        case K_MAX_F: {
            /* NaN is the greatest float: flags 2 marks a NaN, the extreme holds the numbers'. */
            double *out = (double *)a->out;
            const double *x = (const double *)v->data + v->offset + start;
            const int is_min = a->kind == K_MIN_F;
            for (int j = 0; j < k->m; j++) {
                if (!passes(a, k->fb[j]) || !value_valid(v, start + k->row[j])) continue;
                const int32_t p = k->pos[j];
                const double y = x[k->row[j]];
                a->flags[p] |= 1;
                if (y != y) a->flags[p] |= 2;
                else if (is_min ? y < out[p] : y > out[p]) out[p] = y;
            }
            break;
        }
        case K_MIN_I:
        case K_MAX_I: {
            int64_t *out = (int64_t *)a->out;
            const int is_min = a->kind == K_MIN_I;
            for (int j = 0; j < k->m; j++) {
                if (!passes(a, k->fb[j]) || !value_valid(v, start + k->row[j])) continue;
                const int32_t p = k->pos[j];
                const int64_t y = int_at(v, start + k->row[j]);
                a->flags[p] |= 1;
                if (is_min ? y < out[p] : y > out[p]) out[p] = y;
            }
            break;
        }
        default: break;
    }
    return misfits;
}

/* One pass over `rows` related rows: the aggregates' accumulators updated
 * (they start as the caller filled them: zeros, or ±inf / int64 limits for
 * min/max).  `filters` has a bit for every filter some leaf belongs to;
 * with `all_filtered`, rows no filter keeps are not looked up.  Returns the
 * number of doubles outside their sum's window (0: every sum is exact). */
SEGQL_EXPORT int64_t segql_groups_pass(int64_t rows, const segql_column *key, const int32_t *slots, int64_t base,
                                       int64_t size, const segql_leaf *leaves, int32_t nleaves, uint32_t filters,
                                       int32_t all_filtered, const segql_agg *aggs, int32_t naggs) {
    uint32_t fb[BLOCK];
    kept_rows kept;
    int64_t misfits = 0;
    for (int64_t start = 0; start < rows; start += BLOCK) {
        const int n = (int)(rows - start < BLOCK ? rows - start : BLOCK);
        for (int i = 0; i < n; i++) fb[i] = filters;
        for (int l = 0; l < nleaves; l++) apply_leaf(&leaves[l], start, n, fb);
        lookup(key, slots, base, size, start, n, fb, all_filtered, &kept);
        for (int a = 0; a < naggs; a++) misfits += accumulate(&aggs[a], start, &kept);
    }
    return misfits;
}

/* Two threads or more (docs/decisions.md 275): each reads its range of rows
 * with segql_groups_emit, which keeps only the rows some aggregate takes, as
 * records (profile position, one bit per aggregate that takes the row: its
 * filter passes and its value is not null, and each value aggregate's value
 * as 8 bytes: doubles as they are, integers as int64), written from `m` on;
 * then each thread adds every record whose position is in its own range of
 * profile rows with segql_groups_apply.  The accumulators are shared (the
 * ranges do not overlap), so nothing is merged and no thread holds a copy. */
SEGQL_EXPORT int64_t segql_groups_emit(int64_t rows, const segql_column *key, const int32_t *slots, int64_t base,
                                       int64_t size, const segql_leaf *leaves, int32_t nleaves, uint32_t filters,
                                       int32_t all_filtered, const segql_agg *aggs, int32_t naggs, int64_t m,
                                       int32_t *out_pos, uint32_t *out_bits, void *const *out_values) {
    uint32_t fb[BLOCK];
    kept_rows kept;
    for (int64_t start = 0; start < rows; start += BLOCK) {
        const int n = (int)(rows - start < BLOCK ? rows - start : BLOCK);
        for (int i = 0; i < n; i++) fb[i] = filters;
        for (int l = 0; l < nleaves; l++) apply_leaf(&leaves[l], start, n, fb);
        lookup(key, slots, base, size, start, n, fb, all_filtered, &kept);
        /* The records first (position, bits), then each value gathered for
         * them in a loop of independent loads (see lookup). */
        int32_t picked[BLOCK];
        int r = 0;
        for (int j = 0; j < kept.m; j++) {
            uint32_t taken = 0;
            const int64_t row = start + kept.row[j];
            for (int a = 0; a < naggs; a++) {
                const segql_column *v = &aggs[a].value;
                taken |= (uint32_t)(passes(&aggs[a], kept.fb[j]) & (v->data == NULL || value_valid(v, row))) << a;
            }
            picked[r] = kept.row[j];
            out_pos[m + r] = kept.pos[j];
            out_bits[m + r] = taken;
            r += taken != 0;
        }
        for (int a = 0; a < naggs; a++) {
            const segql_column *v = &aggs[a].value;
            if (out_values[a] == NULL) continue;
            if (v->type == T_F64) {
                const double *x = (const double *)v->data + v->offset + start;
                double *o = (double *)out_values[a] + m;
                for (int j = 0; j < r; j++) o[j] = x[picked[j]];
            } else {
                int64_t *o = (int64_t *)out_values[a] + m;
                for (int j = 0; j < r; j++) o[j] = int_at(v, start + picked[j]);
            }
        }
        m += r;
    }
    return m;
}

/* Records 0..m-1 of segql_groups_emit added to the aggregates (aggregate a
 * takes a record when its bit a is set; its value column is the emitted
 * values) for the positions in [first, last); returns the misfits. */
SEGQL_EXPORT int64_t segql_groups_apply(int64_t m, const int32_t *pos, const uint32_t *bits, const segql_agg *aggs,
                                        int32_t naggs, int32_t first, int32_t last) {
    kept_rows kept;
    int64_t misfits = 0;
    for (int64_t start = 0; start < m; start += BLOCK) {
        const int n = (int)(m - start < BLOCK ? m - start : BLOCK);
        int k = 0;
        for (int i = 0; i < n; i++) {
            const int32_t p = pos[start + i];
            kept.row[k] = i;
            kept.pos[k] = p;
            kept.fb[k] = bits[start + i];
            k += (p >= first) & (p < last);
        }
        kept.m = k;
        for (int a = 0; a < naggs; a++) misfits += accumulate(&aggs[a], start, &kept);
    }
    return misfits;
}

/* x * 2**e, exactly when representable (x an integer below 2**54 whose
 * product has no bit below 2**-1074), else ±inf: one multiplication by a
 * power of two made from its bits in the normal range (ldexp per group cost
 * more than the rest of the rounding). */
static inline double scale2(double x, int e) {
    if (e < -1022 || e > 1023) return ldexp(x, e);
    const uint64_t bits = (uint64_t)(e + 1023) << 52;
    double p;
    memcpy(&p, &bits, 8);
    return x * p;
}

/* The double nearest to sum * 2**lo (ties to even), +0.0 for 0: bit by bit. */
static double round_scaled_bits(i128 sum, int lo) {
    if (sum == 0) return 0.0;
    const int negative = sum < 0;
    u128 mag = negative ? -(u128)sum : (u128)sum;
    const uint64_t top = (uint64_t)(mag >> 64);
    const int bits = top ? 128 - __builtin_clzll(top) : 64 - __builtin_clzll((uint64_t)mag);
    /* Bits below 2**-1074 (subnormals) or beyond 53 significant ones are rounded away. */
    int shift = bits - 53;
    if (-1074 - lo > shift) shift = -1074 - lo;
    double r;
    if (shift <= 0) {
        r = scale2((double)(uint64_t)mag, lo); /* exact below 2**53 (or ±inf beyond the range) */
    } else if (shift > bits) {
        r = 0.0; /* below half the smallest subnormal */
    } else {
        u128 q = shift >= 128 ? 0 : mag >> shift;
        const u128 rest = mag - (shift >= 128 ? 0 : q << shift);
        const u128 half = (u128)1 << (shift - 1);
        if (rest > half || (rest == half && (q & 1))) q++;
        r = scale2((double)(uint64_t)q, lo + shift); /* q <= 2**53: exact, or ±inf beyond the range */
    }
    return negative ? -r : r;
}

/* The same, faster: with lo >= -1022 every nonzero sum's double is normal
 * (|sum| >= 1), so the magnitude converted to double once (the compiler's
 * 128-bit conversion rounds to nearest, ties to even) and multiplied by
 * 2**lo, which is exact or overflows to ±inf, is that double; no branch on
 * the data (a sum of zero, a tie) as in the bitwise version, whose
 * mispredictions cost more than the arithmetic. */
static inline double round_scaled(i128 sum, int lo) {
    if (lo < -1022) return round_scaled_bits(sum, lo);
    const int negative = sum < 0;
    const u128 mag = negative ? -(u128)sum : (u128)sum;
    const double r = scale2((double)mag, lo);
    return negative ? -r : r;
}

/* Each group's exact sum (window lo; low and high words, interleaved: group
 * i's at low[2i], high[2i]) rounded once into out[i], its flags applied: NaN,
 * or +inf with -inf: NaN; +inf: inf; -inf: -inf. */
SEGQL_EXPORT void segql_groups_round(const uint64_t *low, const int64_t *high, const uint8_t *flags, int64_t n,
                                     int32_t lo, double *out) {
    for (int64_t i = 0; i < n; i++) {
        const i128 sum = get128(low, high, i);
        const uint8_t f = flags != NULL ? flags[i] : 0;
        double r;
        if (f == 0) r = round_scaled(sum, lo);
        else if ((f & 1) || (f & 6) == 6) r = NAN;
        else r = (f & 2) ? INFINITY : -INFINITY;
        out[i] = r;
    }
}

/* Integer sums (interleaved as for segql_groups_round) as int64 into out;
 * returns the first group whose sum does not fit, or -1. */
SEGQL_EXPORT int64_t segql_groups_int_sums(const uint64_t *low, const int64_t *high, int64_t n, int64_t *out) {
    for (int64_t i = 0; i < n; i++) {
        const i128 sum = get128(low, high, i);
        if (sum > (i128)INT64_MAX || sum < (i128)INT64_MIN) return i;
        out[i] = (int64_t)sum;
    }
    return -1;
}

/* The dense key index (keys.KeyIndex): slots[key - base] = first_row + i for
 * each non-null key (every key is in [base, base + size), checked by the
 * caller).  Writes only (a read of each slot before writing it stalled on
 * every miss); repeated keys are found by segql_dense_filled. */
SEGQL_EXPORT void segql_dense_build(const segql_column *keys, int64_t rows, int64_t base, int32_t *slots,
                                    int64_t first_row) {
    if (keys->valid == NULL && keys->type == T_I64) {
        /* The slots' lines prefetched for writing AHEAD keys ahead: random
         * writes into a table larger than the L2 otherwise fill the store
         * buffer with misses. */
        const int64_t *k = (const int64_t *)keys->data + keys->offset;
        const int64_t ahead = rows > 4 * AHEAD ? rows - 4 * AHEAD : 0;
        for (int64_t i = 0; i < ahead; i++) {
            __builtin_prefetch(&slots[(uint64_t)k[i + 4 * AHEAD] - (uint64_t)base], 1);
            slots[(uint64_t)k[i] - (uint64_t)base] = (int32_t)(first_row + i);
        }
        for (int64_t i = ahead; i < rows; i++) slots[(uint64_t)k[i] - (uint64_t)base] = (int32_t)(first_row + i);
        return;
    }
    for (int64_t i = 0; i < rows; i++) {
        if (keys->valid != NULL && !bit(keys->valid, keys->offset + i)) continue;
        slots[(uint64_t)int_at(keys, i) - (uint64_t)base] = (int32_t)(first_row + i);
    }
}

/* The slots that hold a row: fewer than the non-null keys when a key repeats. */
SEGQL_EXPORT int64_t segql_dense_filled(const int32_t *slots, int64_t size) {
    int64_t filled = 0;
    for (int64_t i = 0; i < size; i++) filled += slots[i] >= 0;
    return filled;
}

/* A table's columns cut in pieces (docs/decisions.md 296): piece p holds its
 * rows [starts[p], starts[p + 1]) in one chunk of every column, column c's
 * chunk at chunks[c * npieces + p].  Python describes the pieces once per
 * batch, and each thread's whole range of rows is one call (a call per piece
 * and per thread cost ~30 % of a call in Python, holding the GIL). */
typedef struct {
    const void *data;
    const uint8_t *valid;
    int64_t offset;
} segql_chunk;

#define MAX_LEAVES 64

typedef struct {
    int32_t npieces;
    int32_t nleaves;
    int32_t naggs;
    uint32_t filters;
    int32_t all_filtered;
    int32_t pad;
    const int64_t *starts;
    const segql_chunk *chunks;
    const segql_column *key;     /* its type; data from column 0 */
    const segql_leaf *leaves;    /* their types and constants; data from column leaf_column[i] */
    const int32_t *leaf_column;
    const segql_agg *aggs;       /* their kinds and accumulators; values from column agg_column[i] (-1: none) */
    const int32_t *agg_column;
} segql_layout;

static void set_column(segql_column *c, const segql_layout *t, int32_t column, int32_t p, int64_t skip) {
    const segql_chunk *ch = &t->chunks[(int64_t)column * t->npieces + p];
    c->data = ch->data;
    c->valid = ch->valid;
    c->offset = ch->offset + skip;
}

/* Rows [first, last) of the layout, piece by piece, through the pass
 * (out_pos NULL: the misfits are returned) or emitted (the records' count). */
static int64_t run_layout(const segql_layout *t, int64_t first, int64_t last, const int32_t *slots, int64_t base,
                          int64_t size, int32_t *out_pos, uint32_t *out_bits, void *const *out_values) {
    segql_column key = *t->key;
    segql_leaf leaves[MAX_LEAVES];
    segql_agg aggs[32];
    int64_t result = 0;
    memcpy(leaves, t->leaves, sizeof(segql_leaf) * (size_t)t->nleaves);
    memcpy(aggs, t->aggs, sizeof(segql_agg) * (size_t)t->naggs);
    void *values[32];
    for (int32_t p = 0; p < t->npieces; p++) {
        const int64_t lo = t->starts[p] > first ? t->starts[p] : first;
        const int64_t hi = t->starts[p + 1] < last ? t->starts[p + 1] : last;
        if (hi <= lo) continue;
        const int64_t skip = lo - t->starts[p];
        set_column(&key, t, 0, p, skip);
        for (int32_t i = 0; i < t->nleaves; i++) set_column(&leaves[i].column, t, t->leaf_column[i], p, skip);
        for (int32_t a = 0; a < t->naggs; a++)
            if (t->agg_column[a] >= 0) set_column(&aggs[a].value, t, t->agg_column[a], p, skip);
        if (out_pos == NULL) {
            result += segql_groups_pass(hi - lo, &key, slots, base, size, leaves, t->nleaves, t->filters,
                                        t->all_filtered, aggs, t->naggs);
        } else {
            for (int32_t a = 0; a < t->naggs; a++) values[a] = out_values[a];
            result = segql_groups_emit(hi - lo, &key, slots, base, size, leaves, t->nleaves, t->filters,
                                       t->all_filtered, aggs, t->naggs, result, out_pos, out_bits, values);
        }
    }
    return result;
}

/* segql_groups_pass over rows [first, last) of a layout: the misfits. */
SEGQL_EXPORT int64_t segql_groups_pass_layout(const segql_layout *t, int64_t first, int64_t last, const int32_t *slots,
                                              int64_t base, int64_t size) {
    return run_layout(t, first, last, slots, base, size, NULL, NULL, NULL);
}

/* segql_groups_emit over rows [first, last) of a layout, records from 0: their count. */
SEGQL_EXPORT int64_t segql_groups_emit_layout(const segql_layout *t, int64_t first, int64_t last, const int32_t *slots,
                                              int64_t base, int64_t size, int32_t *out_pos, uint32_t *out_bits,
                                              void *const *out_values) {
    return run_layout(t, first, last, slots, base, size, out_pos, out_bits, out_values);
}
