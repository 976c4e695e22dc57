// CPU kernels of the fused noise-add and the generic denoise-update step.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../diffusion_checks.h"
#include "../sampler_checks.h"
#include "../seed.h"
#include "coefs_cpu.h"
#include "isa.h"
#include "normals_cpu.h"
#include "parallel.h"
#include "stencil_rows.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace gddm {
namespace {

constexpr int64_t kNoiseBlock = 1024;  // normals generated ahead of a step's element loop

template <typename T>
const T* optional_ptr(const c10::optional<at::Tensor>& t) {
  return t ? t->const_data_ptr<T>() : nullptr;
}

// The image domain's noise-add with given noise, x_t = a x + s eps (diffused, csrc/diffusion.h),
// one pass over a contiguous span of one sample: the common case of training and of the
// diffusers schedulers. float32 and bfloat16 are compiled per ISA (csrc/cpu/isa.h).
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
GDDM_ALWAYS_INLINE void image_noise_span(const scalar_t* x, const scalar_t* eps, acc_t a, acc_t s, int64_t n,
                                         scalar_t* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = static_cast<scalar_t>(diffused(a, acc_t(x[j]), s, acc_t(eps[j])));
}

template <typename scalar_t, typename acc_t>
void run_image_noise_span(const scalar_t* x, const scalar_t* eps, acc_t a, acc_t s, int64_t n, scalar_t* out) {
  image_noise_span(x, eps, a, s, n, out);
}

GDDM_ISA_CLONES void run_image_noise_span(const float* x, const float* eps, float a, float s, int64_t n, float* out) {
  image_noise_span(x, eps, a, s, n, out);
}
GDDM_ISA_CLONES void run_image_noise_span(const at::BFloat16* x, const at::BFloat16* eps, float a, float s, int64_t n,
                                         at::BFloat16* out) {
  image_noise_span(x, eps, a, s, n, out);
}

// CPU noise-add, row by row: the rows a pixel row needs (x or, for the exact model,
// y = a x + s eps, above / at / below it, and its noise rows) are staged in buffers, then the
// stencil (stencil_rows.h) and the noise run as branch-free loops: add_noise_pixel's maths
// (csrc/diffusion.h, the same helpers), reorganised for vectorisation. Per-sample coefficients
// k ((B, 2) row-major, of the arithmetic type); into the outputs of `plan` (images > 0).
template <typename scalar_t>
void add_noise_all(const at::Tensor& x0, const at::opmath_type<scalar_t>* k, int64_t domain, bool exact,
                   const c10::optional<at::Tensor>& noise, const c10::optional<at::Tensor>& seed,
                   const AddNoisePlan& plan) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t images_per_sample = plan.images / x0.size(0), H = plan.H, W = plan.W;
  const int64_t seed_value = seed ? seed->item<int64_t>() : 0;
  const scalar_t* x = x0.const_data_ptr<scalar_t>();
  const scalar_t* given = optional_ptr<scalar_t>(noise);
  scalar_t* out = plan.out.mutable_data_ptr<scalar_t>();
  scalar_t* noise_out = plan.noise_out.numel() ? plan.noise_out.mutable_data_ptr<scalar_t>() : nullptr;
  const bool one_pass = domain == kImage && given && !noise_out;
  at::parallel_for(0, plan.images * H, row_grain(W), [&](int64_t begin, int64_t end) {
    if (one_pass) {  // rows [begin, end) are one contiguous span: one pass per sample in it
      const int64_t per_sample = images_per_sample * H * W, stop = end * W;
      for (int64_t e = begin * W; e < stop;) {
        const int64_t b = e / per_sample, next = std::min(stop, (b + 1) * per_sample);
        run_image_noise_span(x + e, given + e, k[2 * b], k[2 * b + 1], next - e, out + e);
        e = next;
      }
      return;
    }
    // Row buffers: field rows up / centre / down, noise rows 0..2, two result rows.
    std::vector<acc_t> buffer(8 * W);
    std::vector<float> normals(W);
    acc_t *rows[3], *eps[3], *res0 = buffer.data() + 6 * W, *res1 = buffer.data() + 7 * W;
    for (int q = 0; q < 3; ++q) {
      rows[q] = buffer.data() + q * W;
      eps[q] = buffer.data() + (3 + q) * W;
    }
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
}

std::tuple<at::Tensor, at::Tensor> add_noise_cpu(const at::Tensor& x0, const at::Tensor& coefs, int64_t domain,
                                                 bool exact, const c10::optional<at::Tensor>& noise,
                                                 const c10::optional<at::Tensor>& seed, bool write_noise) {
  const AddNoisePlan plan = plan_add_noise(x0, coefs, domain, exact, noise, seed, write_noise);
  if (plan.images == 0) return {plan.out, plan.noise_out};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x0.scalar_type(), "gddm_C", [&] {
    add_noise_all<scalar_t>(x0, coefs.const_data_ptr<at::opmath_type<scalar_t>>(), domain, exact, noise, seed, plan);
  });
  return {plan.out, plan.noise_out};
}

// gddm_C::sampler_add_noise on the CPU, below its autograd (csrc/sampler_ops.cpp): as
// sampler_step_cpu, the coefficients go to the kernel from a host buffer, not a tensor.
std::tuple<at::Tensor, at::Tensor> sampler_add_noise_cpu(const at::Tensor& x0, const at::Tensor& gammas,
                                                         const at::Tensor& t, int64_t domain, bool exact, double k,
                                                         const c10::optional<at::Tensor>& noise,
                                                         c10::optional<at::Generator> generator, bool write_noise) {
  const c10::optional<at::Tensor> seed = draw_seed(true, noise, std::move(generator), x0);
  const AddNoisePlan plan = plan_noise_add_data(x0, domain, exact, noise, seed, write_noise);
  check_noise_add_times(x0, t);
  std::vector<double> coefs;
  fill_noise_coefs(gammas, t, k, coefs);
  if (plan.images == 0) return {plan.out, plan.noise_out};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x0.scalar_type(), "gddm_C", [&] {
    const std::vector<at::opmath_type<scalar_t>> typed(coefs.begin(), coefs.end());
    add_noise_all<scalar_t>(x0, typed.data(), domain, exact, noise, seed, plan);
  });
  return {plan.out, plan.noise_out};
}

