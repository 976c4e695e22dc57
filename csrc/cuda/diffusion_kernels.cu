// CUDA kernels of the fused noise-add (one thread per pixel, grid-stride loops over rows,
// columns and (grid.z) images) and the generic denoise-update step (grid-stride over the
// elements of a sample, grid.y over samples); in-kernel Philox noise from a device-side seed.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "../diffusion.h"
#include "diffusion_kernels.h"
#include "launch.h"

namespace gddm::cuda {
namespace {

const dim3 kTile(32, 8);
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65536;  // per sample: enough to fill any GPU, each thread loops

template <typename scalar_t, typename acc_t>
__global__ void add_noise_kernel(const scalar_t* __restrict__ x0, const acc_t* __restrict__ coefs,
                                 const scalar_t* __restrict__ noise, const int64_t* __restrict__ seed_ptr,
                                 scalar_t* __restrict__ out, scalar_t* __restrict__ noise_out, int64_t images,
                                 int64_t images_per_sample, int64_t H, int64_t W, int domain, bool exact) {
  const int64_t seed = seed_ptr ? *seed_ptr : 0;
  for (int64_t i = first_y(); i < H; i += stride_y()) {
    for (int64_t j = first_x(); j < W; j += stride_x()) {
      for (int64_t n = blockIdx.z; n < images; n += gridDim.z) {
        const int64_t b = n / images_per_sample;
        const acc_t a = coefs[2 * b], s = coefs[2 * b + 1];
        if (noise) {
          add_noise_pixel<acc_t>(x0, out, noise_out, n * H * W, i, j, H, W, domain, exact, a, s,
                                 [&](int64_t idx) { return acc_t(noise[idx]); });
        } else {
          add_noise_pixel<acc_t>(x0, out, noise_out, n * H * W, i, j, H, W, domain, exact, a, s,
                                 [&](int64_t idx) { return acc_t(normal_at(seed, idx)); });
        }
      }
    }
  }
}

template <typename scalar_t, typename acc_t>
__global__ void diffusion_step_kernel(StepInputs in, const acc_t* __restrict__ coefs, scalar_t* __restrict__ out,
                                      scalar_t* __restrict__ x0_out, int64_t numel, int64_t per_sample,
                                      acc_t guidance, acc_t clip) {
  const auto* x = static_cast<const scalar_t*>(in.x);
  const auto* m = static_cast<const scalar_t*>(in.m);
  const auto* mu = static_cast<const scalar_t*>(in.m_uncond);
  const auto* m2 = static_cast<const scalar_t*>(in.m2);
  const auto* m2u = static_cast<const scalar_t*>(in.m2_uncond);
  const auto* prev = static_cast<const scalar_t*>(in.prev_x0);
  const auto* noise = static_cast<const scalar_t*>(in.noise);
  const int64_t seed = in.seed ? *in.seed : 0;
  // grid.y walks the samples (one coefficient row each), grid.x the elements of a sample.
  for (int64_t sample = blockIdx.y; sample * per_sample < numel; sample += gridDim.y) {
    const acc_t* ks = coefs + sample * kNumStepCoefs;
    for (int64_t local = first_x(); local < per_sample; local += stride_x()) {
      const int64_t idx = sample * per_sample + local;
      auto guided = [&](const scalar_t* cond, const scalar_t* uncond) {
        const acc_t v = acc_t(cond[idx]);
        return uncond ? acc_t(uncond[idx]) + guidance * (v - acc_t(uncond[idx])) : v;
      };
      const acc_t z = noise ? acc_t(noise[idx]) : (in.seed ? acc_t(normal_at(seed, idx)) : acc_t(0));
      const StepResult<acc_t> r = step_at(ks, acc_t(x[idx]), guided(m, mu), m2 ? guided(m2, m2u) : acc_t(0),
                                          prev ? acc_t(prev[idx]) : acc_t(0), z, clip);
      out[idx] = static_cast<scalar_t>(r.out);
      if (x0_out) x0_out[idx] = static_cast<scalar_t>(r.x0);
    }
  }
}

}  // namespace

template <typename scalar_t, typename acc_t>
void launch_add_noise(const scalar_t* x0, const acc_t* coefs, const scalar_t* noise, const int64_t* seed,
                      scalar_t* out, scalar_t* noise_out, int64_t images, int64_t images_per_sample, int64_t H,
                      int64_t W, int domain, bool exact, cudaStream_t stream) {
  launch(add_noise_kernel<scalar_t, acc_t>, tile_grid(H, W, images, kTile), kTile, stream, x0, coefs, noise, seed,
         out, noise_out, images, images_per_sample, H, W, domain, exact);
}

template <typename scalar_t, typename acc_t>
void launch_diffusion_step(const StepInputs& in, const acc_t* coefs, scalar_t* out, scalar_t* x0_out,
                           int64_t numel, int64_t per_sample, double guidance, double clip, cudaStream_t stream) {
  const int64_t samples = numel / per_sample;
  const dim3 grid(grid_extent(per_sample, kThreads, kMaxBlocks), grid_extent(samples, 1, kMaxGridYZ));
  launch(diffusion_step_kernel<scalar_t, acc_t>, grid, dim3(kThreads), stream, in, coefs, out, x0_out, numel,
         per_sample, acc_t(guidance), acc_t(clip));
}

#define GDDM_INSTANTIATE(scalar_t, acc_t)                                                                        \
  template void launch_add_noise<scalar_t, acc_t>(const scalar_t*, const acc_t*, const scalar_t*, const int64_t*, \
                                                  scalar_t*, scalar_t*, int64_t, int64_t, int64_t, int64_t, int,  \
                                                  bool, cudaStream_t);                                           \
  template void launch_diffusion_step<scalar_t, acc_t>(const StepInputs&, const acc_t*, scalar_t*, scalar_t*,     \
                                                       int64_t, int64_t, double, double, cudaStream_t);
GDDM_INSTANTIATE(float, float)
GDDM_INSTANTIATE(c10::Half, float)
GDDM_INSTANTIATE(c10::BFloat16, float)
GDDM_INSTANTIATE(double, double)
#undef GDDM_INSTANTIATE

}  // namespace gddm::cuda
