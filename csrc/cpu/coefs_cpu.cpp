// CPU kernels of the coefficient ops: one loop over the batch (csrc/step_coefs.h), with the
// range checks of the Python API; the step's loop is also gddm_C::sampler_step's on the CPU
// (diffusion_cpu.cpp).
#include "coefs_cpu.h"

#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cstring>
#include <string>

#include "../coefs_checks.h"

namespace gddm {
namespace {

// The entries of a checked (B,) times tensor as value_t, read in place (any stride, no tensor op).
template <typename value_t>
std::vector<value_t> values_of(const at::Tensor& t) {
  std::vector<value_t> values(t.numel());
  AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "gddm_C", [&] {
    const scalar_t* data = t.const_data_ptr<scalar_t>();
    const int64_t stride = t.stride(0);
    for (size_t b = 0; b < values.size(); ++b) values[b] = static_cast<value_t>(data[b * stride]);
  });
  return values;
}

}  // namespace

void fill_step_coefs(const at::Tensor& gammas, const at::Tensor& t, const at::Tensor& t_prev,
                     const c10::optional<at::Tensor>& t_last, int64_t sampler, int64_t prediction, double eta,
                     double k, bool clip, std::vector<double>& out) {
  const auto [op, B, attenuation] = check_step_coef_args(gammas, t, t_prev, t_last, sampler);
  const StepParams params{int(sampler), int(prediction), eta, k, clip};
  out.resize(B * kNumStepCoefs);
  double* c = out.data();
  if (attenuation) {
    const std::vector<double> tv = values_of<double>(t), pv = values_of<double>(t_prev);
    RangeCheck<double> t_range(op, "t", "lie in (0, 1]"), prev_range(op, "t_prev", "lie in [0, t) per sample");
    for (int64_t b = 0; b < B; ++b) t_range.check(tv[b] > 0 && tv[b] <= 1, tv[b]);
    t_range.raise_if_any();
    for (int64_t b = 0; b < B; ++b) prev_range.check(pv[b] >= 0 && pv[b] < tv[b], pv[b]);
    prev_range.raise_if_any();
    for (int64_t b = 0; b < B; ++b) attenuation_step_coefs(params, tv[b], pv[b], c + b * kNumStepCoefs);
    return;
  }
  const int64_t T = gammas.numel();
  const std::string range = "lie in [0, " + std::to_string(T) + ")";
  const std::vector<int64_t> tv = values_of<int64_t>(t), pv = values_of<int64_t>(t_prev);
  RangeCheck<int64_t> t_range(op, "t", range), prev_range(op, "t_prev", "lie in [-1, " + std::to_string(T) + ")"),
      order(op, "t_prev", "be smaller than `t` per sample");
  for (int64_t b = 0; b < B; ++b) t_range.check(tv[b] >= 0 && tv[b] < T, tv[b]);
  t_range.raise_if_any();
  for (int64_t b = 0; b < B; ++b) prev_range.check(pv[b] >= -1 && pv[b] < T, pv[b]);
  prev_range.raise_if_any();
  for (int64_t b = 0; b < B; ++b) order.check(pv[b] < tv[b], pv[b]);
  order.raise_if_any();
  const std::vector<int64_t> last = t_last ? values_of<int64_t>(*t_last) : std::vector<int64_t>{};
  const int64_t* lv = t_last ? last.data() : nullptr;
  if (t_last) {
    RangeCheck<int64_t> last_range(op, "t_last", range), last_order(op, "t_last", "be larger than `t` per sample");
    for (int64_t b = 0; b < B; ++b) last_range.check(lv[b] >= 0 && lv[b] < T, lv[b]);
    last_range.raise_if_any();
    for (int64_t b = 0; b < B; ++b) last_order.check(lv[b] > tv[b], lv[b]);
    last_order.raise_if_any();
  }
  const double* g = gammas.const_data_ptr<double>();
  for (int64_t b = 0; b < B; ++b) {
    schedule_step_coefs(params, gamma_at(g, tv[b]), gamma_at(g, pv[b]), tv[b] > 0, pv[b] < 0, lv != nullptr,
                        lv ? gamma_at(g, lv[b]) : 1.0, c + b * kNumStepCoefs);
  }
}

void fill_noise_coefs(const at::Tensor& gammas, const at::Tensor& t, double k, std::vector<double>& out) {
  const auto [op, B, attenuation] = check_noise_coef_args(gammas, t);
  out.resize(2 * B);
  double* c = out.data();
  if (attenuation) {
    const std::vector<double> tv = values_of<double>(t);
    RangeCheck<double> range(op, "t", "lie in [0, 1]");
    for (int64_t b = 0; b < B; ++b) range.check(tv[b] >= 0 && tv[b] <= 1, tv[b]);
    range.raise_if_any();
    for (int64_t b = 0; b < B; ++b) c[2 * b] = 1 - tv[b], c[2 * b + 1] = k * std::sqrt(tv[b]);
    return;
  }
  const int64_t T = gammas.numel();
  const std::vector<int64_t> tv = values_of<int64_t>(t);
  RangeCheck<int64_t> range(op, "t", "lie in [0, " + std::to_string(T) + ")");
  for (int64_t b = 0; b < B; ++b) range.check(tv[b] >= 0 && tv[b] < T, tv[b]);
  range.raise_if_any();
  const double* g = gammas.const_data_ptr<double>();
  for (int64_t b = 0; b < B; ++b) c[2 * b] = std::sqrt(g[tv[b]]), c[2 * b + 1] = k * std::sqrt(1 - g[tv[b]]);
}

namespace {

// A filled coefficient table, (B, columns) float64 rows, as a tensor on the times' device.
at::Tensor table_tensor(const std::vector<double>& values, int64_t columns, const at::Tensor& t) {
  at::Tensor out = at::empty({t.numel(), columns}, t.options().dtype(at::kDouble));
  std::memcpy(out.mutable_data_ptr<double>(), values.data(), values.size() * sizeof(double));
  return out;
}

at::Tensor step_coefs_cpu(const at::Tensor& gammas, const at::Tensor& t, const at::Tensor& t_prev,
                          const c10::optional<at::Tensor>& t_last, int64_t sampler, int64_t prediction, double eta,
                          double k, bool clip) {
  std::vector<double> values;
  fill_step_coefs(gammas, t, t_prev, t_last, sampler, prediction, eta, k, clip, values);
  return table_tensor(values, kNumStepCoefs, t);
}

at::Tensor noise_coefs_cpu(const at::Tensor& gammas, const at::Tensor& t, double k) {
  std::vector<double> values;
  fill_noise_coefs(gammas, t, k, values);
  return table_tensor(values, 2, t);
}

}  // namespace

TORCH_LIBRARY_IMPL(gddm_C, CPU, m) {
  m.impl("step_coefs", &step_coefs_cpu);
  m.impl("noise_coefs", &noise_coefs_cpu);
}

}  // namespace gddm
