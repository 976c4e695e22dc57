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
    const bool generate = seed.has_value();
    at::parallel_for(0, x.numel(), kGrainElements, [&](int64_t begin, int64_t end) {
      float normals[kNoiseBlock];
      for (int64_t idx = begin; idx < end; ++idx) {
        if (generate && (idx == begin || (idx - begin) % kNoiseBlock == 0)) {
          fill_normals(seed_value, idx, std::min<int64_t>(kNoiseBlock, end - idx), normals);
        }
        auto guided = [&](const scalar_t* cond, const scalar_t* uncond) {
          const acc_t v = acc_t(cond[idx]);
          return uncond ? acc_t(uncond[idx]) + s * (v - acc_t(uncond[idx])) : v;
        };
        const acc_t z = zp ? acc_t(zp[idx]) : (generate ? acc_t(normals[(idx - begin) % kNoiseBlock]) : acc_t(0));
        const StepResult<acc_t> r = step_at(k + (idx / plan.per_sample) * kNumStepCoefs, acc_t(xp[idx]),
                                            guided(mp, mu), m2p ? guided(m2p, m2u) : acc_t(0),
                                            pp ? acc_t(pp[idx]) : acc_t(0), z, c);
        out[idx] = static_cast<scalar_t>(r.out);
        if (x0_out) x0_out[idx] = static_cast<scalar_t>(r.x0);
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
