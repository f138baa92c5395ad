// A port of src/quant/{q8_0,q4_k,q5_k,q6_k,k-scales,f32-math}.ts. The TypeScript rounds every
// intermediate to f32 (Math.fround) in ggml's evaluation order; here the same steps are plain f32
// operations in the same order, the K types' sub-blocks side by side in vector lanes (one lane does
// exactly one sub-block's scalar steps; branches become per-lane selects). CMakeLists.txt compiles this file with -ffp-contract=off: a fused
// multiply-add would skip a rounding and change bytes. JavaScript semantics that C++ lacks are spelled
// out: NaN is falsy (js_falsy), Math.max propagates NaN, `v & 0xff` wraps doubles modulo 2^32.
#include "cpu/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "cpu/simd.h"
#include "quant_blocks.h"

namespace paralon {
namespace cpu {
namespace {

// `!v` in JavaScript: true for ±0 and NaN (C++'s !v is false for NaN).
inline bool js_falsy(float v) { return v == 0.0f || v != v; }

// ggml's nearest_int: round half to even through the 1.5·2^23 trick, keeping its bit pattern when
// |value| ≥ 2^22 (f32-math.ts nearestInt).
inline int nearest_int(float value) {
  const float t = value + 12582912.0f;
  return static_cast<int>(f32_to_bits(t) & 0x007FFFFFu) - 0x00400000;
}

// JavaScript's `v & 0xff` for a double that is an integer, ±Infinity or NaN (ToInt32, then the low byte).
inline uint8_t js_low_byte(double v) {
  if (v > -2147483648.0 && v < 2147483648.0) return static_cast<uint8_t>(static_cast<int64_t>(v) & 0xFF);
  if (!std::isfinite(v)) return 0;
  return static_cast<uint8_t>(static_cast<int>(std::fmod(v, 256.0)) & 0xFF);  // 256 divides 2^32
}

// GGML_FP32_TO_FP16 then back: the value a half field holds.
inline float half_round(float v) { return to_f32(to_f16(v)); }

inline void write_half(uint8_t* out, float v) {
  const uint16_t h = to_f16(v).bits;
  out[0] = static_cast<uint8_t>(h & 0xFF);
  out[1] = static_cast<uint8_t>(h >> 8);
}

inline int clamp_int(int v, int lo, int hi) { return std::max(lo, std::min(hi, v)); }

// ---- Q8_0 ----

void quantize_block_q8_0(const float* x, uint8_t* out) {
  float amax = 0.0f;
  for (int j = 0; j < kQK8_0; ++j) {
    const float a = std::fabs(x[j]);
    amax = (amax != amax || a != a) ? NAN : std::max(amax, a);  // Math.max: NaN wins
  }
  const float d = amax / 127.0f;
  const float id = js_falsy(d) ? 0.0f : 1.0f / d;
  write_half(out, d);
  for (int j = 0; j < kQK8_0; ++j) {
    const double v = x[j] * id;  // f32 product, then C's roundf in double as f32-math.ts roundf
    out[2 + j] = js_low_byte(v < 0 ? -std::floor(-v + 0.5) : std::floor(v + 0.5));
  }
}

// ---- Q4_K / Q5_K (k-scales.ts) ----

// The 6-bit scales and mins of 8 sub-blocks into 12 bytes at `out`; writes d and dmin (pre-f16).
void pack_scales_mins_k4(const float* scales, const float* mins, uint8_t* out, float* d, float* dmin) {
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < 8; ++j) {
    const int ls = std::min(63, nearest_int(inv_scale * scales[j]) & 0xFF);
    const int lm = std::min(63, nearest_int(inv_min * mins[j]) & 0xFF);
    if (j < 4) {
      out[j] = static_cast<uint8_t>(ls);
      out[j + 4] = static_cast<uint8_t>(lm);
    } else {
      out[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      out[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      out[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d = max_scale / 63.0f;
  *dmin = max_min / 63.0f;
}

// The 8 sub-blocks of a Q4_K/Q5_K block are independent, so they run side by side in the 8 lanes of a
// vector (lane j = sub-block j, GCC vector extensions): each lane does exactly the scalar steps of
// ggml's make_qkx2_quants in their order, so the bytes do not change. (Vectorizing within a sub-block
// would reorder its f32 sums.)
typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));

inline vi8 nearest_int(vf8 value) {
  const vf8 t = value + 12582912.0f;
  vi8 bits;
  std::memcpy(&bits, &t, sizeof bits);
  return (bits & 0x007FFFFF) - 0x00400000;
}
inline vi8 clamp_levels(vi8 l, int nmax) {
  l = l < 0 ? vi8{} : l;
  return l > nmax ? vi8{} + nmax : l;
}
inline vf8 to_float(vi8 v) { return __builtin_convertvector(v, vf8); }

// ggml's make_qkx2_quants for the 8 sub-blocks of 32 values in lanes: xt[i] holds value i of each
// sub-block, w[i] its weight. Levels 0..nmax into L[i]; returns the scales, *neg_min = −min per lane.
vf8 make_qkx2_quants_x8(int nmax, const vf8* xt, const vf8* w, vi8* L, float rmin, float rdelta, int nstep,
                        vf8* neg_min) {
  vi8 laux[32];
  vf8 min = xt[0], max = xt[0];
  vf8 sum_w = w[0];
  vf8 sum_x = sum_w * xt[0];
  for (int i = 1; i < 32; ++i) {
    min = xt[i] < min ? xt[i] : min;
    max = xt[i] > max ? xt[i] : max;
    sum_w = sum_w + w[i];
    sum_x = sum_x + w[i] * xt[i];
  }
  min = min > 0 ? vf8{} : min;
  const vi8 flat = max == min;  // ggml returns early for these lanes: levels 0, scale 0, min as is
  vf8 iscale = static_cast<float>(nmax) / (max - min);
  vf8 scale = 1.0f / iscale;
  vf8 best_error = vf8{};
  for (int i = 0; i < 32; ++i) {
    L[i] = clamp_levels(nearest_int(iscale * (xt[i] - min)), nmax);
    const vf8 diff = (scale * to_float(L[i]) + min) - xt[i];
    best_error = best_error + w[i] * (diff * diff);
  }
  // As in ggml, each step uses the current best min of its lane (it moves when a step wins).
  for (int is = 0; is <= nstep; ++is) {
    iscale = ((rmin + rdelta * static_cast<float>(is)) + static_cast<float>(nmax)) / (max - min);
    vf8 sum_l{}, sum_l2{}, sum_xl{};
    for (int i = 0; i < 32; ++i) {
      laux[i] = clamp_levels(nearest_int(iscale * (xt[i] - min)), nmax);
      const vf8 l = to_float(laux[i]);
      const vf8 wl = w[i] * l;
      sum_l = sum_l + wl;
      sum_l2 = sum_l2 + wl * l;
      sum_xl = sum_xl + wl * xt[i];
    }
    const vf8 D = sum_w * sum_l2 - sum_l * sum_l;
    vf8 this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    vf8 this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    const vi8 clipped = this_min > 0;
    this_min = clipped ? vf8{} : this_min;
    this_scale = clipped ? sum_xl / sum_l2 : this_scale;
    vf8 cur_error{};
    for (int i = 0; i < 32; ++i) {
      const vf8 diff = (this_scale * to_float(laux[i]) + this_min) - xt[i];
      cur_error = cur_error + w[i] * (diff * diff);
    }
    const vi8 better = (D > 0) & (cur_error < best_error) & ~flat;
    for (int i = 0; i < 32; ++i) L[i] = better ? laux[i] : L[i];
    best_error = better ? cur_error : best_error;
    scale = better ? this_scale : scale;
    min = better ? this_min : min;
  }
  for (int i = 0; i < 32; ++i) L[i] = flat ? vi8{} : L[i];
  *neg_min = -min;  // a flat lane keeps the data's min: it never takes a step
  return flat ? vf8{} : scale;
}

// The Q4_K/Q5_K weights of one 32-value sub-block: rms of the values + |x|.
void sub_block_weights(const float* x, float* weights) {
  float sum_x2 = 0.0f;
  for (int l = 0; l < 32; ++l) sum_x2 = sum_x2 + x[l] * x[l];
  const float av_x = std::sqrt(sum_x2 / 32.0f);
  for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[l]);
}

// The shared part of Q4_K and Q5_K: levels 0..nmax of all 256 values into L, d/dmin/scales written.
void quantize_k4_levels(const float* x, uint8_t* out, int nmax, float rmin, int nstep, uint8_t* L) {
  vf8 xt[32], wt[32];
  vi8 Lt[32];
  for (int j = 0; j < 8; ++j) {
    float weights[32];
    sub_block_weights(x + 32 * j, weights);
    for (int i = 0; i < 32; ++i) {
      xt[i][j] = x[32 * j + i];
      wt[i][j] = weights[i];
    }
  }
  vf8 neg_min;
  const vf8 scale = make_qkx2_quants_x8(nmax, xt, wt, Lt, rmin, 0.1f, nstep, &neg_min);
  float scales[8], mins[8];
  for (int j = 0; j < 8; ++j) {
    scales[j] = scale[j];
    mins[j] = neg_min[j];
    for (int i = 0; i < 32; ++i) L[32 * j + i] = static_cast<uint8_t>(Lt[i][j]);
  }
  float d, dmin;
  pack_scales_mins_k4(scales, mins, out + 4, &d, &dmin);
  write_half(out, d);
  write_half(out + 2, dmin);
  const float dh = half_round(d), dminh = half_round(dmin);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    k4_scale_min(out + 4, j, &sc, &m);
    const float dj = dh * static_cast<float>(sc);
    if (js_falsy(dj)) continue;
    const float dmj = dminh * static_cast<float>(m);
    for (int i = 0; i < 32; ++i) {
      const int l = nearest_int((x[32 * j + i] + dmj) / dj);
      L[32 * j + i] = static_cast<uint8_t>(clamp_int(l, 0, nmax));
    }
  }
}

void quantize_block_q4_k(const float* x, uint8_t* out) {
  uint8_t L[kQK_K];
  quantize_k4_levels(x, out, 15, -1.0f, 20, L);
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) out[16 + 32 * g + l] = static_cast<uint8_t>(L[64 * g + l] | (L[64 * g + l + 32] << 4));
  }
}

void quantize_block_q5_k(const float* x, uint8_t* out) {
  uint8_t L[kQK_K];
  quantize_k4_levels(x, out, 31, -0.5f, 15, L);
  uint8_t* qh = out + 16;
  std::memset(qh, 0, 32);
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      int l1 = L[64 * g + l], l2 = L[64 * g + l + 32];
      if (l1 > 15) {
        l1 -= 16;
        qh[l] |= static_cast<uint8_t>(1 << (2 * g));
      }
      if (l2 > 15) {
        l2 -= 16;
        qh[l] |= static_cast<uint8_t>(2 << (2 * g));
      }
      out[48 + 32 * g + l] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
  }
}

