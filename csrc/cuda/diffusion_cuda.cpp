// CUDA registrations of the fused diffusion kernels (diffusion_kernels.cu).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include "../diffusion_checks.h"
#include "host.h"
#include "diffusion_kernels.h"

namespace gddm {
namespace {

const void* optional_ptr(const c10::optional<at::Tensor>& t) { return t ? t->const_data_ptr() : nullptr; }

const int64_t* seed_ptr(const c10::optional<at::Tensor>& seed) {
  return seed ? seed->const_data_ptr<int64_t>() : nullptr;
}

std::tuple<at::Tensor, at::Tensor> add_noise_cuda(const at::Tensor& x0, const at::Tensor& coefs, int64_t domain,
                                                  bool exact, const c10::optional<at::Tensor>& noise,
                                                  const c10::optional<at::Tensor>& seed, bool write_noise) {
  const cuda::DeviceGuard guard(x0.device());
  AddNoisePlan plan = plan_add_noise(x0, coefs, domain, exact, noise, seed, write_noise);
  if (plan.images == 0) return {plan.out, plan.noise_out};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x0.scalar_type(), "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    cuda::launch_add_noise(x0.const_data_ptr<scalar_t>(), coefs.const_data_ptr<acc_t>(),
                           static_cast<const scalar_t*>(optional_ptr(noise)), seed_ptr(seed),
                           plan.out.mutable_data_ptr<scalar_t>(),
                           plan.noise_out.numel() ? plan.noise_out.mutable_data_ptr<scalar_t>() : nullptr,
                           plan.images, plan.images / x0.size(0), plan.H, plan.W, int(domain), exact,
                           cuda::current_stream());
  });
  GDDM_CHECK_LAUNCH();
  return {plan.out, plan.noise_out};
}

std::tuple<at::Tensor, at::Tensor> diffusion_step_cuda(
    const at::Tensor& x, const at::Tensor& m, const c10::optional<at::Tensor>& m_uncond,
    const c10::optional<at::Tensor>& m2, const c10::optional<at::Tensor>& m2_uncond,
    const c10::optional<at::Tensor>& prev_x0, const at::Tensor& coefs, double guidance, double clip,
    const c10::optional<at::Tensor>& noise, const c10::optional<at::Tensor>& seed, bool write_x0) {
  const cuda::DeviceGuard guard(x.device());
  StepPlan plan = plan_step(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, noise, seed, write_x0);
  if (x.numel() == 0) return {plan.out, plan.x0_out};
  const cuda::StepInputs in{x.const_data_ptr(),  m.const_data_ptr(),      optional_ptr(m_uncond),
                            optional_ptr(m2),    optional_ptr(m2_uncond), optional_ptr(prev_x0),
                            optional_ptr(noise), seed_ptr(seed)};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    cuda::launch_diffusion_step(in, coefs.const_data_ptr<acc_t>(), plan.out.mutable_data_ptr<scalar_t>(),
                                write_x0 ? plan.x0_out.mutable_data_ptr<scalar_t>() : nullptr, x.numel(),
                                plan.per_sample, guidance, clip, cuda::current_stream());
  });
  GDDM_CHECK_LAUNCH();
  return {plan.out, plan.x0_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(GDDM_CUDA_LIBRARY, GDDM_CUDA_KEY, m) {
  m.impl("add_noise", &add_noise_cuda);
  m.impl("diffusion_step", &diffusion_step_cuda);
}

}  // namespace gddm
