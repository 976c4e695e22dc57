// The tensor checks of gddm_C::sampler_step and sampler_add_noise, with the messages of the
// public functions (gddm_kernels/diffusion.py leaves these checks to the op on the compiled
// backends: in C++ they cost next to nothing, in Python they cost more than the kernel at
// sampler sizes). The CPU registrations and the composite ones for the other devices run them.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/Optional.h>

#include "coefs_checks.h"

namespace gddm {

// `arg` has the sample's shape and device (its dtype is the caller's: it hands the op tensors
// of the sample's dtype).
inline void check_like_sample(const c10::optional<at::Tensor>& arg, const at::Tensor& sample, const char* op,
                              const char* name) {
  if (!arg) return;
  TORCH_CHECK_VALUE(arg->sizes() == sample.sizes() && arg->device() == sample.device(), "gddm.", op, ": argument `",
                    name, "` must have the shape of `sample` ", python_shape(sample.sizes()), " on ", sample.device(),
                    ", got shape ", python_shape(arg->sizes()), " on ", arg->device());
}

// The public names of sampler_step's model outputs: the attenuation step takes its two outputs
// (attenuation, eps) as the pair model_output, and their unconditional twins as uncond_output.
struct OutputNames {
  const char *m, *m_uncond, *m2, *m2_uncond;
};

inline void check_sampler_step_tensors(int64_t sampler, const at::Tensor& x, const at::Tensor& m,
                                       const c10::optional<at::Tensor>& m_uncond,
                                       const c10::optional<at::Tensor>& m2,
                                       const c10::optional<at::Tensor>& m2_uncond,
                                       const c10::optional<at::Tensor>& prev_x0, const at::Tensor& t,
                                       const at::Tensor& t_prev, const c10::optional<at::Tensor>& t_last,
                                       const c10::optional<at::Tensor>& noise) {
  const char* op = step_op_name(sampler);
  const bool attenuation = sampler == kAttenuation;
  const OutputNames names = attenuation
                                ? OutputNames{"model_output[0]", "uncond_output[0]", "model_output[1]", "uncond_output[1]"}
                                : OutputNames{"model_output", "uncond_output", "m2", "m2_uncond"};
  TORCH_CHECK_VALUE(x.dim() >= 1, "gddm.", op, ": argument `sample` must have shape (B, ...), got a 0-dim tensor");
  check_like_sample(m, x, op, names.m);
  check_like_sample(m_uncond, x, op, names.m_uncond);
  check_like_sample(m2, x, op, names.m2);
  check_like_sample(m2_uncond, x, op, names.m2_uncond);
  check_like_sample(prev_x0, x, op, "prev_x0");
  if (noise) {
    TORCH_CHECK_VALUE(noise->sizes() == x.sizes() && noise->device() == x.device(), "gddm.", op,
                      ": argument `noise` must have shape ", python_shape(x.sizes()), " on ", x.device(),
                      ", got shape ", python_shape(noise->sizes()), " on ", noise->device());
  }
  check_times(t, x.size(0), x, !attenuation, op, "t");
  check_times(t_prev, x.size(0), x, !attenuation, op, "t_prev");
  if (t_last) check_times(*t_last, x.size(0), x, true, op, "t_last");
}

// The per-sample times of a noise-add against its data's batch: int64 timesteps of a schedule
// (add_noise) or the attenuation process's floating times (attenuation_add_noise). The data's
// own checks (at least 3 dims) come from the kernel's plan.
inline void check_noise_add_times(const at::Tensor& x0, const at::Tensor& t) {
  if (x0.dim() == 0) return;
  const bool attenuation = at::isFloatingType(t.scalar_type());
  check_times(t, x0.size(0), x0, !attenuation, attenuation ? "attenuation_add_noise" : "add_noise", "t");
}

}  // namespace gddm
