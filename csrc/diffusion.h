// Arithmetic of the fused diffusion kernels (noise-add and the denoise-update steps), shared
// by the CPU and CUDA kernels; gddm_kernels/triton/diffusion.py mirrors it and
// gddm_kernels/reference/random.py is the executable specification of the noise.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "stencils.h"

namespace gddm {

// ---- counter-based random numbers --------------------------------------------------------------
// Philox4x32-10 (Salmon et al. 2011) keyed by a 64-bit seed. Element `index` belongs to the
// group index / 4, whose counter is (group as two 32-bit words, 0, 0); the group's four
// outputs make two Box-Muller pairs, (r0, r1) -> normals 0, 1 and (r2, r3) -> normals 2, 3,
// with u1 = (r >> 8 + 1) 2^-24 in (0, 1] (a finite logarithm) and u2 = (r' >> 8) 2^-24:
//   normal 2p = sqrt(-2 ln u1) cos(2 pi u2),  normal 2p+1 = sqrt(-2 ln u1) sin(2 pi u2).
// The normal at an element depends only on (seed, index): never on how the work is split.
constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;
constexpr int kPhiloxRounds = 10;
constexpr int kNormalsPerGroup = 4;
constexpr float kTwoPi = 6.283185307179586f;
constexpr float kTwoToMinus24 = 5.9604644775390625e-08f;

// A uniform from the top 24 bits of a Philox word (exact in float, converted as a signed int
// so that loops of it vectorise): in [0, 1), or in (0, 1] with `plus_one`.
GDDM_HD float uniform24(uint32_t r, bool plus_one) {
  return (static_cast<float>(static_cast<int32_t>(r >> 8)) + (plus_one ? 1.0f : 0.0f)) * kTwoToMinus24;
}

GDDM_HD uint32_t mulhi32(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}

// Philox4x32-10 of counter (c0, c1, 0, 0) and key (k0, k1), in place in r[4].
GDDM_HD void philox4(uint32_t c0, uint32_t c1, uint32_t k0, uint32_t k1, uint32_t r[4]) {
  uint32_t c2 = 0, c3 = 0;
  for (int round = 0; round < kPhiloxRounds; ++round) {
    const uint32_t hi0 = mulhi32(kPhiloxM0, c0), lo0 = kPhiloxM0 * c0;
    const uint32_t hi1 = mulhi32(kPhiloxM1, c2), lo1 = kPhiloxM1 * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  r[0] = c0;
  r[1] = c1;
  r[2] = c2;
  r[3] = c3;
}

GDDM_HD float bits_as_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
#endif
}

GDDM_HD uint32_t float_as_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
#endif
}

// ln(u) for a normal float u > 0, branch-free so that loops of it vectorise: u = m 2^e with m
// in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series
// to s^9 (truncation < 3e-9).
GDDM_HD float log_positive(float u) {
  const uint32_t bits = float_as_bits(u);
  float m = bits_as_float((bits & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
  float e = static_cast<float>(static_cast<int32_t>(bits >> 23) - 127);
  const bool high = m > 1.41421356f;
  m = high ? 0.5f * m : m;
  e = high ? e + 1.0f : e;
  const float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
  const float series = 1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9))));
  return e * 0.69314718056f + 2.0f * s * series;
}

// sin and cos of 2 pi u for u in [0, 1), branch-free: the nearest quarter turn q/4 is taken
// out, the rest (|theta| <= pi/4) goes through Taylor polynomials (truncation < 2e-9), and the
// quarter turns rotate the pair.
GDDM_HD void sincos_turns(float u, float& sine, float& cosine) {
  const float q = static_cast<float>(static_cast<int32_t>(4.0f * u + 0.5f));  // nearest of 0 .. 4 (u >= 0)
  const float theta = kTwoPi * (u - 0.25f * q), t2 = theta * theta;
  const float s = theta * (1.0f - t2 / 6 * (1.0f - t2 / 20 * (1.0f - t2 / 42 * (1.0f - t2 / 72))));
  const float c = 1.0f - t2 / 2 * (1.0f - t2 / 12 * (1.0f - t2 / 30 * (1.0f - t2 / 56 * (1.0f - t2 / 90))));
  const int quadrant = static_cast<int>(q) & 3;  // rotate (cos, sin) by quadrant * pi/2
  const float along_sin = (quadrant & 1) ? c : s, along_cos = (quadrant & 1) ? s : c;
  sine = (quadrant & 2) ? -along_sin : along_sin;
  cosine = ((quadrant + 1) & 2) ? -along_cos : along_cos;
}

