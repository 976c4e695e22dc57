// CUDA kernels of the coefficient ops: one thread per sample (csrc/step_coefs.h). Out-of-range
// timesteps trip a device-side assert (no host sync, as the Python API's checks on devices).
#include <c10/macros/Macros.h>

#include "coefs_kernels.h"
#include "launch.h"

namespace gddm::cuda {
namespace {

constexpr int kThreads = 128;

int blocks_for(int64_t B) { return static_cast<int>((B + kThreads - 1) / kThreads); }

__global__ void schedule_step_coefs_kernel(const double* gammas, int64_t T, const int64_t* t, const int64_t* t_prev,
                                           const int64_t* t_last, int64_t B, StepParams params, double* out) {
  const int64_t b = first_x();
  if (b >= B) return;
  const int64_t tb = t[b], pb = t_prev[b];
  CUDA_KERNEL_ASSERT(tb >= 0 && tb < T && pb >= -1 && pb < tb);
  const bool has_last = t_last != nullptr;
  const int64_t lb = has_last ? t_last[b] : 0;
  CUDA_KERNEL_ASSERT(!has_last || (lb > tb && lb < T));
  schedule_step_coefs(params, gamma_at(gammas, tb), gamma_at(gammas, pb), tb > 0, pb < 0, has_last,
                      has_last ? gamma_at(gammas, lb) : 1.0, out + b * kNumStepCoefs);
}

__global__ void attenuation_step_coefs_kernel(const double* t, const double* t_prev, int64_t B, StepParams params,
                                              double* out) {
  const int64_t b = first_x();
  if (b >= B) return;
  CUDA_KERNEL_ASSERT(t[b] > 0 && t[b] <= 1 && t_prev[b] >= 0 && t_prev[b] < t[b]);
  attenuation_step_coefs(params, t[b], t_prev[b], out + b * kNumStepCoefs);
}

__global__ void noise_coefs_kernel(const double* gammas, int64_t T, const int64_t* t, const double* t_times, int64_t B,
                                   double k, double* out) {
  const int64_t b = first_x();
  if (b >= B) return;
  if (gammas) {
    CUDA_KERNEL_ASSERT(t[b] >= 0 && t[b] < T);
    const double g = gammas[t[b]];
    out[2 * b] = sqrt(g), out[2 * b + 1] = k * sqrt(1 - g);
  } else {
    CUDA_KERNEL_ASSERT(t_times[b] >= 0 && t_times[b] <= 1);
    out[2 * b] = 1 - t_times[b], out[2 * b + 1] = k * sqrt(t_times[b]);
  }
}

}  // namespace

void launch_schedule_step_coefs(const double* gammas, int64_t T, const int64_t* t, const int64_t* t_prev,
                                const int64_t* t_last, int64_t B, StepParams params, double* out,
                                cudaStream_t stream) {
  launch(schedule_step_coefs_kernel, dim3(blocks_for(B)), dim3(kThreads), stream, gammas, T, t, t_prev, t_last, B,
         params, out);
}

void launch_attenuation_step_coefs(const double* t, const double* t_prev, int64_t B, StepParams params, double* out,
                                   cudaStream_t stream) {
  launch(attenuation_step_coefs_kernel, dim3(blocks_for(B)), dim3(kThreads), stream, t, t_prev, B, params, out);
}

void launch_noise_coefs(const double* gammas, int64_t T, const int64_t* t, const double* t_times, int64_t B, double k,
                        double* out, cudaStream_t stream) {
  launch(noise_coefs_kernel, dim3(blocks_for(B)), dim3(kThreads), stream, gammas, T, t, t_times, B, k, out);
}

}  // namespace gddm::cuda
