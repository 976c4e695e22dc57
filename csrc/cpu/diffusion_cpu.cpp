// CPU kernels of the fused noise-add and the generic denoise-update step.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../diffusion_checks.h"
#include "isa.h"
#include "normals_cpu.h"
#include "parallel.h"
#include "stencil_rows.h"

#include <algorithm>
#include <vector>

namespace gddm {
namespace {

constexpr int64_t kNoiseBlock = 1024;  // normals generated ahead of a step's element loop

template <typename T>
const T* optional_ptr(const c10::optional<at::Tensor>& t) {
  return t ? t->const_data_ptr<T>() : nullptr;
}

// The image domain's noise-add with given noise, x_t = a x + s eps (diffused, csrc/diffusion.h),
// one pass over a row: the common case of training and of the diffusers schedulers, whose
// samples arrive flattened, one row per sample. float32 and bfloat16 are compiled per ISA
// (csrc/cpu/isa.h).
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
GDDM_ALWAYS_INLINE void image_noise_row(const scalar_t* x, const scalar_t* eps, acc_t a, acc_t s, int64_t W,
                                        scalar_t* out) {
  for (int64_t j = 0; j < W; ++j) out[j] = static_cast<scalar_t>(diffused(a, acc_t(x[j]), s, acc_t(eps[j])));
}

template <typename scalar_t, typename acc_t>
void run_image_noise_row(const scalar_t* x, const scalar_t* eps, acc_t a, acc_t s, int64_t W, scalar_t* out) {
  image_noise_row(x, eps, a, s, W, out);
}

GDDM_ISA_CLONES void run_image_noise_row(const float* x, const float* eps, float a, float s, int64_t W, float* out) {
  image_noise_row(x, eps, a, s, W, out);
}
GDDM_ISA_CLONES void run_image_noise_row(const at::BFloat16* x, const at::BFloat16* eps, float a, float s, int64_t W,
                                         at::BFloat16* out) {
  image_noise_row(x, eps, a, s, W, out);
}

// CPU noise-add, row by row: the rows a pixel row needs (x or, for the exact model,
// y = a x + s eps, above / at / below it, and its noise rows) are staged in buffers, then the
// stencil (stencil_rows.h) and the noise run as branch-free loops: add_noise_pixel's maths
// (csrc/diffusion.h, the same helpers), reorganised for vectorisation.
std::tuple<at::Tensor, at::Tensor> add_noise_cpu(const at::Tensor& x0, const at::Tensor& coefs, int64_t domain,
                                                 bool exact, const c10::optional<at::Tensor>& noise,
                                                 const c10::optional<at::Tensor>& seed, bool write_noise) {
  AddNoisePlan plan = plan_add_noise(x0, coefs, domain, exact, noise, seed, write_noise);
  if (plan.images == 0) return {plan.out, plan.noise_out};
  const int64_t images_per_sample = plan.images / x0.size(0), H = plan.H, W = plan.W;
  const int64_t seed_value = seed ? seed->item<int64_t>() : 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x0.scalar_type(), "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* x = x0.const_data_ptr<scalar_t>();
    const scalar_t* given = optional_ptr<scalar_t>(noise);
    const acc_t* k = coefs.const_data_ptr<acc_t>();
    scalar_t* out = plan.out.mutable_data_ptr<scalar_t>();
    scalar_t* noise_out = plan.noise_out.numel() ? plan.noise_out.mutable_data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, plan.images * H, row_grain(W), [&](int64_t begin, int64_t end) {
      // Row buffers: field rows up / centre / down, noise rows 0..2, two result rows; allocated
      // on the first row that needs them (the one-pass image rows do not).
      std::vector<acc_t> buffer;
      std::vector<float> normals;
      acc_t *rows[3], *eps[3], *res0 = nullptr, *res1 = nullptr;
      auto load_noise = [&](int64_t start, acc_t* dst) {  // W normals from flat noise index `start`
        if (given) {
          for (int64_t j = 0; j < W; ++j) dst[j] = acc_t(given[start + j]);
        } else {
          fill_normals(seed_value, start, W, normals.data());
          for (int64_t j = 0; j < W; ++j) dst[j] = acc_t(normals[j]);
        }
      };
      auto store = [&](scalar_t* dst, const acc_t* src) {
        for (int64_t j = 0; j < W; ++j) dst[j] = static_cast<scalar_t>(src[j]);
      };
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / H, i = r % H, b = n / images_per_sample, img = n * H * W;
        const acc_t a = k[2 * b], s = k[2 * b + 1];
        if (domain == kImage && given && !noise_out) {
          run_image_noise_row(x + img + i * W, given + img + i * W, a, s, W, out + img + i * W);
          continue;
        }
        if (buffer.empty()) {
          buffer.resize(8 * W);
          normals.resize(W);
          for (int q = 0; q < 3; ++q) {
            rows[q] = buffer.data() + q * W;
            eps[q] = buffer.data() + (3 + q) * W;
          }
          res0 = buffer.data() + 6 * W;
          res1 = buffer.data() + 7 * W;
        }
        const int64_t neighbour[3] = {std::max<int64_t>(i - 1, 0), i, std::min<int64_t>(i + 1, H - 1)};
        const bool stencil = domain != kImage;
        // rows[] = a x (paper) or a x + s eps (exact) at rows i-1, i, i+1 (clamped).
        for (int q = 0; q < 3; ++q) {
          if (q != 1 && !stencil) continue;
          const scalar_t* xr = x + img + neighbour[q] * W;
          if (exact) {
            load_noise(img + neighbour[q] * W, eps[q]);
            for (int64_t j = 0; j < W; ++j) rows[q][j] = diffused(a, acc_t(xr[j]), s, eps[q][j]);
          } else {
            for (int64_t j = 0; j < W; ++j) rows[q][j] = term(a, acc_t(xr[j]));
          }
        }
        if (domain == kGradient) {
          gradient_row([&](int64_t j) { return rows[1][j]; }, [&](int64_t j) { return rows[2][j]; }, i + 1 < H, W,
                       [&](int64_t j, acc_t v) { res0[j] = v; }, [&](int64_t j, acc_t v) { res1[j] = v; });
          scalar_t* out_v = out + 2 * img + i * W;
          scalar_t* out_h = out_v + H * W;
          if (!exact) {
            load_noise(2 * img + i * W, eps[0]);
            load_noise(2 * img + (H + i) * W, eps[2]);
            for (int64_t j = 0; j < W; ++j) {
              res0[j] += term(s, eps[0][j]);
              res1[j] += term(s, eps[2][j]);
            }
            if (noise_out) {
              store(noise_out + 2 * img + i * W, eps[0]);
              store(noise_out + 2 * img + (H + i) * W, eps[2]);
            }
          } else if (noise_out) {
            store(noise_out + img + i * W, eps[1]);
          }
          store(out_v, res0);
          store(out_h, res1);
          continue;
        }
        if (domain == kLaplacian) {
          laplacian_row([&](int64_t j) { return rows[0][j]; }, [&](int64_t j) { return rows[1][j]; },
                        [&](int64_t j) { return rows[2][j]; }, W, [&](int64_t j, acc_t v) { res0[j] = v; });
        } else {
          std::copy(rows[1], rows[1] + W, res0);
        }
        if (!exact) {
          load_noise(img + i * W, eps[1]);
          for (int64_t j = 0; j < W; ++j) res0[j] += term(s, eps[1][j]);
        }
        store(out + img + i * W, res0);
        if (noise_out) store(noise_out + img + i * W, eps[1]);
      }
    });
  });
  return {plan.out, plan.noise_out};
}