// The four standard normals of group `group` of stream `seed`.
GDDM_HD void normal4(int64_t seed, int64_t group, float out[kNormalsPerGroup]) {
  uint32_t r[4];
  philox4(static_cast<uint32_t>(group), static_cast<uint32_t>(static_cast<uint64_t>(group) >> 32),
          static_cast<uint32_t>(seed), static_cast<uint32_t>(static_cast<uint64_t>(seed) >> 32), r);
  for (int pair = 0; pair < 2; ++pair) {
    const float u1 = uniform24(r[2 * pair], true);
    const float u2 = uniform24(r[2 * pair + 1], false);
    const float rho = sqrtf(-2.0f * log_positive(u1));
    float sine, cosine;
    sincos_turns(u2, sine, cosine);
    out[2 * pair] = rho * cosine;
    out[2 * pair + 1] = rho * sine;
  }
}

// The standard normal at element `index` of stream `seed`.
GDDM_HD float normal_at(int64_t seed, int64_t index) {
  float n[kNormalsPerGroup];
  normal4(seed, index / kNormalsPerGroup, n);
  return n[index % kNormalsPerGroup];
}

// ---- terms ------------------------------------------------------------------------------------
// c * v, except that a coefficient that is exactly 0 gives exactly 0, also for an infinite or
// NaN v: a term whose coefficient is 0 is absent from the formula (the specification's
// non-finite behaviour; 0 * inf would be NaN). A select, so loops of it still vectorise.
template <typename acc_t>
GDDM_HD acc_t term(acc_t c, acc_t v) {
  return c == acc_t(0) ? acc_t(0) : c * v;
}

// ---- noise-add ---------------------------------------------------------------------------------
// Forward diffusion of pixel (i, j) of image n (img = n * H * W, the flat index of its first
// pixel) with per-sample coefficients a = sqrt(g) and s (the noise scale), each product a
// `term` (a coefficient 0 drops its term):
//   image      out = a x + s eps
//   gradient   out[c] = a gradient(x)[c] + s eps[c]          ("paper": eps of the field's shape)
//   laplacian  out = a laplacian(x) + s eps
//   exact      out = D(a x + s eps)                          (eps image-shaped, D the operator)
// eps(index) gives the standard normal at a flat noise index; noise_out (may be null) receives
// the noise this pixel owns.
enum Domain { kImage = 0, kGradient = 1, kLaplacian = 2 };

// a x + s eps, the exact model's noisy image (before the operator D).
template <typename acc_t>
GDDM_HD acc_t diffused(acc_t a, acc_t x, acc_t s, acc_t eps) {
  return term(a, x) + term(s, eps);
}

template <typename acc_t, typename scalar_t, typename Eps>
GDDM_HD void add_noise_pixel(const scalar_t* x0, scalar_t* out, scalar_t* noise_out, int64_t img, int64_t i,
                             int64_t j, int64_t H, int64_t W, int domain, bool exact, acc_t a, acc_t s, Eps eps) {
  const int64_t at = img + i * W + j;
  // The field that D is applied to: a x (paper noise is added after D) or a x + s eps (exact).
  auto y = [&](int64_t ii, int64_t jj) {
    const int64_t idx = img + ii * W + jj;
    return exact ? diffused(a, acc_t(x0[idx]), s, eps(idx)) : term(a, acc_t(x0[idx]));
  };
  if (domain == kGradient) {
    const bool has_down = i + 1 < H, has_right = j + 1 < W;
    const acc_t c = y(i, j);
    const acc_t gv = forward_difference(has_down ? y(i + 1, j) : c, c, has_down);
    const acc_t gh = forward_difference(has_right ? y(i, j + 1) : c, c, has_right);
    const int64_t fv = 2 * img + i * W + j, fh = fv + H * W;  // field (n, 2, H, W)
    if (exact) {
      out[fv] = static_cast<scalar_t>(gv);
      out[fh] = static_cast<scalar_t>(gh);
      if (noise_out) noise_out[at] = static_cast<scalar_t>(eps(at));
    } else {
      const acc_t ev = eps(fv), eh = eps(fh);
      out[fv] = static_cast<scalar_t>(gv + term(s, ev));
      out[fh] = static_cast<scalar_t>(gh + term(s, eh));
      if (noise_out) {
        noise_out[fv] = static_cast<scalar_t>(ev);
        noise_out[fh] = static_cast<scalar_t>(eh);
      }
    }
    return;
  }
  acc_t v;
  if (domain == kLaplacian) {
    const acc_t c = y(i, j);
    v = laplacian_from(c, i > 0 ? y(i - 1, j) : c, i + 1 < H ? y(i + 1, j) : c, j > 0 ? y(i, j - 1) : c,
                       j + 1 < W ? y(i, j + 1) : c);
  } else {
    v = y(i, j);
  }
  if (exact) {
    out[at] = static_cast<scalar_t>(v);
    if (noise_out) noise_out[at] = static_cast<scalar_t>(eps(at));
  } else {
    const acc_t e = eps(at);
    out[at] = static_cast<scalar_t>(v + term(s, e));
    if (noise_out) noise_out[at] = static_cast<scalar_t>(e);
  }
}

