// CUDA kernels of the multigrid stages: one thread per cell (per coarse cell for the
// restriction); grid.z walks the batch.
#include <algorithm>

#include "../multigrid.h"
#include "multigrid_kernels.h"

namespace gddm::cuda {
namespace {

constexpr int kBlockW = 32;
constexpr int kBlockH = 8;
constexpr int64_t kMaxGridZ = 65535;

dim3 grid_for(int64_t rows, int64_t cols, int64_t batch) {
  return dim3(unsigned((cols + kBlockW - 1) / kBlockW), unsigned((rows + kBlockH - 1) / kBlockH),
              unsigned(std::min<int64_t>(batch, kMaxGridZ)));
}

template <typename acc_t>
__global__ void mg_smooth_kernel(acc_t* __restrict__ u, const acc_t* __restrict__ f, const acc_t* __restrict__ wy,
                                 const acc_t* __restrict__ wx, int64_t batch, int64_t H, int64_t W, int color) {
  const int64_t j = int64_t(blockIdx.x) * kBlockW + threadIdx.x;
  const int64_t i = int64_t(blockIdx.y) * kBlockH + threadIdx.y;
  if (i >= H || j >= W || (i + j) % 2 != color) return;
  for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
    acc_t* img = u + n * H * W;
    img[i * W + j] = gauss_seidel_at(img, f[n * H * W + i * W + j], wy, wx, i, j, H, W);
  }
}

template <typename acc_t>
__global__ void mg_residual_restrict_kernel(const acc_t* __restrict__ u, const acc_t* __restrict__ f,
                                            const acc_t* __restrict__ wy, const acc_t* __restrict__ wx,
                                            acc_t* __restrict__ out, int64_t batch, int64_t H, int64_t W) {
  const int64_t Hc = (H + 1) / 2, Wc = (W + 1) / 2;
  const int64_t J = int64_t(blockIdx.x) * kBlockW + threadIdx.x;
  const int64_t I = int64_t(blockIdx.y) * kBlockH + threadIdx.y;
  if (I >= Hc || J >= Wc) return;
  for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
    out[(n * Hc + I) * Wc + J] = residual_restrict_at(u + n * H * W, f + n * H * W, wy, wx, I, J, H, W);
  }
}

template <typename acc_t>
__global__ void mg_prolong_correct_kernel(acc_t* __restrict__ u, const acc_t* __restrict__ e,
                                          const int64_t* __restrict__ lo_y, const int64_t* __restrict__ hi_y,
                                          const acc_t* __restrict__ w_y, const int64_t* __restrict__ lo_x,
                                          const int64_t* __restrict__ hi_x, const acc_t* __restrict__ w_x,
                                          int64_t batch, int64_t H, int64_t W, int64_t Hc, int64_t Wc) {
  const int64_t j = int64_t(blockIdx.x) * kBlockW + threadIdx.x;
  const int64_t i = int64_t(blockIdx.y) * kBlockH + threadIdx.y;
  if (i >= H || j >= W) return;
  for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
    u[(n * H + i) * W + j] += prolongation_at(e + n * Hc * Wc, Wc, lo_y, hi_y, w_y, lo_x, hi_x, w_x, i, j);
  }
}

}  // namespace

template <typename acc_t>
void launch_mg_smooth(acc_t* u, const acc_t* f, const acc_t* wy, const acc_t* wx, int64_t batch, int64_t H,
                      int64_t W, int color, cudaStream_t stream) {
  mg_smooth_kernel<<<grid_for(H, W, batch), dim3(kBlockW, kBlockH), 0, stream>>>(u, f, wy, wx, batch, H, W, color);
}

template <typename acc_t>
void launch_mg_residual_restrict(const acc_t* u, const acc_t* f, const acc_t* wy, const acc_t* wx, acc_t* out,
                                 int64_t batch, int64_t H, int64_t W, cudaStream_t stream) {
  mg_residual_restrict_kernel<<<grid_for((H + 1) / 2, (W + 1) / 2, batch), dim3(kBlockW, kBlockH), 0, stream>>>(
      u, f, wy, wx, out, batch, H, W);
}

template <typename acc_t>
void launch_mg_prolong_correct(acc_t* u, const acc_t* e, const int64_t* lo_y, const int64_t* hi_y,
                               const acc_t* w_y, const int64_t* lo_x, const int64_t* hi_x, const acc_t* w_x,
                               int64_t batch, int64_t H, int64_t W, int64_t Hc, int64_t Wc,
                               cudaStream_t stream) {
  mg_prolong_correct_kernel<<<grid_for(H, W, batch), dim3(kBlockW, kBlockH), 0, stream>>>(
      u, e, lo_y, hi_y, w_y, lo_x, hi_x, w_x, batch, H, W, Hc, Wc);
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