// ---- Q6_K ----

constexpr float kGroupMaxEps = 1e-15f;

// Q6_K's 16 sub-blocks of 16 values run side by side in 16 lanes, as Q4_K's in quantize_k4_levels.
typedef float vf16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));

inline vi16 nearest_int(vf16 value) {
  const vf16 t = value + 12582912.0f;
  vi16 bits;
  std::memcpy(&bits, &t, sizeof bits);
  return (bits & 0x007FFFFF) - 0x00400000;
}

// Q6_K's sums for one trial inverse scale per lane; the levels (−nmax..nmax−1) into l.
void qx_fit(int nmax, const vf16* xt, vf16 iscale, vi16* l, vf16* sumlx_out, vf16* suml2_out) {
  vf16 sumlx{}, suml2{};
  for (int i = 0; i < 16; ++i) {
    vi16 q = nearest_int(iscale * xt[i]);
    q = q < -nmax ? vi16{} - nmax : q;
    q = q > nmax - 1 ? vi16{} + (nmax - 1) : q;
    l[i] = q;
    const vf16 lf = __builtin_convertvector(q, vf16);
    const vf16 w = xt[i] * xt[i];
    sumlx = sumlx + (w * xt[i]) * lf;
    suml2 = suml2 + (w * lf) * lf;
  }
  *sumlx_out = sumlx;
  *suml2_out = suml2;
}