// ---- the generic step ---------------------------------------------------------------------------
// Every reverse step is, per sample, an affine map of a few per-element values (see
// gddm_kernels/diffusion.py for the coefficients of DDPM, DDIM, DPM-Solver++(2M) and the
// analytic-attenuation step):
//   m   = guided model output: uncond + s (cond - uncond)        (or cond)
//   x0  = clip(a0 x + a1 m)
//   eps = e0 x + e1 m + e2 x0 + e3 m2                            (m2: a second model output)
//   D   = x0 + r (x0 - prev_x0)                                  (DPM-Solver++ 2M)
//   out = c0 x + c1 D + c2 eps + c3 z
// Each coefficient times its value is a `term`: a coefficient 0 drops the term.
enum StepCoef { kA0, kA1, kE0, kE1, kE2, kE3, kR, kC0, kC1, kC2, kC3, kNumStepCoefs };

template <typename acc_t>
struct StepResult {
  acc_t out, x0;
};

template <typename acc_t>
GDDM_HD StepResult<acc_t> step_at(const acc_t* k, acc_t x, acc_t m, acc_t m2, acc_t prev_x0, acc_t z,
                                  acc_t clip) {
  acc_t x0 = term(k[kA0], x) + term(k[kA1], m);
  const acc_t clamped = x0 < -clip ? -clip : (x0 > clip ? clip : x0);
  x0 = clip > acc_t(0) ? clamped : x0;  // a select, so loops of steps vectorise
  const acc_t eps = term(k[kE0], x) + term(k[kE1], m) + term(k[kE2], x0) + term(k[kE3], m2);
  const acc_t d = x0 + term(k[kR], x0 - prev_x0);
  return {term(k[kC0], x) + term(k[kC1], d) + term(k[kC2], eps) + term(k[kC3], z), x0};
}

// Without clipping the step is affine in its per-element inputs, and finite coefficients fold,
// per sample, into one per input: the CPU kernel's form of step_at, the same value up to
// rounding at a third of the arithmetic (the fold itself in float64). With w = c1 (1 + r) + c2 e2, the
// weight of x0 in out:
//   out = kx x + km m + km2 m2 + kp prev_x0 + kz z,      x0 = a0 x + a1 m
//   kx = c0 + c2 e0 + w a0,  km = c2 e1 + w a1,  km2 = c2 e3,  kp = -c1 r,  kz = c3.
// Each product is again a `term`: an input none of whose terms reaches step_at's output has a
// folded coefficient of exactly 0, so it does not reach this one either, infinite or NaN.
template <typename acc_t>
struct AffineStep {
  acc_t x, m, m2, prev_x0, z;
};

template <typename acc_t>
GDDM_HD AffineStep<acc_t> affine_step(const acc_t* k) {
  const double c1 = k[kC1], c2 = k[kC2], r = k[kR];
  const double w = c1 * (1 + r) + c2 * k[kE2];
  return {static_cast<acc_t>(k[kC0] + c2 * k[kE0] + w * k[kA0]), static_cast<acc_t>(c2 * k[kE1] + w * k[kA1]),
          static_cast<acc_t>(c2 * k[kE3]), static_cast<acc_t>(-c1 * r), k[kC3]};
}

}  // namespace gddm
