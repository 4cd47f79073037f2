/* A double's JSON text without the GIL: the journal's writer makes its rows' doubles beside
 * the run's drain (double_text.pxi). orjson needs the GIL, Python's own dtoa too (its
 * memory pool is shared), snprintf("%.17g") costs ~1.5 us and is not the shortest text.
 *
 * The digits: the rounding interval of Grisu2 (Loitsch, "Printing Floating-Point Numbers
 * Quickly and Accurately with Integers", PLDI 2010), in 64-bit fixed point, narrowed by one
 * unit on each side; then, in 19-digit decimal integers (narrowing it again), the fewest
 * digits inside it, the nearest to the double of those. The text always reads back as the
 * same double (it lies inside the interval); for about one double in a thousand it is a
 * digit longer than the shortest, or its last digit not the nearest one, which what reads
 * it (orjson.loads, float()) does not see. The powers of ten are computed exactly at import
 * (double_text.pxi, fill_cached_powers), not typed in here.
 *
 * The layout: orjson's (3.12 on; before, "1e16") for the same digits: decimal for exponents -5..15
 * ("0.00001", "1000000000000000.0", "12.5"), otherwise "1.5e-7", "1e+16"; "-0.0" and "0.0";
 * NaN and the infinities as null, as orjson writes them.
 */
#pragma once
#include <stdint.h>
#include <string.h>

#ifndef __SIZEOF_INT128__
#error "shortest_double.h needs unsigned __int128 (GCC or Clang on a 64-bit target)"
#endif

#define RUNNER_DOUBLE_TEXT_MAX 25      /* "-1.7976931348623157e+308" and room to spare */
#define RUNNER_CACHED_POWERS 87        /* 10^-348, 10^-340, ..., 10^340 */

typedef struct { uint64_t f; int e; } runner_diyfp;     /* f * 2^e */

static uint64_t runner_cached_f[RUNNER_CACHED_POWERS];
static int runner_cached_e[RUNNER_CACHED_POWERS];

static void runner_set_cached_power(int index, uint64_t f, int e) {
    runner_cached_f[index] = f;
    runner_cached_e[index] = e;
}

static const uint64_t runner_pow10[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL};

static inline runner_diyfp runner_diyfp_mul(runner_diyfp a, runner_diyfp b) {
    unsigned __int128 p = (unsigned __int128)a.f * b.f;
    uint64_t high = (uint64_t)(p >> 64), low = (uint64_t)p;
    runner_diyfp r = {high + (low >> 63), a.e + b.e + 64};     /* rounded to nearest */
    return r;
}

static inline runner_diyfp runner_diyfp_normalize(runner_diyfp x) {
    int shift = __builtin_clzll(x.f);
    x.f <<= shift;
    x.e -= shift;
    return x;
}

/* The double (finite, not zero, sign ignored) and the ends of its rounding interval, the
 * ends normalized to one exponent. */
static inline runner_diyfp runner_diyfp_bounds(double value, runner_diyfp *minus, runner_diyfp *plus) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    int biased = (int)((bits >> 52) & 0x7FF);
    uint64_t significand = bits & ((1ULL << 52) - 1);
    runner_diyfp v;
    if (biased != 0) {
        v.f = significand + (1ULL << 52);
        v.e = biased - 1075;
    } else {                    /* subnormal */
        v.f = significand;
        v.e = -1074;
    }
    runner_diyfp high = {(v.f << 1) + 1, v.e - 1};
    while (!(high.f & (1ULL << 53))) {
        high.f <<= 1;
        high.e--;
    }
    high.f <<= 10;
    high.e -= 10;
    runner_diyfp low;
    if (v.f == (1ULL << 52)) {  /* a power of two: the double below is nearer */
        low.f = (v.f << 2) - 1;
        low.e = v.e - 2;
    } else {
        low.f = (v.f << 1) - 1;
        low.e = v.e - 1;
    }
    low.f <<= low.e - high.e;
    low.e = high.e;
    *minus = low;
    *plus = high;
    return v;
}

