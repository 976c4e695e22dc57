// Arithmetic of the fused diffusion kernels (noise-add and the denoise-update steps), shared
// by the CPU and CUDA kernels; gddm_kernels/triton/diffusion.py mirrors it and
// gddm_kernels/reference/random.py is the executable specification of the noise.
#pragma once

#include <cmath>
#include <cstdint>

#include "stencils.h"

namespace gddm {

// ---- counter-based random numbers --------------------------------------------------------------
// Philox4x32-10 (Salmon et al. 2011) keyed by a 64-bit seed, counter = (element index as two
// 32-bit words, 0, 0): the normal at an element depends only on (seed, index), never on how the
// work is split into threads or blocks.
constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;
constexpr int kPhiloxRounds = 10;
constexpr float kTwoPi = 6.283185307179586f;
constexpr float kTwoToMinus32 = 2.3283064365386963e-10f;

GDDM_HD uint32_t mulhi32(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}

// The first two outputs of Philox4x32-10 for counter (c0, c1, 0, 0) and key (k0, k1).
GDDM_HD void philox_pair(uint32_t c0, uint32_t c1, uint32_t k0, uint32_t k1, uint32_t& out0, uint32_t& out1) {
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
  out0 = c0;
  out1 = c1;
}

// Standard normal at element `index` of the stream `seed` (Box-Muller on two uniforms,
// u1 in (0, 1] so the logarithm is finite).
GDDM_HD float normal_at(int64_t seed, int64_t index) {
  uint32_t r0, r1;
  philox_pair(static_cast<uint32_t>(index), static_cast<uint32_t>(static_cast<uint64_t>(index) >> 32),
              static_cast<uint32_t>(seed), static_cast<uint32_t>(static_cast<uint64_t>(seed) >> 32), r0, r1);
  const float u1 = (static_cast<float>(r0) + 1.0f) * kTwoToMinus32;
  const float u2 = static_cast<float>(r1) * kTwoToMinus32;
  return sqrtf(-2.0f * logf(u1)) * cosf(kTwoPi * u2);
}

// ---- noise-add ---------------------------------------------------------------------------------
// Forward diffusion of pixel (i, j) of image n (img = n * H * W, the flat index of its first
// pixel) with per-sample coefficients a = sqrt(g) and s (the noise scale):
//   image      out = a x + s eps
//   gradient   out[c] = a gradient(x)[c] + s eps[c]          ("paper": eps of the field's shape)
//   laplacian  out = a laplacian(x) + s eps
//   exact      out = D(a x + s eps)                          (eps image-shaped, D the operator)
// eps(index) gives the standard normal at a flat noise index; noise_out (may be null) receives
// the noise this pixel owns.
enum Domain { kImage = 0, kGradient = 1, kLaplacian = 2 };

template <typename acc_t, typename scalar_t, typename Eps>
GDDM_HD void add_noise_pixel(const scalar_t* x0, scalar_t* out, scalar_t* noise_out, int64_t img, int64_t i,
                             int64_t j, int64_t H, int64_t W, int domain, bool exact, acc_t a, acc_t s, Eps eps) {
  const int64_t at = img + i * W + j;
  // The field that D is applied to: a x (paper noise is added after D) or a x + s eps (exact).
  auto y = [&](int64_t ii, int64_t jj) {
    const int64_t idx = img + ii * W + jj;
    return exact ? a * acc_t(x0[idx]) + s * eps(idx) : a * acc_t(x0[idx]);
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
      out[fv] = static_cast<scalar_t>(gv + s * ev);
      out[fh] = static_cast<scalar_t>(gh + s * eh);
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
    out[at] = static_cast<scalar_t>(v + s * e);
    if (noise_out) noise_out[at] = static_cast<scalar_t>(e);
  }
}

// ---- the generic step ---------------------------------------------------------------------------
// Every reverse step is, per sample, an affine map of a few per-element values (see
// gddm_kernels/_diffusion.py for the coefficients of DDPM, DDIM, DPM-Solver++(2M) and the
// analytic-attenuation step):
//   m   = guided model output: uncond + s (cond - uncond)        (or cond)
//   x0  = clip(a0 x + a1 m)
//   eps = e0 x + e1 m + e2 x0 + e3 m2                            (m2: a second model output)
//   D   = x0 + r (x0 - prev_x0)                                  (DPM-Solver++ 2M)
//   out = c0 x + c1 D + c2 eps + c3 z
enum StepCoef { kA0, kA1, kE0, kE1, kE2, kE3, kR, kC0, kC1, kC2, kC3, kNumStepCoefs };

template <typename acc_t>
struct StepResult {
  acc_t out, x0;
};

template <typename acc_t>
GDDM_HD StepResult<acc_t> step_at(const acc_t* k, acc_t x, acc_t m, acc_t m2, acc_t prev_x0, acc_t z,
                                  acc_t clip) {
  acc_t x0 = k[kA0] * x + k[kA1] * m;
  if (clip > acc_t(0)) x0 = x0 < -clip ? -clip : (x0 > clip ? clip : x0);
  const acc_t eps = k[kE0] * x + k[kE1] * m + k[kE2] * x0 + k[kE3] * m2;
  const acc_t d = x0 + k[kR] * (x0 - prev_x0);
  return {k[kC0] * x + k[kC1] * d + k[kC2] * eps + k[kC3] * z, x0};
}

}  // namespace gddm