// ggml's make_qx_quants with rmse_type 1 and no weights, for the 16 sub-blocks in lanes: xt[i] holds
// value i of each; levels + nmax into L[i]; returns the scales.
vf16 make_qx_quants_x16(int nmax, const vf16* xt, vi16* L) {
  vf16 max{}, amax{};
  for (int i = 0; i < 16; ++i) {
    const vf16 ax = xt[i] < 0 ? -xt[i] : xt[i];  // fabs, but NaN's sign kept: only its compare matters
    const vi16 bigger = ax > amax;
    amax = bigger ? ax : amax;
    max = bigger ? xt[i] : max;
  }
  const vi16 tiny = amax < kGroupMaxEps;  // ggml returns early for these lanes: levels 0, scale 0
  vi16 l[16];
  vf16 sumlx, suml2;
  qx_fit(nmax, xt, -static_cast<float>(nmax) / max, L, &sumlx, &suml2);
  const vi16 falsy = (suml2 == 0) | (suml2 != suml2);
  vf16 scale = falsy ? vf16{} : sumlx / suml2;
  vf16 best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const vf16 iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    qx_fit(nmax, xt, iscale, l, &sumlx, &suml2);
    const vi16 better = (suml2 > 0) & (sumlx * sumlx > best * suml2);
    for (int i = 0; i < 16; ++i) L[i] = better ? l[i] : L[i];
    scale = better ? sumlx / suml2 : scale;
    best = better ? scale * sumlx : best;
  }
  for (int i = 0; i < 16; ++i) L[i] = tiny ? vi16{} : L[i] + nmax;
  return tiny ? vf16{} : scale;
}