/* A cached power c = 10^-K such that c * (a significand of binary exponent e) has its
 * exponent in -60..-32. */
static inline runner_diyfp runner_cached_power(int e, int *K) {
    double dk = (-61 - e) * 0.30102999566398114 + 347;
    int k = (int)dk;
    if (dk - k > 0.0)
        k++;
    unsigned index = (unsigned)((k >> 3) + 1);
    *K = -(-348 + (int)(index << 3));
    runner_diyfp c = {runner_cached_f[index], runner_cached_e[index]};
    return c;
}

static const char runner_digit_pairs[200] = {
    '0','0','0','1','0','2','0','3','0','4','0','5','0','6','0','7','0','8','0','9',
    '1','0','1','1','1','2','1','3','1','4','1','5','1','6','1','7','1','8','1','9',
    '2','0','2','1','2','2','2','3','2','4','2','5','2','6','2','7','2','8','2','9',
    '3','0','3','1','3','2','3','3','3','4','3','5','3','6','3','7','3','8','3','9',
    '4','0','4','1','4','2','4','3','4','4','4','5','4','6','4','7','4','8','4','9',
    '5','0','5','1','5','2','5','3','5','4','5','5','5','6','5','7','5','8','5','9',
    '6','0','6','1','6','2','6','3','6','4','6','5','6','6','6','7','6','8','6','9',
    '7','0','7','1','7','2','7','3','7','4','7','5','7','6','7','7','7','8','7','9',
    '8','0','8','1','8','2','8','3','8','4','8','5','8','6','8','7','8','8','8','9',
    '9','0','9','1','9','2','9','3','9','4','9','5','9','6','9','7','9','8','9','9'};

/* How many decimal digits x has (1 for 0). */
static inline int runner_decimal_length(uint64_t x) {
    int guess = ((64 - __builtin_clzll(x | 1)) * 1233) >> 12;     /* log10(2) ~ 1233 / 4096 */
    return guess + (x >= runner_pow10[guess]);
}

/* x * 10^m / 2^shift, x a fixed-point number of `shift` fraction bits, as a decimal integer:
 * rounded down, or up (ceiling). */
static inline uint64_t runner_decimal_of(uint64_t x, int shift, uint64_t scale, int ceiling) {
    uint64_t mask = (1ULL << shift) - 1;
    unsigned __int128 fraction = (unsigned __int128)(x & mask) * scale;
    return (x >> shift) * scale + (uint64_t)(fraction >> shift) + (uint64_t)(ceiling && (fraction & mask));
}

/* The shortest decimal digits inside [low, high] (fixed point, exponent -32..-60), the
 * nearest to w of those: the three as 19-digit decimal integers (H rounded down, L up: the
 * interval only narrows), then the fewest digits c with c * 10^k in [L, H], stepped towards
 * w while it stays inside and comes nearer (Grisu's rounding). Returns the number of digits;
 * *K += the power of ten of their last one. */
static inline int runner_digit_gen(runner_diyfp w, runner_diyfp high, runner_diyfp low, char *digits, int *K) {
    int shift = -high.e;                /* 32..60 */
    uint32_t whole = (uint32_t)(high.f >> shift);
    int m = 19 - runner_decimal_length(whole);       /* H < 10^19 < 2^64 */
    uint64_t scale = runner_pow10[m];
    uint64_t H = runner_decimal_of(high.f, shift, scale, 0);
    uint64_t L = runner_decimal_of(low.f, shift, scale, 1);
    uint64_t W = runner_decimal_of(w.f, shift, scale, 0);
    if (W > H)
        W = H;
    /* A multiple of 10^k lies in [L, H] when floor(H / 10^k) > floor((L - 1) / 10^k). */
    uint64_t c = H, below = L - 1;
    int k = 0;
    while (c / 10 > below / 10) {
        c /= 10;
        below /= 10;
        k++;
    }
    uint64_t ten_k = runner_pow10[k];
    uint64_t rest = H - c * ten_k, delta = H - L, wp_w = H - W;
    while (rest < wp_w && delta - rest >= ten_k &&
           (rest + ten_k < wp_w || wp_w - rest > rest + ten_k - wp_w)) {
        c--;
        rest += ten_k;
    }
    int length = runner_decimal_length(c);
    char *at = digits + length;
    uint32_t part;
    while (c >= 100000000) {            /* eight digits at a time in 32 bits */
        part = (uint32_t)(c % 100000000);
        c /= 100000000;
        for (int i = 0; i < 4; i++, part /= 100) {
            at -= 2;
            memcpy(at, runner_digit_pairs + (part % 100) * 2, 2);
        }
    }
    for (part = (uint32_t)c; part >= 100; part /= 100) {
        at -= 2;
        memcpy(at, runner_digit_pairs + (part % 100) * 2, 2);
    }
    if (part >= 10) {
        at -= 2;
        memcpy(at, runner_digit_pairs + part * 2, 2);
    } else {
        *--at = (char)('0' + part);
    }
    *K += k - m;
    return length;
}

