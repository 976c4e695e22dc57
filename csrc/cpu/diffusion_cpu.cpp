// CPU kernels of the fused noise-add and the generic denoise-update step.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../diffusion_args.h"
#include "parallel.h"

#include <algorithm>
#include <vector>

namespace gddm {
namespace {

constexpr int64_t kNoiseBlock = 1024;  // normals generated ahead of a step's element loop

// The generated noise a row of noise-add reads, filled ahead of the pixel loop: the image row
// (paper model), both field rows (gradient domain, paper), or the rows i-1 .. i+1 (exact model,
// whose stencil reads the neighbours' noise).
class RowNoise {
 public:
  explicit RowNoise(int64_t W) : first_(3 * W), second_(W) {}

  void fill(int64_t seed, int64_t n, int64_t i, int64_t H, int64_t W, int domain, bool exact) {
    const int64_t img = n * H * W;
    if (exact) {
      const int64_t lo = std::max<int64_t>(i - 1, 0), hi = std::min<int64_t>(i + 2, H);
      set(first_, first_start_, first_count_, seed, img + lo * W, (hi - lo) * W);
      second_count_ = 0;
    } else if (domain == kGradient) {
      set(first_, first_start_, first_count_, seed, 2 * img + i * W, W);
      set(second_, second_start_, second_count_, seed, 2 * img + (H + i) * W, W);
    } else {
      set(first_, first_start_, first_count_, seed, img + i * W, W);
      second_count_ = 0;
    }
  }

  float operator()(int64_t idx) const {
    const int64_t at = idx - first_start_;
    return at >= 0 && at < first_count_ ? first_[at] : second_[idx - second_start_];
  }

 private:
  static void set(std::vector<float>& buffer, int64_t& start, int64_t& count, int64_t seed, int64_t from,
                  int64_t n) {
    start = from;
    count = n;
    fill_normals(seed, from, n, buffer.data());
  }

  std::vector<float> first_, second_;
  int64_t first_start_ = 0, first_count_ = 0, second_start_ = 0, second_count_ = 0;
};

template <typename T>
const T* optional_ptr(const c10::optional<at::Tensor>& t) {
  return t ? t->const_data_ptr<T>() : nullptr;
}

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
      RowNoise noise_rows(W);
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / H, i = r % H, b = n / images_per_sample;
        const acc_t a = k[2 * b], s = k[2 * b + 1];
        if (!given) noise_rows.fill(seed_value, n, i, H, W, int(domain), exact);
        for (int64_t j = 0; j < W; ++j) {
          if (given) {
            add_noise_pixel<acc_t>(x, out, noise_out, n * H * W, i, j, H, W, int(domain), exact, a, s,
                                   [&](int64_t idx) { return acc_t(given[idx]); });
          } else {
            add_noise_pixel<acc_t>(x, out, noise_out, n * H * W, i, j, H, W, int(domain), exact, a, s,
                                   [&](int64_t idx) { return acc_t(noise_rows(idx)); });
          }
        }
      }
    });
  });
  return {plan.out, plan.noise_out};
}

// Loads n elements of a model output into buf, combined with its unconditional twin when
// given (classifier-free guidance), or zeros when there is no such output.
template <typename scalar_t, typename acc_t>
void load_guided(const scalar_t* cond, const scalar_t* uncond, acc_t s, int64_t n, acc_t* buf) {
  if (!cond) {
    std::fill(buf, buf + n, acc_t(0));
  } else if (uncond) {
    for (int64_t i = 0; i < n; ++i) buf[i] = acc_t(uncond[i]) + s * (acc_t(cond[i]) - acc_t(uncond[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) buf[i] = acc_t(cond[i]);
  }
}

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
    const scalar_t *xp = x.const_data_ptr<scalar_t>(), *mp = m.const_data_ptr<scalar_t>();
    const scalar_t *mu = optional_ptr<scalar_t>(m_uncond), *m2p = optional_ptr<scalar_t>(m2);
    const scalar_t *m2u = optional_ptr<scalar_t>(m2_uncond), *pp = optional_ptr<scalar_t>(prev_x0);
    const scalar_t* zp = optional_ptr<scalar_t>(noise);
    const acc_t* k = coefs.const_data_ptr<acc_t>();
    scalar_t* out = plan.out.mutable_data_ptr<scalar_t>();
    scalar_t* x0_out = write_x0 ? plan.x0_out.mutable_data_ptr<scalar_t>() : nullptr;
    const acc_t s = acc_t(guidance), c = acc_t(clip);
    const int64_t numel = x.numel(), blocks = (numel + kNoiseBlock - 1) / kNoiseBlock;
    // Blocks of kNoiseBlock elements: every optional input of a block is first staged in a
    // small buffer (guided, converted, or zero), so the step itself is one branch-free loop
    // per sample that the compiler vectorises.
    at::parallel_for(0, blocks, std::max<int64_t>(1, kGrainElements / kNoiseBlock), [&](int64_t b0, int64_t b1) {
      float normals[kNoiseBlock];
      acc_t mb[kNoiseBlock], m2b[kNoiseBlock], pb[kNoiseBlock], zb[kNoiseBlock], x0b[kNoiseBlock];
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t start = block * kNoiseBlock, n = std::min(start + kNoiseBlock, numel) - start;
        load_guided(mp + start, mu ? mu + start : nullptr, s, n, mb);
        load_guided(m2p ? m2p + start : nullptr, m2u ? m2u + start : nullptr, s, n, m2b);
        load_guided(pp ? pp + start : nullptr, static_cast<const scalar_t*>(nullptr), s, n, pb);
        if (seed) {
          fill_normals(seed_value, start, n, normals);
          std::copy(normals, normals + n, zb);
        } else {
          load_guided(zp ? zp + start : nullptr, static_cast<const scalar_t*>(nullptr), s, n, zb);
        }
        for (int64_t lo = 0; lo < n;) {
          const int64_t sample = (start + lo) / plan.per_sample;
          const int64_t hi = std::min(n, (sample + 1) * plan.per_sample - start);
          const acc_t* ks = k + sample * kNumStepCoefs;
          const scalar_t* xb = xp + start;
          for (int64_t i = lo; i < hi; ++i) {
            const StepResult<acc_t> r = step_at(ks, acc_t(xb[i]), mb[i], m2b[i], pb[i], zb[i], c);
            out[start + i] = static_cast<scalar_t>(r.out);
            x0b[i] = r.x0;
          }
          lo = hi;
        }
        if (x0_out) {
          for (int64_t i = 0; i < n; ++i) x0_out[start + i] = static_cast<scalar_t>(x0b[i]);
        }
      }
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