void quantize_block_q6_k(const float* x, uint8_t* out) {
  int8_t L[kQK_K];
  vf16 xt[16];
  vi16 Lt[16];
  for (int s = 0; s < 16; ++s) {
    for (int i = 0; i < 16; ++i) xt[i][s] = x[16 * s + i];
  }
  const vf16 lane_scales = make_qx_quants_x16(32, xt, Lt);
  float scales[16];
  float max_scale = 0.0f, max_abs_scale = 0.0f;
  for (int ib = 0; ib < 16; ++ib) {
    const float scale = lane_scales[ib];
    for (int i = 0; i < 16; ++i) L[16 * ib + i] = static_cast<int8_t>(Lt[i][ib]);
    scales[ib] = scale;
    if (std::fabs(scale) > max_abs_scale) {
      max_abs_scale = std::fabs(scale);
      max_scale = scale;
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(out, 0, sizeof(BlockQ6_K));
    return;
  }
  const float iscale = -128.0f / max_scale;
  write_half(out + 208, 1.0f / iscale);
  const float dh = half_round(1.0f / iscale);
  for (int ib = 0; ib < 16; ++ib) {
    out[192 + ib] = static_cast<uint8_t>(std::min(127, nearest_int(iscale * scales[ib])) & 0xFF);
  }
  for (int j = 0; j < 16; ++j) {
    const float d = dh * static_cast<float>(static_cast<int8_t>(out[192 + j]));
    if (js_falsy(d)) continue;
    for (int i = 0; i < 16; ++i) {
      L[16 * j + i] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
  }
  for (int h = 0; h < 2; ++h) {
    const int j = 128 * h;
    uint8_t* ql = out + 64 * h;
    uint8_t* qh = out + 128 + 32 * h;
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = static_cast<uint8_t>(((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)) & 0xFF);
    }
  }
}

using BlockQuantizer = void (*)(const float* x, uint8_t* out);

BlockQuantizer block_quantizer(QuantFormat format) {
  switch (format) {
    case QuantFormat::Q8_0: return quantize_block_q8_0;
    case QuantFormat::Q4_K: return quantize_block_q4_k;
    case QuantFormat::Q5_K: return quantize_block_q5_k;
    case QuantFormat::Q6_K: return quantize_block_q6_k;
  }
  return nullptr;
}

}  // namespace

bool quant_format_from_name(const std::string& name, QuantFormat* format) {
  if (name == "q8_0") *format = QuantFormat::Q8_0;
  else if (name == "q4_k") *format = QuantFormat::Q4_K;
  else if (name == "q5_k") *format = QuantFormat::Q5_K;
  else if (name == "q6_k") *format = QuantFormat::Q6_K;
  else return false;
  return true;
}

QuantBlockShape quant_block_shape(QuantFormat format) {
  switch (format) {
    case QuantFormat::Q8_0: return {kQK8_0, sizeof(BlockQ8_0)};
    case QuantFormat::Q4_K: return {kQK_K, sizeof(BlockQ4_K)};
    case QuantFormat::Q5_K: return {kQK_K, sizeof(BlockQ5_K)};
    case QuantFormat::Q6_K: return {kQK_K, sizeof(BlockQ6_K)};
  }
  return {0, 0};
}

void quantize_blocks(QuantFormat format, const float* x, int64_t num_blocks, uint8_t* out, int threads) {
  const BlockQuantizer quantize = block_quantizer(format);
  const QuantBlockShape shape = quant_block_shape(format);
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) quantize(x + b * shape.elements, out + b * shape.bytes);
  };
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // At least 64 blocks a thread: below that, starting a thread costs more than it saves.
  const int64_t n = std::max<int64_t>(1, std::min<int64_t>(threads, num_blocks / 64));
  if (n == 1) {
    run(0, num_blocks);
    return;
  }
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < n; ++t) workers.emplace_back(run, num_blocks * t / n, num_blocks * (t + 1) / n);
  run(0, num_blocks / n);
  for (std::thread& w : workers) w.join();
}

}  // namespace cpu
}  // namespace paralon
