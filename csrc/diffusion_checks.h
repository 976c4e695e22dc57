// Host-side checks and output allocation of the fused diffusion kernels, shared by the CPU and
// CUDA registrations so both accept exactly the same inputs.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <c10/util/Optional.h>

#include <vector>

#include "diffusion.h"
#include "image_checks.h"

namespace gddm {

inline void check_coefs(const at::Tensor& coefs, const at::Tensor& x, int64_t per_sample, const char* op) {
  TORCH_CHECK(coefs.is_contiguous() && coefs.dim() == 2 && coefs.size(0) == x.size(0) &&
                  coefs.size(1) == per_sample && coefs.scalar_type() == arithmetic_dtype(x.scalar_type()) &&
                  coefs.device() == x.device(),
              "gddm_C::", op, ": coefs must be a contiguous (B, ", per_sample, ") tensor of the arithmetic dtype");
}

inline void check_same(const c10::optional<at::Tensor>& t, const at::Tensor& x, at::IntArrayRef shape, const char* op,
                       const char* arg) {
  if (!t) return;
  TORCH_CHECK(t->is_contiguous() && t->scalar_type() == x.scalar_type() && t->device() == x.device() &&
                  t->sizes() == shape,
              "gddm_C::", op, ": `", arg, "` must be contiguous, of x's dtype and device, shape ", shape);
}

inline void check_seed(const c10::optional<at::Tensor>& seed, const at::Tensor& x, const char* op) {
  if (!seed) return;
  TORCH_CHECK(seed->scalar_type() == at::kLong && seed->numel() == 1 && seed->device() == x.device(),
              "gddm_C::", op, ": `seed` must be a one-element int64 tensor on x's device");
}

struct AddNoisePlan {
  int64_t images, H, W;
  at::Tensor out, noise_out;
};

// The checks and outputs of a noise-add without its coefficients, shared by add_noise and the
// CPU sampler_add_noise, which forms them itself.
inline AddNoisePlan plan_noise_add_data(const at::Tensor& x0, int64_t domain, bool exact,
                                        const c10::optional<at::Tensor>& noise,
                                        const c10::optional<at::Tensor>& seed, bool write_noise) {
  const char* op = "add_noise";
  TORCH_CHECK(x0.dim() >= 3 && x0.is_contiguous() && at::isFloatingType(x0.scalar_type()),
              "gddm_C::add_noise: x0 must be a contiguous floating (B, ..., H, W) tensor");
  TORCH_CHECK(domain >= kImage && domain <= kLaplacian, "gddm_C::add_noise: domain must be 0, 1 or 2");
  TORCH_CHECK(noise.has_value() != seed.has_value(), "gddm_C::add_noise: give exactly one of noise and seed");
  check_seed(seed, x0, op);
  const int64_t H = x0.size(-2), W = x0.size(-1);
  std::vector<int64_t> field(x0.sizes().begin(), x0.sizes().end());
  field.insert(field.end() - 2, 2);
  const std::vector<int64_t> image(x0.sizes().begin(), x0.sizes().end());
  const auto& out_shape = domain == kGradient ? field : image;
  const auto& noise_shape = domain == kGradient && !exact ? field : image;
  check_same(noise, x0, noise_shape, op, "noise");
  at::Tensor out = at::empty(out_shape, x0.options());
  at::Tensor noise_out = at::empty(seed && write_noise ? noise_shape : std::vector<int64_t>{0}, x0.options());
  const int64_t cells = H * W;
  return {cells == 0 ? 0 : x0.numel() / cells, H, W, out, noise_out};
}

inline AddNoisePlan plan_add_noise(const at::Tensor& x0, const at::Tensor& coefs, int64_t domain, bool exact,
                                   const c10::optional<at::Tensor>& noise, const c10::optional<at::Tensor>& seed,
                                   bool write_noise) {
  AddNoisePlan plan = plan_noise_add_data(x0, domain, exact, noise, seed, write_noise);
  check_coefs(coefs, x0, 2, "add_noise");
  return plan;
}

struct StepPlan {
  int64_t per_sample;  // elements per sample
  at::Tensor out, x0_out;
};

// The checks of a step's data (x, the model outputs, the noise or seed) without its
// coefficients, shared by diffusion_step and the CPU sampler_step, which forms them itself.
inline void check_step_inputs(const at::Tensor& x, const at::Tensor& m, const c10::optional<at::Tensor>& m_uncond,
                              const c10::optional<at::Tensor>& m2, const c10::optional<at::Tensor>& m2_uncond,
                              const c10::optional<at::Tensor>& prev_x0, const c10::optional<at::Tensor>& noise,
                              const c10::optional<at::Tensor>& seed) {
  const char* op = "diffusion_step";
  TORCH_CHECK(x.dim() >= 1 && x.is_contiguous() && at::isFloatingType(x.scalar_type()),
              "gddm_C::diffusion_step: x must be a contiguous floating (B, ...) tensor");
  check_same(m, x, x.sizes(), op, "m");
  check_same(m_uncond, x, x.sizes(), op, "m_uncond");
  check_same(m2, x, x.sizes(), op, "m2");
  check_same(m2_uncond, x, x.sizes(), op, "m2_uncond");
  check_same(prev_x0, x, x.sizes(), op, "prev_x0");
  check_same(noise, x, x.sizes(), op, "noise");
  TORCH_CHECK(!(noise && seed), "gddm_C::diffusion_step: give at most one of noise and seed");
  TORCH_CHECK(!m2_uncond || (m2 && m_uncond), "gddm_C::diffusion_step: m2_uncond needs m2 and m_uncond");
  check_seed(seed, x, op);
}

inline StepPlan step_outputs(const at::Tensor& x, bool write_x0) {
  return {x.size(0) == 0 ? 0 : x.numel() / x.size(0), at::empty(x.sizes(), x.options()),
          at::empty(write_x0 ? x.sizes() : at::IntArrayRef{0}, x.options())};
}

inline StepPlan plan_step(const at::Tensor& x, const at::Tensor& m, const c10::optional<at::Tensor>& m_uncond,
                          const c10::optional<at::Tensor>& m2, const c10::optional<at::Tensor>& m2_uncond,
                          const c10::optional<at::Tensor>& prev_x0, const at::Tensor& coefs,
                          const c10::optional<at::Tensor>& noise, const c10::optional<at::Tensor>& seed,
                          bool write_x0) {
  check_step_inputs(x, m, m_uncond, m2, m2_uncond, prev_x0, noise, seed);
  check_coefs(coefs, x, kNumStepCoefs, "diffusion_step");
  return step_outputs(x, write_x0);
}

}  // namespace gddm
