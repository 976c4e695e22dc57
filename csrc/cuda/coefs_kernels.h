// Launchers of the CUDA coefficient kernels (coefs_kernels.cu): one thread per sample.
#pragma once

#include "runtime.h"

#include <cstdint>

#include "../step_coefs.h"

namespace gddm::cuda {

// Schedule samplers: t, t_prev, t_last (may be null) int64 (B,); gammas (T,) float64.
void launch_schedule_step_coefs(const double* gammas, int64_t T, const int64_t* t, const int64_t* t_prev,
                                const int64_t* t_last, int64_t B, StepParams params, double* out,
                                cudaStream_t stream);
// Attenuation: t, t_prev float64 (B,).
void launch_attenuation_step_coefs(const double* t, const double* t_prev, int64_t B, StepParams params, double* out,
                                   cudaStream_t stream);
// Noise-add: schedule (gammas non-null, t int64) or attenuation (t_times float64).
void launch_noise_coefs(const double* gammas, int64_t T, const int64_t* t, const double* t_times, int64_t B, double k,
                        double* out, cudaStream_t stream);

}  // namespace gddm::cuda
