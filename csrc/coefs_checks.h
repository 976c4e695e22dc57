// Host-side checks of the coefficient ops (gddm_C::step_coefs, noise_coefs), shared by the CPU
// and CUDA registrations, and the range checks of the CPU loop with the messages of the Python
// API (gddm_kernels/schedules.py check_values: "gddm.<op>: argument `t` must <requirement>,
// got [<offending values>]").
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <sstream>
#include <string>
#include <vector>

#include "step_coefs.h"

namespace gddm {

inline const char* step_op_name(int64_t sampler) {
  static const char* names[] = {"ddpm_step", "ddim_step", "dpm_solver_2m_step", "attenuation_step"};
  TORCH_CHECK_VALUE(sampler >= kDdpm && sampler <= kAttenuation, "gddm_C::step_coefs: sampler must be 0..3, got ",
                    sampler);
  return names[sampler];
}

// A shape as Python writes a tuple: (4, 3, 6, 5), (5,) or ().
inline std::string python_shape(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << (sizes.size() == 1 ? ",)" : ")");
  return out.str();
}

// Per-sample times: (batch,) on like's device, int64 timesteps or floating times (the messages
// of gddm_kernels/schedules.py check_per_sample).
inline void check_times(const at::Tensor& t, int64_t batch, const at::Tensor& like, bool integer, const char* op,
                        const char* arg) {
  TORCH_CHECK_TYPE(integer ? t.scalar_type() == at::kLong : at::isFloatingType(t.scalar_type()), "gddm.", op,
                   ": argument `", arg, "` must be ", integer ? "int64 timesteps" : "floating times", ", got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == batch, "gddm.", op, ": argument `", arg, "` must have shape (B,) = (",
                    batch, ",), one entry per sample, got shape ", python_shape(t.sizes()));
  TORCH_CHECK_VALUE(t.device() == like.device(), "gddm.", op, ": argument `", arg,
                    "` must be on the data's device ", like.device(), ", got ", t.device());
}

inline void check_gammas(const at::Tensor& gammas, const at::Tensor& t, const char* op) {
  TORCH_CHECK_VALUE(gammas.dim() == 1 && gammas.scalar_type() == at::kDouble && gammas.is_contiguous() &&
                        gammas.device() == t.device(),
                    "gddm.", op, ": the schedule's gamma table must be a contiguous (T,) float64 tensor on ",
                    t.device(), " (move the schedule with schedule.to(device))");
}

// The argument checks of step_coefs that every device shares (the CPU loop adds the range
// checks, the CUDA kernel asserts them): the per-sample times, and the gamma table of a
// schedule sampler.
struct StepCoefArgs {
  const char* op;  // the public function's name, for messages
  int64_t batch;
  bool attenuation;  // floating times, no gamma table
};

inline StepCoefArgs check_step_coef_args(const at::Tensor& gammas, const at::Tensor& t, const at::Tensor& t_prev,
                                         const c10::optional<at::Tensor>& t_last, int64_t sampler) {
  const StepCoefArgs args{step_op_name(sampler), t.numel(), sampler == kAttenuation};
  check_times(t, args.batch, t, !args.attenuation, args.op, "t");
  check_times(t_prev, args.batch, t, !args.attenuation, args.op, "t_prev");
  if (t_last) check_times(*t_last, args.batch, t, true, args.op, "t_last");
  if (!args.attenuation) check_gammas(gammas, t, args.op);
  return args;
}

// The same for noise_coefs: integer timesteps of a schedule, or the attenuation process's
// floating times.
inline StepCoefArgs check_noise_coef_args(const at::Tensor& gammas, const at::Tensor& t) {
  const bool attenuation = at::isFloatingType(t.scalar_type());
  const StepCoefArgs args{attenuation ? "attenuation_add_noise" : "add_noise", t.numel(), attenuation};
  check_times(t, args.batch, t, !attenuation, args.op, "t");
  if (!attenuation) check_gammas(gammas, t, args.op);
  return args;
}

// Collects the entries that break a requirement, then raises once with all of them.
template <typename value_t>
class RangeCheck {
 public:
  RangeCheck(const char* op, const char* arg, std::string requirement)
      : op_(op), arg_(arg), requirement_(std::move(requirement)) {}
  void check(bool ok, value_t value) {
    if (!ok) bad_.push_back(value);
  }
  void raise_if_any() const {
    if (bad_.empty()) return;
    std::ostringstream got;
    got << "[";
    for (size_t i = 0; i < bad_.size(); ++i) got << (i ? ", " : "") << bad_[i];
    got << "]";
    TORCH_CHECK_VALUE(false, "gddm.", op_, ": argument `", arg_, "` must ", requirement_, ", got ", got.str());
  }

 private:
  const char* op_;
  const char* arg_;
  std::string requirement_;
  std::vector<value_t> bad_;
};

}  // namespace gddm