// Loads n elements of an input into buf as acc_t, combined with its unconditional twin when
// given (classifier-free guidance: uncond + s (cond - uncond)).
template <typename scalar_t, typename acc_t>
GDDM_ALWAYS_INLINE void load_guided(const scalar_t* cond, const scalar_t* uncond, acc_t s, int64_t n, acc_t* buf) {
  if (uncond) {
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

// n elements of one sample, as acc_t values (null: input absent; x0 is written only where
// `want_x0`, else it may be scratch).
template <typename acc_t>
struct Span {
  const acc_t *x, *m, *m2, *prev_x0, *z;
  acc_t *out, *x0;
  int64_t n;
  bool want_x0;
};

// The step of one sample's span with its coefficients ks, compiled for each combination of the
// optional inputs (kM2, kPrev, kZ) so that an absent one costs nothing, and vectorised (no
// pointer aliases another): term by term through step_at (kTermwise), or in the folded form of
// affine_step, which needs no clipping and finite coefficients (where a coefficient is infinite
// the two forms meet different infinities: only step_at's is the specification's).
template <bool kTermwise, bool kM2, bool kPrev, bool kZ, typename acc_t>
GDDM_ALWAYS_INLINE void step_span(const acc_t* ks, const Span<acc_t>& s, acc_t clip) {
  const acc_t* __restrict__ x = s.x;
  const acc_t* __restrict__ m = s.m;
  const acc_t* __restrict__ m2 = s.m2;
  const acc_t* __restrict__ prev_x0 = s.prev_x0;
  const acc_t* __restrict__ z = s.z;
  acc_t* __restrict__ out = s.out;
  acc_t* __restrict__ x0 = s.x0;
  if constexpr (kTermwise) {
    acc_t k[kNumStepCoefs];  // a local copy: no store below can alias it, so it stays in registers
    std::copy(ks, ks + kNumStepCoefs, k);
    for (int64_t i = 0; i < s.n; ++i) {
      const StepResult<acc_t> r = step_at(k, x[i], m[i], kM2 ? m2[i] : acc_t(0), kPrev ? prev_x0[i] : acc_t(0),
                                          kZ ? z[i] : acc_t(0), clip);
      out[i] = r.out;
      x0[i] = r.x0;
    }
  } else {
    const AffineStep<acc_t> f = affine_step(ks);
    for (int64_t i = 0; i < s.n; ++i) {
      acc_t v = term(f.x, x[i]) + term(f.m, m[i]);
      if constexpr (kM2) v += term(f.m2, m2[i]);
      if constexpr (kPrev) v += term(f.prev_x0, prev_x0[i]);
      if constexpr (kZ) v += term(f.z, z[i]);
      out[i] = v;
    }
    if (s.want_x0) {
      const acc_t a0 = ks[kA0], a1 = ks[kA1];
      for (int64_t i = 0; i < s.n; ++i) x0[i] = term(a0, x[i]) + term(a1, m[i]);
    }
  }
}

template <bool kTermwise, typename acc_t>
GDDM_ALWAYS_INLINE void step_span_inputs(const acc_t* ks, const Span<acc_t>& s, acc_t clip) {
  switch ((s.m2 ? 4 : 0) | (s.prev_x0 ? 2 : 0) | (s.z ? 1 : 0)) {
    case 0: return step_span<kTermwise, false, false, false>(ks, s, clip);
    case 1: return step_span<kTermwise, false, false, true>(ks, s, clip);
    case 2: return step_span<kTermwise, false, true, false>(ks, s, clip);
    case 3: return step_span<kTermwise, false, true, true>(ks, s, clip);
    case 4: return step_span<kTermwise, true, false, false>(ks, s, clip);
    case 5: return step_span<kTermwise, true, false, true>(ks, s, clip);
    case 6: return step_span<kTermwise, true, true, false>(ks, s, clip);
    default: return step_span<kTermwise, true, true, true>(ks, s, clip);
  }
}

// Elements [start, start + n) of an input as acc_t values: the data itself where it already holds
// them (float32 / float64 without an unconditional twin), else converted (and guided) into
// `buffer`; null for an absent input.
template <typename scalar_t, typename acc_t>
GDDM_ALWAYS_INLINE const acc_t* block_input(const scalar_t* cond, const std::type_identity_t<scalar_t>* uncond,
                                            acc_t guidance, int64_t start, int64_t n, acc_t* buffer) {
  if (!cond) return nullptr;
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    if (!uncond) return cond + start;
  }
  load_guided(cond + start, uncond ? uncond + start : nullptr, guidance, n, buffer);
  return buffer;
}

// Blocks [b0, b1) of kNoiseBlock elements. The kernel reads an input in place where it already
// holds arithmetic-type values (float32 / float64 data without guidance) and writes the results
// in place likewise; otherwise the block's values are staged in small buffers (converted, or
// guided: uncond + s (cond - uncond)) and the results converted back.
template <typename scalar_t>
GDDM_ALWAYS_INLINE void step_blocks(const StepArgs<scalar_t>& a, int64_t b0, int64_t b1) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool kInPlace = std::is_same_v<scalar_t, acc_t>;
  float normals[kNoiseBlock];
  acc_t xb[kNoiseBlock], mb[kNoiseBlock], m2b[kNoiseBlock], pb[kNoiseBlock], zb[kNoiseBlock];
  acc_t outb[kNoiseBlock], x0b[kNoiseBlock];
  for (int64_t block = b0; block < b1; ++block) {
    const int64_t start = block * kNoiseBlock, n = std::min(start + kNoiseBlock, a.numel) - start;
    const acc_t *x = block_input(a.x, nullptr, a.guidance, start, n, xb);
    const acc_t *m = block_input(a.m, a.m_uncond, a.guidance, start, n, mb);
    const acc_t *m2 = block_input(a.m2, a.m2_uncond, a.guidance, start, n, m2b);
    const acc_t *prev_x0 = block_input(a.prev_x0, nullptr, a.guidance, start, n, pb);
    const acc_t* z = block_input(a.noise, nullptr, a.guidance, start, n, zb);
    if (a.draw_noise) {
      fill_normals(a.seed, start, n, normals);
      std::copy(normals, normals + n, zb);
      z = zb;
    }
    acc_t* out = outb;
    acc_t* x0 = x0b;
    if constexpr (kInPlace) {
      out = a.out + start;
      if (a.x0_out) x0 = a.x0_out + start;
    }
    for (int64_t lo = 0; lo < n;) {
      const int64_t sample = (start + lo) / a.per_sample;
      const int64_t hi = std::min(n, (sample + 1) * a.per_sample - start);
      auto at_lo = [&](const acc_t* p) { return p ? p + lo : nullptr; };
      const Span<acc_t> span{x + lo, m + lo, at_lo(m2), at_lo(prev_x0), at_lo(z), out + lo, x0 + lo, hi - lo,
                             a.x0_out != nullptr};
      const acc_t* ks = a.coefs + sample * kNumStepCoefs;
      if (a.clip > acc_t(0) || !std::all_of(ks, ks + kNumStepCoefs, [](acc_t c) { return std::isfinite(c); })) {
        step_span_inputs<true>(ks, span, a.clip);
      } else {
        step_span_inputs<false>(ks, span, a.clip);
      }
      lo = hi;
    }
    if constexpr (!kInPlace) {
      for (int64_t i = 0; i < n; ++i) a.out[start + i] = static_cast<scalar_t>(outb[i]);
      if (a.x0_out) {
        for (int64_t i = 0; i < n; ++i) a.x0_out[start + i] = static_cast<scalar_t>(x0b[i]);
      }
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

using OptTensor = c10::optional<at::Tensor>;

// The step over all of x, checked and allocated by `plan`, with per-sample coefficients `coefs`
// ((B, kNumStepCoefs) row-major, of the arithmetic type).
template <typename scalar_t>
void step_all(const at::Tensor& x, const at::Tensor& m, const OptTensor& m_uncond, const OptTensor& m2,
              const OptTensor& m2_uncond, const OptTensor& prev_x0, const at::opmath_type<scalar_t>* coefs,
              double guidance, double clip, const OptTensor& noise, const OptTensor& seed, const StepPlan& plan) {
  using acc_t = at::opmath_type<scalar_t>;
  const StepArgs<scalar_t> args{x.const_data_ptr<scalar_t>(),
                                m.const_data_ptr<scalar_t>(),
                                optional_ptr<scalar_t>(m_uncond),
                                optional_ptr<scalar_t>(m2),
                                optional_ptr<scalar_t>(m2_uncond),
                                optional_ptr<scalar_t>(prev_x0),
                                optional_ptr<scalar_t>(noise),
                                coefs,
                                plan.out.mutable_data_ptr<scalar_t>(),
                                plan.x0_out.numel() ? plan.x0_out.mutable_data_ptr<scalar_t>() : nullptr,
                                acc_t(guidance),
                                acc_t(clip),
                                seed.has_value(),
                                seed ? seed->item<int64_t>() : 0,
                                x.numel(),
                                plan.per_sample};
  const int64_t blocks = (x.numel() + kNoiseBlock - 1) / kNoiseBlock;
  at::parallel_for(0, blocks, std::max<int64_t>(1, kGrainElements / kNoiseBlock),
                   [&](int64_t b0, int64_t b1) { run_step_blocks(args, b0, b1); });
}

std::tuple<at::Tensor, at::Tensor> diffusion_step_cpu(const at::Tensor& x, const at::Tensor& m,
                                                      const OptTensor& m_uncond, const OptTensor& m2,
                                                      const OptTensor& m2_uncond, const OptTensor& prev_x0,
                                                      const at::Tensor& coefs, double guidance, double clip,
                                                      const OptTensor& noise, const OptTensor& seed, bool write_x0) {
  const StepPlan plan = plan_step(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, noise, seed, write_x0);
  if (x.numel() == 0) return {plan.out, plan.x0_out};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    step_all<scalar_t>(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs.const_data_ptr<at::opmath_type<scalar_t>>(),
                       guidance, clip, noise, seed, plan);
  });
  return {plan.out, plan.x0_out};
}

// gddm_C::sampler_step on the CPU (csrc/sampler_ops.cpp has the composite form for the other
// devices): the coefficients are formed by step_coefs' loop into a small host buffer, not a
// tensor, and the step follows; at sampler sizes this saves the two tensor ops (the table and
// its conversion to the arithmetic dtype) that would cost more than the kernel.
std::tuple<at::Tensor, at::Tensor> sampler_step_cpu(
    const at::Tensor& x, const at::Tensor& m, const OptTensor& m_uncond, const OptTensor& m2,
    const OptTensor& m2_uncond, const OptTensor& prev_x0, const at::Tensor& gammas, const at::Tensor& t,
    const at::Tensor& t_prev, const OptTensor& t_last, int64_t sampler, int64_t prediction, double eta, double k,
    double guidance, double clip, const OptTensor& noise, c10::optional<at::Generator> generator, bool draw_noise,
    bool write_x0) {
  check_sampler_step_tensors(sampler, x, m, m_uncond, m2, m2_uncond, prev_x0, t, t_prev, t_last, noise);
  std::vector<double> coefs;
  fill_step_coefs(gammas, t, t_prev, t_last, sampler, prediction, eta, k, clip > 0, coefs);
  const OptTensor seed = draw_seed(draw_noise, noise, std::move(generator), x);
  check_step_inputs(x, m, m_uncond, m2, m2_uncond, prev_x0, noise, seed);
  const StepPlan plan = step_outputs(x, write_x0);
  if (x.numel() == 0) return {plan.out, plan.x0_out};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    const std::vector<at::opmath_type<scalar_t>> typed(coefs.begin(), coefs.end());
    step_all<scalar_t>(x, m, m_uncond, m2, m2_uncond, prev_x0, typed.data(), guidance, clip, noise, seed, plan);
  });
  return {plan.out, plan.x0_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(gddm_C, CPU, m) {
  m.impl("add_noise", &add_noise_cpu);
  m.impl("diffusion_step", &diffusion_step_cpu);
  m.impl("sampler_step", &sampler_step_cpu);
  m.impl("sampler_add_noise", &sampler_add_noise_cpu);
}

}  // namespace gddm
