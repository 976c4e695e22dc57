// CPU kernels of the coefficient ops: one loop over the batch (csrc/step_coefs.h), with the
// range checks of the Python API.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <string>

#include "../coefs_checks.h"

namespace gddm {
namespace {

at::Tensor step_coefs_cpu(const at::Tensor& gammas, const at::Tensor& t, const at::Tensor& t_prev,
                          const c10::optional<at::Tensor>& t_last, int64_t sampler, int64_t prediction, double eta,
                          double k, bool clip) {
  const auto [op, B, attenuation] = check_step_coef_args(gammas, t, t_prev, t_last, sampler);
  const StepParams params{int(sampler), int(prediction), eta, k, clip};
  at::Tensor out = at::empty({B, kNumStepCoefs}, t.options().dtype(at::kDouble));
  double* c = out.mutable_data_ptr<double>();
  if (attenuation) {
    const at::Tensor t64 = t.to(at::kDouble).contiguous(), p64 = t_prev.to(at::kDouble).contiguous();
    const double *tv = t64.const_data_ptr<double>(), *pv = p64.const_data_ptr<double>();
    RangeCheck<double> t_range(op, "t", "lie in (0, 1]"), prev_range(op, "t_prev", "lie in [0, t) per sample");
    for (int64_t b = 0; b < B; ++b) t_range.check(tv[b] > 0 && tv[b] <= 1, tv[b]);
    t_range.raise_if_any();
    for (int64_t b = 0; b < B; ++b) prev_range.check(pv[b] >= 0 && pv[b] < tv[b], pv[b]);
    prev_range.raise_if_any();
    for (int64_t b = 0; b < B; ++b) attenuation_step_coefs(params, tv[b], pv[b], c + b * kNumStepCoefs);
    return out;
  }
  const int64_t T = gammas.numel();
  const std::string range = "lie in [0, " + std::to_string(T) + ")";
  const at::Tensor tc = t.contiguous(), pc = t_prev.contiguous();
  const int64_t *tv = tc.const_data_ptr<int64_t>(), *pv = pc.const_data_ptr<int64_t>();
  RangeCheck<int64_t> t_range(op, "t", range), prev_range(op, "t_prev", "lie in [-1, " + std::to_string(T) + ")"),
      order(op, "t_prev", "be smaller than `t` per sample");
  for (int64_t b = 0; b < B; ++b) t_range.check(tv[b] >= 0 && tv[b] < T, tv[b]);
  t_range.raise_if_any();
  for (int64_t b = 0; b < B; ++b) prev_range.check(pv[b] >= -1 && pv[b] < T, pv[b]);
  prev_range.raise_if_any();
  for (int64_t b = 0; b < B; ++b) order.check(pv[b] < tv[b], pv[b]);
  order.raise_if_any();
  const int64_t* lv = nullptr;
  at::Tensor lc;
  if (t_last) {
    lc = t_last->contiguous();
    lv = lc.const_data_ptr<int64_t>();
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
  return out;
}

at::Tensor noise_coefs_cpu(const at::Tensor& gammas, const at::Tensor& t, double k) {
  const auto [op, B, attenuation] = check_noise_coef_args(gammas, t);
  at::Tensor out = at::empty({B, 2}, t.options().dtype(at::kDouble));
  double* c = out.mutable_data_ptr<double>();
  if (attenuation) {
    const at::Tensor t64 = t.to(at::kDouble).contiguous();
    const double* tv = t64.const_data_ptr<double>();
    RangeCheck<double> range(op, "t", "lie in [0, 1]");
    for (int64_t b = 0; b < B; ++b) range.check(tv[b] >= 0 && tv[b] <= 1, tv[b]);
    range.raise_if_any();
    for (int64_t b = 0; b < B; ++b) c[2 * b] = 1 - tv[b], c[2 * b + 1] = k * std::sqrt(tv[b]);
    return out;
  }
  const int64_t T = gammas.numel();
  const at::Tensor tc = t.contiguous();
  const int64_t* tv = tc.const_data_ptr<int64_t>();
  RangeCheck<int64_t> range(op, "t", "lie in [0, " + std::to_string(T) + ")");
  for (int64_t b = 0; b < B; ++b) range.check(tv[b] >= 0 && tv[b] < T, tv[b]);
  range.raise_if_any();
  const double* g = gammas.const_data_ptr<double>();
  for (int64_t b = 0; b < B; ++b) c[2 * b] = std::sqrt(g[tv[b]]), c[2 * b + 1] = k * std::sqrt(1 - g[tv[b]]);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gddm_C, CPU, m) {
  m.impl("step_coefs", &step_coefs_cpu);
  m.impl("noise_coefs", &noise_coefs_cpu);
}

}  // namespace gddm
