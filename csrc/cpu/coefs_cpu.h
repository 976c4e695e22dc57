// The CPU loops of gddm_C::step_coefs and noise_coefs, shared with the CPU sampler_step and
// sampler_add_noise (diffusion_cpu.cpp), which form their coefficients without a tensor op.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <vector>

namespace gddm {

// The per-sample coefficients of a reverse step (csrc/step_coefs.h), (B, kNumStepCoefs)
// row-major into `out`, B = t.numel(), after step_coefs' argument and range checks (the
// messages of the Python API).
void fill_step_coefs(const at::Tensor& gammas, const at::Tensor& t, const at::Tensor& t_prev,
                     const c10::optional<at::Tensor>& t_last, int64_t sampler, int64_t prediction, double eta,
                     double k, bool clip, std::vector<double>& out);

// The same for a noise-add: (B, 2) = [a, s] per sample (gddm_C::noise_coefs's loop and checks).
void fill_noise_coefs(const at::Tensor& gammas, const at::Tensor& t, double k, std::vector<double>& out);

}  // namespace gddm
