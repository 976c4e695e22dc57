// The per-sample coefficients of the fused diffusion kernels, computed from a schedule's
// gamma table and the per-sample timesteps (or the attenuation process's continuous times), in
// float64: the C++ twin of gddm_kernels/diffusion.py's _prediction_coefs, _ddpm_coefs,
// _ddim_coefs, _dpm_coefs and _attenuation_coefs (tests/test_sampler_ops.py compares the
// tables). Used by the CPU (a loop over the batch) and by CUDA (one thread per sample), so no
// coefficient is formed with host tensor ops and nothing waits on the device.
//
// Codes (gddm_kernels/_diffusion_contract.py SAMPLERS, PREDICTION_CODES):
//   sampler     0 ddpm, 1 ddim, 2 dpm (DPM-Solver++(2M)), 3 attenuation
//   prediction  0 eps, 1 x0, 2 v; for attenuation 0 c, 1 x0
#pragma once

#include <cmath>
#include <cstdint>

#include "diffusion.h"

namespace gddm {

enum Sampler { kDdpm = 0, kDdim = 1, kDpm = 2, kAttenuation = 3 };
enum Prediction { kPredictEps = 0, kPredictX0 = 1, kPredictV = 2 };

struct StepParams {
  int sampler, prediction;
  double eta, k;
  bool clip;
};

// a0, a1 (x0 from x and the model output m) and e0, e1 (eps from x and m) at gamma g.
GDDM_HD void prediction_coefs(double g, double k, int prediction, double* c) {
  const double sg = sqrt(g), s1g = sqrt(1 - g);
  if (prediction == kPredictEps) {
    c[kA0] = 1 / sg, c[kA1] = -k * s1g / sg, c[kE0] = 0, c[kE1] = 1;
  } else if (prediction == kPredictX0) {
    c[kA0] = 0, c[kA1] = 1, c[kE0] = 1 / (k * s1g), c[kE1] = -sg / (k * s1g);
  } else {
    c[kA0] = sg, c[kA1] = -k * s1g, c[kE0] = s1g / k, c[kE1] = sg;
  }
}

// log(alpha / sigma) = (log g - log(1 - g)) / 2; +inf for the clean g = 1.
GDDM_HD double log_snr(double g) { return 0.5 * (log(g) - log1p(-g)); }

// The step coefficients (kNumStepCoefs) of one sample of a schedule sampler, at gammas g (t),
// g_prev (t_prev; 1 for the clean t_prev = -1) and, for a second-order DPM step, g_last.
GDDM_HD void schedule_step_coefs(const StepParams& p, double g, double g_prev, bool t_positive, bool t_prev_clean,
                                 bool has_last, double g_last, double* c) {
  for (int i = 0; i < kNumStepCoefs; ++i) c[i] = 0;
  prediction_coefs(g, p.k, p.prediction, c);
  if (p.sampler == kDdpm) {
    const double b = 1 - g / g_prev;
    c[kC0] = sqrt(1 - b) * (1 - g_prev) / (1 - g);
    c[kC1] = sqrt(g_prev) * b / (1 - g);
    c[kC3] = t_positive ? p.k * sqrt((1 - g_prev) / (1 - g) * b) : 0.0;
  } else if (p.sampler == kDdim) {
    const double sigma = p.eta * sqrt((1 - g_prev) / (1 - g) * (1 - g / g_prev));
    if (p.clip) {  // eps re-derived from the clamped x0
      c[kE0] = 1 / (p.k * sqrt(1 - g)), c[kE1] = 0, c[kE2] = -sqrt(g) / (p.k * sqrt(1 - g));
    }
    const double rest = 1 - g_prev - sigma * sigma;
    c[kC1] = sqrt(g_prev), c[kC2] = p.k * sqrt(rest > 0 ? rest : 0.0), c[kC3] = p.k * sigma;
  } else {  // kDpm
    const double h = log_snr(g_prev) - log_snr(g);
    if (has_last) {
      const double h_last = log_snr(g) - log_snr(g_last);
      c[kR] = t_prev_clean ? 0.0 : h / (2 * h_last);
    }
    c[kC0] = sqrt(1 - g_prev) / sqrt(1 - g);
    c[kC1] = -sqrt(g_prev) * expm1(-h);
  }
}

// The attenuation step (Huang et al. Alg. 2) from continuous time t to t_prev.
GDDM_HD void attenuation_step_coefs(const StepParams& p, double t, double t_prev, double* c) {
  for (int i = 0; i < kNumStepCoefs; ++i) c[i] = 0;
  const double s = t - t_prev, sigma = p.eta * sqrt(s * t_prev / t);
  const double rest = t_prev - sigma * sigma;
  c[kA1] = p.prediction == 0 ? -1.0 : 1.0;  // prediction 0: the attenuation c, 1: x0
  c[kE3] = 1, c[kC0] = 1, c[kC1] = s;
  c[kC2] = -p.k * (sqrt(t) - sqrt(rest > 0 ? rest : 0.0));
  c[kC3] = p.k * sigma;
}

// gamma_t of a schedule table, 1 for the clean t = -1.
GDDM_HD double gamma_at(const double* gammas, int64_t t) { return t >= 0 ? gammas[t] : 1.0; }

}  // namespace gddm
