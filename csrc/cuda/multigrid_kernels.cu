// CUDA kernels of the multigrid stages: one thread per cell (per coarse cell for the
// restriction), grid-stride loops over rows, columns and (grid.z) the batch.
#include "../multigrid.h"
#include "launch.h"
#include "multigrid_kernels.h"

namespace gddm::cuda {
namespace {

const dim3 kBlock(32, 8);

template <typename acc_t>
__global__ void mg_smooth_kernel(acc_t* __restrict__ u, const acc_t* __restrict__ f, const acc_t* __restrict__ wy,
                                 const acc_t* __restrict__ wx, int64_t batch, int64_t H, int64_t W, int color) {
  for (int64_t i = first_y(); i < H; i += stride_y()) {
    for (int64_t j = first_x(); j < W; j += stride_x()) {
      if ((i + j) % 2 != color) continue;
      for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
        acc_t* img = u + n * H * W;
        img[i * W + j] = gauss_seidel_at(img, f[n * H * W + i * W + j], wy, wx, i, j, H, W);
      }
    }
  }
}

template <typename acc_t>
__global__ void mg_residual_restrict_kernel(const acc_t* __restrict__ u, const acc_t* __restrict__ f,
                                            const acc_t* __restrict__ wy, const acc_t* __restrict__ wx,
                                            acc_t* __restrict__ out, int64_t batch, int64_t H, int64_t W) {
  const int64_t Hc = (H + 1) / 2, Wc = (W + 1) / 2;
  for (int64_t I = first_y(); I < Hc; I += stride_y()) {
    for (int64_t J = first_x(); J < Wc; J += stride_x()) {
      for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
        out[(n * Hc + I) * Wc + J] = residual_restrict_at(u + n * H * W, f + n * H * W, wy, wx, I, J, H, W);
      }
    }
  }
}

template <typename acc_t>
__global__ void mg_prolong_correct_kernel(acc_t* __restrict__ u, const acc_t* __restrict__ e,
                                          const int64_t* __restrict__ lo_y, const int64_t* __restrict__ hi_y,
                                          const acc_t* __restrict__ w_y, const int64_t* __restrict__ lo_x,
                                          const int64_t* __restrict__ hi_x, const acc_t* __restrict__ w_x,
                                          int64_t batch, int64_t H, int64_t W, int64_t Hc, int64_t Wc) {
  for (int64_t i = first_y(); i < H; i += stride_y()) {
    for (int64_t j = first_x(); j < W; j += stride_x()) {
      for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
        u[(n * H + i) * W + j] += prolongation_at(e + n * Hc * Wc, Wc, lo_y, hi_y, w_y, lo_x, hi_x, w_x, i, j);
      }
    }
  }
}

}  // namespace

template <typename acc_t>
void launch_mg_smooth(acc_t* u, const acc_t* f, const acc_t* wy, const acc_t* wx, int64_t batch, int64_t H,
                      int64_t W, int color, cudaStream_t stream) {
  launch(mg_smooth_kernel<acc_t>, tile_grid(H, W, batch, kBlock), kBlock, stream, u, f, wy, wx, batch, H, W, color);
}

template <typename acc_t>
void launch_mg_residual_restrict(const acc_t* u, const acc_t* f, const acc_t* wy, const acc_t* wx, acc_t* out,
                                 int64_t batch, int64_t H, int64_t W, cudaStream_t stream) {
  launch(mg_residual_restrict_kernel<acc_t>, tile_grid((H + 1) / 2, (W + 1) / 2, batch, kBlock), kBlock, stream, u,
         f, wy, wx, out, batch, H, W);
}

template <typename acc_t>
void launch_mg_prolong_correct(acc_t* u, const acc_t* e, const int64_t* lo_y, const int64_t* hi_y,
                               const acc_t* w_y, const int64_t* lo_x, const int64_t* hi_x, const acc_t* w_x,
                               int64_t batch, int64_t H, int64_t W, int64_t Hc, int64_t Wc,
                               cudaStream_t stream) {
  launch(mg_prolong_correct_kernel<acc_t>, tile_grid(H, W, batch, kBlock), kBlock, stream, u, e, lo_y, hi_y, w_y,
         lo_x, hi_x, w_x, batch, H, W, Hc, Wc);
}

#define GDDM_INSTANTIATE(acc_t)                                                                              \
  template void launch_mg_smooth<acc_t>(acc_t*, const acc_t*, const acc_t*, const acc_t*, int64_t, int64_t,  \
                                        int64_t, int, cudaStream_t);                                         \
  template void launch_mg_residual_restrict<acc_t>(const acc_t*, const acc_t*, const acc_t*, const acc_t*,   \
                                                   acc_t*, int64_t, int64_t, int64_t, cudaStream_t);         \
  template void launch_mg_prolong_correct<acc_t>(acc_t*, const acc_t*, const int64_t*, const int64_t*,       \
                                                 const acc_t*, const int64_t*, const int64_t*, const acc_t*, \
                                                 int64_t, int64_t, int64_t, int64_t, int64_t, cudaStream_t);
GDDM_INSTANTIATE(float)
GDDM_INSTANTIATE(double)
#undef GDDM_INSTANTIATE

}  // namespace gddm::cuda