// Loads n elements of a model output into buf, combined with its unconditional twin when
// given (classifier-free guidance), or zeros when there is no such output.
template <typename scalar_t, typename acc_t>
GDDM_ALWAYS_INLINE void load_guided(const scalar_t* cond, const scalar_t* uncond, acc_t s, int64_t n, acc_t* buf) {
  if (!cond) {
    std::fill(buf, buf + n, acc_t(0));
  } else if (uncond) {
    for (int64_t i = 0; i < n; ++i) buf[i] = acc_t(uncond[i]) + s * (acc_t(cond[i]) - acc_t(uncond[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) buf[i] = acc_t(cond[i]);
  }
}

// The inputs of one diffusion_step call on data of type scalar_t (null: input absent).
template <typename scalar_t>
struct StepArgs {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t *x, *m, *m_uncond, *m2, *m2_uncond, *prev_x0, *noise;
  const acc_t* coefs;  // (B, kNumStepCoefs)
  scalar_t *out, *x0_out;
  acc_t guidance, clip;
  bool draw_noise;
  int64_t seed, numel, per_sample;
};

// Blocks [b0, b1) of kNoiseBlock elements: every optional input of a block is first staged in
// a small buffer (guided, converted, or zero: an absent input's buffer is zeroed once), so the
// step itself is one branch-free loop per sample that the compiler vectorises.
template <typename scalar_t>
GDDM_ALWAYS_INLINE void step_blocks(const StepArgs<scalar_t>& a, int64_t b0, int64_t b1) {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* absent = nullptr;
  float normals[kNoiseBlock];
  acc_t xb[kNoiseBlock], mb[kNoiseBlock], m2b[kNoiseBlock], pb[kNoiseBlock], zb[kNoiseBlock];
  acc_t outb[kNoiseBlock], x0b[kNoiseBlock];
  if (!a.m2) std::fill(m2b, m2b + kNoiseBlock, acc_t(0));
  if (!a.prev_x0) std::fill(pb, pb + kNoiseBlock, acc_t(0));
  if (!a.noise && !a.draw_noise) std::fill(zb, zb + kNoiseBlock, acc_t(0));
  for (int64_t block = b0; block < b1; ++block) {
    const int64_t start = block * kNoiseBlock, n = std::min(start + kNoiseBlock, a.numel) - start;
    auto at_start = [&](const scalar_t* p) { return p ? p + start : absent; };
    load_guided(a.m + start, at_start(a.m_uncond), a.guidance, n, mb);
    if (a.m2) load_guided(a.m2 + start, at_start(a.m2_uncond), a.guidance, n, m2b);
    if (a.prev_x0) load_guided(a.prev_x0 + start, absent, a.guidance, n, pb);
    if (a.draw_noise) {
      fill_normals(a.seed, start, n, normals);
      std::copy(normals, normals + n, zb);
    } else if (a.noise) {
      load_guided(a.noise + start, absent, a.guidance, n, zb);
    }
    load_guided(a.x + start, absent, a.guidance, n, xb);
    for (int64_t lo = 0; lo < n;) {
      const int64_t sample = (start + lo) / a.per_sample;
      const int64_t hi = std::min(n, (sample + 1) * a.per_sample - start);
      acc_t ks[kNumStepCoefs];  // a local copy: no store below can alias it, so it stays in registers
      std::copy(a.coefs + sample * kNumStepCoefs, a.coefs + (sample + 1) * kNumStepCoefs, ks);
      for (int64_t i = lo; i < hi; ++i) {
        const StepResult<acc_t> r = step_at(ks, xb[i], mb[i], m2b[i], pb[i], zb[i], a.clip);
        outb[i] = r.out;
        x0b[i] = r.x0;
      }
      lo = hi;
    }
    for (int64_t i = 0; i < n; ++i) a.out[start + i] = static_cast<scalar_t>(outb[i]);
    if (a.x0_out) {
      for (int64_t i = 0; i < n; ++i) a.x0_out[start + i] = static_cast<scalar_t>(x0b[i]);
    }
  }
}

// float32, bfloat16 and float16 data are compiled per ISA (csrc/cpu/isa.h): the non-template
// overloads win overload resolution for their StepArgs.
template <typename scalar_t>
void run_step_blocks(const StepArgs<scalar_t>& a, int64_t b0, int64_t b1) {
  step_blocks(a, b0, b1);
}

GDDM_ISA_CLONES void run_step_blocks(const StepArgs<float>& a, int64_t b0, int64_t b1) { step_blocks(a, b0, b1); }
GDDM_ISA_CLONES void run_step_blocks(const StepArgs<at::BFloat16>& a, int64_t b0, int64_t b1) {
  step_blocks(a, b0, b1);
}
GDDM_ISA_CLONES void run_step_blocks(const StepArgs<at::Half>& a, int64_t b0, int64_t b1) { step_blocks(a, b0, b1); }

std::tuple<at::Tensor, at::Tensor> diffusion_step_cpu(
    const at::Tensor& x, const at::Tensor& m, const c10::optional<at::Tensor>& m_uncond,
    const c10::optional<at::Tensor>& m2, const c10::optional<at::Tensor>& m2_uncond,
    const c10::optional<at::Tensor>& prev_x0, const at::Tensor& coefs, double guidance, double clip,
    const c10::optional<at::Tensor>& noise, const c10::optional<at::Tensor>& seed, bool write_x0) {
  StepPlan plan = plan_step(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, noise, seed, write_x0);
  if (x.numel() == 0) return {plan.out, plan.x0_out};
  const int64_t seed_value = seed ? seed->item<int64_t>() : 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const StepArgs<scalar_t> args{x.const_data_ptr<scalar_t>(), m.const_data_ptr<scalar_t>(),
                                  optional_ptr<scalar_t>(m_uncond), optional_ptr<scalar_t>(m2),
                                  optional_ptr<scalar_t>(m2_uncond), optional_ptr<scalar_t>(prev_x0),
                                  optional_ptr<scalar_t>(noise), coefs.const_data_ptr<acc_t>(),
                                  plan.out.mutable_data_ptr<scalar_t>(),
                                  write_x0 ? plan.x0_out.mutable_data_ptr<scalar_t>() : nullptr,
                                  acc_t(guidance), acc_t(clip), seed.has_value(), seed_value, x.numel(),
                                  plan.per_sample};
    const int64_t blocks = (x.numel() + kNoiseBlock - 1) / kNoiseBlock;
    at::parallel_for(0, blocks, std::max<int64_t>(1, kGrainElements / kNoiseBlock), [&](int64_t b0, int64_t b1) {
      run_step_blocks(args, b0, b1);
    });
  });
  return {plan.out, plan.x0_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(gddm_C, CPU, m) {
  m.impl("add_noise", &add_noise_cpu);
  m.impl("diffusion_step", &diffusion_step_cpu);
}

}  // namespace gddm
