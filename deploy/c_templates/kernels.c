/* ---- portable C99 int8/int16 kernels (from deploy/c_templates/kernels.c) ------------------------

Rounding. The default build reproduces onnxruntime's CPU arithmetic:
  - QuantizeLinear: q = clamp(round_half_even(x / scale)) + zero_point, x / scale in float32
    (MLAS divides, clamps in float, then converts with round-to-nearest-even);
  - fused QLinearConv / QGemm: int32 accumulator + int32 bias, then float32 acc * (sx * sw[c] / sy)
    (that product and quotient in float32, in that order, like ORT), clamp, round half to even;
  - DequantizeLinear -> Relu / ReduceMean / Mul -> QuantizeLinear in float32, like ORT's
    unfused float kernels.
  It needs IEEE float32 arithmetic without FMA contraction and the default rounding mode:
  -std=c99 implies -ffp-contract=off on gcc; do not build with -ffast-math.
With -DPRESENCE_FIXED_POINT the conv/gemm/relu/pool requantization uses the TFLite-micro / CMSIS-NN
convention instead: a Q31 multiplier M and a shift s with real scale = M * 2^(s - 31),
SaturatingRoundingDoublingHighMul (round half away from zero) then RoundingDivideByPOT (round half
away from zero); no float in the network body (the input quantization stays float). It differs from
onnxruntime by at most a few LSB at rounding ties; see the report of deploy.firmware_c.
Right shifts of negative int32 values are assumed arithmetic (true for gcc/clang and DSP compilers). */

/* x / scale rounded half to even and saturated to [qmin, qmax] after adding zero_point. */
static int32_t presence_quantize_range(float x, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    float f = x / scale;
    const float lo = (float)(qmin - zp);
    const float hi = (float)(qmax - zp);
    if (!(f >= lo)) f = lo; /* also maps NaN to the minimum, like MLAS's MAXPS */
    if (f > hi) f = hi;
    return (int32_t)lrintf(f) + zp;
}

#if !defined(PRESENCE_FIXED_POINT) || defined(PRESENCE_USE_REQUANT_COPY)
/* The same at the network body's activation width (the fixed-point body requantizes in integers). */
static int32_t presence_quantize(float x, float scale, int32_t zp) {
    return presence_quantize_range(x, scale, zp, PRESENCE_QMIN, PRESENCE_QMAX);
}
#endif

