// Launchers of the CUDA diffusion kernels (diffusion_kernels.cu). scalar_t: float, double,
// c10::Half, c10::BFloat16; acc_t: double for double, float otherwise. `seed` points to the
// int64 seed on the device (read in the kernel: no host sync), or is null when the noise is given.
#pragma once

#include "runtime.h"

#include <cstdint>

namespace gddm::cuda {

template <typename scalar_t, typename acc_t>
void launch_add_noise(const scalar_t* x0, const acc_t* coefs, const scalar_t* noise, const int64_t* seed,
                      scalar_t* out, scalar_t* noise_out, int64_t images, int64_t images_per_sample, int64_t H,
                      int64_t W, int domain, bool exact, cudaStream_t stream);

struct StepInputs {
  const void *x, *m, *m_uncond, *m2, *m2_uncond, *prev_x0, *noise;
  const int64_t* seed;
};

template <typename scalar_t, typename acc_t>
void launch_diffusion_step(const StepInputs& in, const acc_t* coefs, scalar_t* out, scalar_t* x0_out,
                           int64_t numel, int64_t per_sample, double guidance, double clip, cudaStream_t stream);

}  // namespace gddm::cuda
