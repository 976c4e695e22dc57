// CUDA registrations of the coefficient ops (coefs_kernels.cu).
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../coefs_checks.h"
#include "coefs_kernels.h"
#include "host.h"

namespace gddm {
namespace {

const int64_t* optional_times(const c10::optional<at::Tensor>& t) {
  return t ? t->const_data_ptr<int64_t>() : nullptr;
}

at::Tensor step_coefs_cuda(const at::Tensor& gammas, const at::Tensor& t, const at::Tensor& t_prev,
                           const c10::optional<at::Tensor>& t_last, int64_t sampler, int64_t prediction, double eta,
                           double k, bool clip) {
  const auto [op, B, attenuation] = check_step_coef_args(gammas, t, t_prev, t_last, sampler);
  const cuda::DeviceGuard guard(t.device());
  const StepParams params{int(sampler), int(prediction), eta, k, clip};
  at::Tensor out = at::empty({B, kNumStepCoefs}, t.options().dtype(at::kDouble));
  if (B == 0) return out;
  const auto stream = cuda::current_stream();
  if (attenuation) {
    const at::Tensor t64 = t.to(at::kDouble).contiguous(), p64 = t_prev.to(at::kDouble).contiguous();
    cuda::launch_attenuation_step_coefs(t64.const_data_ptr<double>(), p64.const_data_ptr<double>(), B, params,
                                        out.mutable_data_ptr<double>(), stream);
  } else {
    const at::Tensor tc = t.contiguous(), pc = t_prev.contiguous();
    const c10::optional<at::Tensor> lc = t_last ? c10::optional<at::Tensor>(t_last->contiguous()) : c10::nullopt;
    cuda::launch_schedule_step_coefs(gammas.const_data_ptr<double>(), gammas.numel(), tc.const_data_ptr<int64_t>(),
                                     pc.const_data_ptr<int64_t>(), optional_times(lc), B, params,
                                     out.mutable_data_ptr<double>(), stream);
  }
  GDDM_CHECK_LAUNCH();
  return out;
}

at::Tensor noise_coefs_cuda(const at::Tensor& gammas, const at::Tensor& t, double k) {
  const auto [op, B, attenuation] = check_noise_coef_args(gammas, t);
  const cuda::DeviceGuard guard(t.device());
  at::Tensor out = at::empty({B, 2}, t.options().dtype(at::kDouble));
  if (B == 0) return out;
  const auto stream = cuda::current_stream();
  if (attenuation) {
    const at::Tensor t64 = t.to(at::kDouble).contiguous();
    cuda::launch_noise_coefs(nullptr, 0, nullptr, t64.const_data_ptr<double>(), B, k, out.mutable_data_ptr<double>(),
                             stream);
  } else {
    const at::Tensor tc = t.contiguous();
    cuda::launch_noise_coefs(gammas.const_data_ptr<double>(), gammas.numel(), tc.const_data_ptr<int64_t>(), nullptr,
                             B, k, out.mutable_data_ptr<double>(), stream);
  }
  GDDM_CHECK_LAUNCH();
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(GDDM_CUDA_LIBRARY, GDDM_CUDA_KEY, m) {
  m.impl("step_coefs", &step_coefs_cuda);
  m.impl("noise_coefs", &noise_coefs_cuda);
}

}  // namespace gddm