#ifdef PRESENCE_FIXED_POINT
static int32_t presence_clamp_i32(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

static int32_t presence_srdhm(int32_t a, int32_t b) {
    int64_t ab;
    int64_t nudge;
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t presence_rdbpot(int32_t x, int exponent) {
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static int32_t presence_mul_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift) {
    const int left = shift > 0 ? (int)shift : 0;
    const int right = shift > 0 ? 0 : (int)-shift;
    int64_t shifted = (int64_t)x * ((int64_t)1 << left);
    if (shifted > INT32_MAX) shifted = INT32_MAX;
    if (shifted < INT32_MIN) shifted = INT32_MIN;
    return presence_rdbpot(presence_srdhm((int32_t)shifted, multiplier), right);
}
#endif

/* One output channel's requantization of an int32 accumulator (bias already added). */
static int32_t presence_requantize(int32_t acc, const presence_requant_t *rq, int32_t zp_out) {
#ifdef PRESENCE_FIXED_POINT
    const int64_t v = (int64_t)presence_mul_by_quantized_multiplier(acc, rq->multiplier, rq->shift) + zp_out;
    return v < PRESENCE_QMIN ? PRESENCE_QMIN : (v > PRESENCE_QMAX ? PRESENCE_QMAX : (int32_t)v);
#else
    float f = (float)acc * rq->scale;
    const float lo = (float)(PRESENCE_QMIN - zp_out);
    const float hi = (float)(PRESENCE_QMAX - zp_out);
    if (!(f >= lo)) f = lo;
    if (f > hi) f = hi;
    return (int32_t)lrintf(f) + zp_out;
#endif
}

/* features [T*V] float dB -> q [T*V]: (x - mean[v]) quantized (at the Sub's own width, never stored),
   dequantized, times inv_std[v], quantized at the input's width (presence_in_t: int8 under an int16
   body, else the body's type). */
static void presence_input(const float *features, presence_in_t *out, const presence_input_t *p) {
    int32_t t, v;
    for (t = 0; t < p->frames; ++t) {
        for (v = 0; v < p->bins; ++v) {
            const int32_t i = t * p->bins + v;
            const float centred = features[i] - p->mean[v];
            int32_t q = presence_quantize_range(centred, p->sub_scale, p->sub_zp, p->sub_qmin, p->sub_qmax);
            if (p->inv_std != NULL) {
                const float deq = (float)(q - p->sub_zp) * p->sub_scale;
                q = presence_quantize_range(deq * p->inv_std[v], p->out_scale, p->out_zp, PRESENCE_IN_QMIN,
                                            PRESENCE_IN_QMAX);
            }
            out[i] = (presence_in_t)q;
        }
    }
}

/* NCHW convolution (regular, grouped or depthwise), int32 accumulation, per-output-channel requant.
   Defined once per input type: the body's (presence_conv2d) and, under a wider body, the input's
   (presence_conv2d_in, the stem reading the int8 input). */
#define PRESENCE_DEFINE_CONV2D(NAME, IN_T)                                                                  \
    static void NAME(const IN_T *in, presence_q_t *out, const presence_conv_t *c) {                         \
        const int32_t cin_g = c->c_in / c->groups;                                                          \
        const int32_t cout_g = c->c_out / c->groups;                                                        \
        int32_t oc, oy, ox, ic, ky, kx;                                                                     \
        for (oc = 0; oc < c->c_out; ++oc) {                                                                 \
            const int32_t g = oc / cout_g;                                                                  \
            const int8_t *w_oc = c->weight + (size_t)oc * (size_t)(cin_g * c->k_h * c->k_w);                \
            const int32_t zw = c->weight_zp[oc];                                                            \
            for (oy = 0; oy < c->out_h; ++oy) {                                                             \
                for (ox = 0; ox < c->out_w; ++ox) {                                                         \
                    int32_t acc = c->bias[oc];                                                              \
                    for (ic = 0; ic < cin_g; ++ic) {                                                        \
                        const IN_T *plane = in + (size_t)(g * cin_g + ic) * (size_t)(c->in_h * c->in_w);    \
                        const int8_t *w_ic = w_oc + ic * c->k_h * c->k_w;                                   \
                        for (ky = 0; ky < c->k_h; ++ky) {                                                   \
                            const int32_t iy = oy * c->stride_h - c->pad_top + ky;                          \
                            if (iy < 0 || iy >= c->in_h) continue; /* padding is the zero point: adds 0 */ \
                            for (kx = 0; kx < c->k_w; ++kx) {                                               \
                                const int32_t ix = ox * c->stride_w - c->pad_left + kx;                     \
                                if (ix < 0 || ix >= c->in_w) continue;                                      \
                                acc += ((int32_t)plane[iy * c->in_w + ix] - c->in_zp) *                     \
                                       ((int32_t)w_ic[ky * c->k_w + kx] - zw);                              \
                            }                                                                               \
                        }                                                                                   \
                    }                                                                                       \
                    out[((size_t)oc * (size_t)c->out_h + (size_t)oy) * (size_t)c->out_w + (size_t)ox] =     \
                        (presence_q_t)presence_requantize(acc, &c->requant[oc], c->out_zp);                 \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
    }

#ifdef PRESENCE_USE_CONV2D
PRESENCE_DEFINE_CONV2D(presence_conv2d, presence_q_t)
#endif
#ifdef PRESENCE_USE_CONV2D_IN
PRESENCE_DEFINE_CONV2D(presence_conv2d_in, presence_in_t)
#endif

#ifdef PRESENCE_USE_GEMM
/* y[o] = b[o] + sum_k x[k] * W[o, k]   (Gemm with transB = 1). */
static void presence_gemm(const presence_q_t *in, presence_q_t *out, const presence_gemm_t *g) {
    int32_t o, k;
    for (o = 0; o < g->n_out; ++o) {
        const int8_t *row = g->weight + (size_t)o * (size_t)g->n_in;
        int32_t acc = g->bias[o];
        for (k = 0; k < g->n_in; ++k) {
            acc += ((int32_t)in[k] - g->in_zp) * ((int32_t)row[k] - g->weight_zp[o]);
        }
        out[o] = (presence_q_t)presence_requantize(acc, &g->requant[o], g->out_zp);
    }
}
#endif

#ifdef PRESENCE_USE_RELU
/* Relu between two quantizations (DequantizeLinear -> Relu -> QuantizeLinear), in place allowed. */
static void presence_relu(const presence_q_t *in, presence_q_t *out, int32_t n, const presence_relu_t *r) {
    int32_t i;
    for (i = 0; i < n; ++i) {
#ifdef PRESENCE_FIXED_POINT
        int32_t v = (int32_t)in[i] - r->in_zp;
        if (v < 0) v = 0;
        v = presence_mul_by_quantized_multiplier(v, r->requant.multiplier, r->requant.shift);
        out[i] = (presence_q_t)presence_clamp_i32(v + r->out_zp, PRESENCE_QMIN, PRESENCE_QMAX);
#else
        float f = (float)((int32_t)in[i] - r->in_zp) * r->in_scale;
        if (f < 0.0f) f = 0.0f;
        out[i] = (presence_q_t)presence_quantize(f, r->out_scale, r->out_zp);
#endif
    }
}
#endif

#ifdef PRESENCE_USE_MEAN_POOL
/* Global average pool over H*W per channel (DequantizeLinear -> ReduceMean -> QuantizeLinear). */
static void presence_mean_pool(const presence_q_t *in, presence_q_t *out, const presence_pool_t *p) {
    int32_t c, i;
    for (c = 0; c < p->channels; ++c) {
        int32_t sum = 0;
        for (i = 0; i < p->area; ++i) sum += (int32_t)in[c * p->area + i] - p->in_zp;
#ifdef PRESENCE_FIXED_POINT
        {
            const int32_t v = presence_mul_by_quantized_multiplier(sum, p->requant.multiplier, p->requant.shift);
            out[c] = (presence_q_t)presence_clamp_i32(v + p->out_zp, PRESENCE_QMIN, PRESENCE_QMAX);
        }
#else
        out[c] = (presence_q_t)presence_quantize(((float)sum * p->in_scale) / (float)p->area, p->out_scale,
                                                 p->out_zp);
#endif
    }
}
#endif

#ifdef PRESENCE_USE_REQUANT_COPY
/* Same tensor, new quantization (a QuantizeLinear after a shape-only op with different parameters). */
static void presence_requant_copy(const presence_q_t *in, presence_q_t *out, int32_t n, const presence_relu_t *r) {
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float f = (float)((int32_t)in[i] - r->in_zp) * r->in_scale;
        out[i] = (presence_q_t)presence_quantize(f, r->out_scale, r->out_zp);
    }
}
#endif

static void presence_dequantize(const presence_q_t *in, float *out, int32_t n, float scale, int32_t zp) {
    int32_t i;
    for (i = 0; i < n; ++i) out[i] = (float)((int32_t)in[i] - zp) * scale;
}