/* The digits of a finite, non-zero |value| (at most 19, no leading zero) and the place of the
 * decimal point: |value| ~ 0.digits * 10^point. Returns the number of digits. */
static inline int runner_grisu2(double value, char *digits, int *point) {
    runner_diyfp minus, plus;
    runner_diyfp v = runner_diyfp_bounds(value, &minus, &plus);
    int K;
    runner_diyfp c = runner_cached_power(plus.e, &K);
    runner_diyfp w = runner_diyfp_mul(runner_diyfp_normalize(v), c);
    runner_diyfp high = runner_diyfp_mul(plus, c);
    runner_diyfp low = runner_diyfp_mul(minus, c);
    low.f++;
    high.f--;
    int length = runner_digit_gen(w, high, low, digits, &K);
    *point = length + K;
    return length;
}

/* digits (length of them) with the decimal point at `point`, laid out as orjson lays out a
 * double's digits; returns the text's length. */
static inline int runner_double_layout(const char *digits, int length, int point, int negative, char *out) {
    char *at = out;
    if (negative)
        *at++ = '-';
    if (point > -5 && point <= 16) {
        if (point <= 0) {
            *at++ = '0';
            *at++ = '.';
            for (int i = point; i < 0; i++)
                *at++ = '0';
            memcpy(at, digits, (size_t)length);
            at += length;
        } else if (point < length) {
            memcpy(at, digits, (size_t)point);
            at += point;
            *at++ = '.';
            memcpy(at, digits + point, (size_t)(length - point));
            at += length - point;
        } else {
            memcpy(at, digits, (size_t)length);
            at += length;
            for (int i = length; i < point; i++)
                *at++ = '0';
            *at++ = '.';
            *at++ = '0';
        }
    } else {
        int exponent = point - 1;
        *at++ = digits[0];
        if (length > 1) {
            *at++ = '.';
            memcpy(at, digits + 1, (size_t)(length - 1));
            at += length - 1;
        }
        *at++ = 'e';
        if (exponent < 0) {
            *at++ = '-';
            exponent = -exponent;
        } else {
            *at++ = '+';
        }
        if (exponent >= 100)
            *at++ = (char)('0' + exponent / 100);
        if (exponent >= 10)
            *at++ = (char)('0' + exponent / 10 % 10);
        *at++ = (char)('0' + exponent % 10);
    }
    return (int)(at - out);
}

/* value's JSON text into out (RUNNER_DOUBLE_TEXT_MAX bytes); returns its length. */
static inline int runner_double_text(double value, char *out) {
    uint64_t bits;
    char digits[20];
    int point;
    memcpy(&bits, &value, sizeof bits);
    int negative = (int)(bits >> 63);
    if (((bits >> 52) & 0x7FF) == 0x7FF) {     /* NaN, infinities */
        memcpy(out, "null", 4);
        return 4;
    }
    if ((bits << 1) == 0) {
        memcpy(out, negative ? "-0.0" : "0.0", (size_t)(3 + negative));
        return 3 + negative;
    }
    int length = runner_grisu2(value, digits, &point);
    return runner_double_layout(digits, length, point, negative, out);
}
