// CUDA kernels of the cosine-transform Poisson solve: one thread per element (per pair of
// mirrored spectrum rows for the solve), twiddles computed in-register with sincospi.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

#include "poisson_kernels.h"

namespace gddm::cuda {
namespace {

constexpr int kBlockW = 32;
constexpr int kBlockH = 8;
constexpr int64_t kMaxGridZ = 65535;

__device__ __forceinline__ Twiddle<float> twiddle(int64_t p, int64_t N, float) {
  float s, c;
  sincospif(float(p) / float(2 * N), &s, &c);
  return {c, s};
}

__device__ __forceinline__ Twiddle<double> twiddle(int64_t p, int64_t N, double) {
  double s, c;
  sincospi(double(p) / double(2 * N), &s, &c);
  return {c, s};
}

dim3 grid_for(int64_t rows, int64_t cols, int64_t batch) {
  return dim3(unsigned((cols + kBlockW - 1) / kBlockW), unsigned((rows + kBlockH - 1) / kBlockH),
              unsigned(std::min<int64_t>(batch, kMaxGridZ)));
}

template <typename scalar_t, typename acc_t>
__global__ void dct_reorder_kernel(const scalar_t* __restrict__ x, acc_t* __restrict__ out, ImageBatch b,
                                   bool field, acc_t scale) {
  const int64_t m2 = int64_t(blockIdx.x) * kBlockW + threadIdx.x;
  const int64_t m1 = int64_t(blockIdx.y) * kBlockH + threadIdx.y;
  if (m1 >= b.H || m2 >= b.W) return;
  const int64_t i = dct_source(m1, b.H), j = dct_source(m2, b.W);
  for (int64_t n = blockIdx.z; n < b.batch(); n += gridDim.z) {
    const scalar_t* p = x + b.base(n) + i * b.s_h + j * b.s_w;
    const acc_t v = field ? divergence_at<acc_t>(p, b.s_c, b.s_h, b.s_w, i, j, b.H, b.W) : acc_t(*p);
    out[(n * b.H + m1) * b.W + m2] = scale * v;
  }
}

template <typename acc_t>
__global__ void spectral_solve_kernel(Cplx<acc_t>* __restrict__ z, int64_t batch, int64_t H, int64_t W,
                                      acc_t mean) {
  const int64_t Wh = W / 2 + 1;
  const int64_t q = int64_t(blockIdx.x) * kBlockW + threadIdx.x;
  const int64_t p = int64_t(blockIdx.y) * kBlockH + threadIdx.y;
  if (p > H / 2 || q >= Wh) return;
  const int64_t p_m = (H - p) % H;
  const Twiddle<acc_t> tp = twiddle(p, H, acc_t(0)), tq = twiddle(q, W, acc_t(0));
  for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
    Cplx<acc_t>* a = z + (n * H + p) * Wh + q;
    Cplx<acc_t>* b = z + (n * H + p_m) * Wh + q;
    Cplx<acc_t> za, zb;
    spectral_solve_pair(*a, *b, tp, tq, p > 0, q > 0, mean * acc_t(H) * acc_t(W), za, zb);
    *a = za;
    if (p > 0 && p_m != p) *b = zb;
  }
}

template <typename acc_t, typename scalar_t>
__global__ void dct_unreorder_kernel(const acc_t* __restrict__ v, scalar_t* __restrict__ out, int64_t batch,
                                     int64_t H, int64_t W) {
  const int64_t j = int64_t(blockIdx.x) * kBlockW + threadIdx.x;
  const int64_t i = int64_t(blockIdx.y) * kBlockH + threadIdx.y;
  if (i >= H || j >= W) return;
  const int64_t src = dct_position(i, H) * W + dct_position(j, W);
  for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
    out[(n * H + i) * W + j] = static_cast<scalar_t>(v[n * H * W + src]);
  }
}

}  // namespace

template <typename scalar_t, typename acc_t>
void launch_dct_reorder(const scalar_t* x, acc_t* out, const ImageBatch& b, bool field, double scale,
                        cudaStream_t stream) {
  dct_reorder_kernel<<<grid_for(b.H, b.W, b.batch()), dim3(kBlockW, kBlockH), 0, stream>>>(
      x, out, b, field, acc_t(scale));
}

template <typename acc_t>
void launch_spectral_solve(Cplx<acc_t>* spectrum, int64_t batch, int64_t H, int64_t W, double mean,
                           cudaStream_t stream) {
  spectral_solve_kernel<<<grid_for(H / 2 + 1, W / 2 + 1, batch), dim3(kBlockW, kBlockH), 0, stream>>>(
      spectrum, batch, H, W, acc_t(mean));
}

template <typename acc_t, typename scalar_t>
void launch_dct_unreorder(const acc_t* v, scalar_t* out, int64_t batch, int64_t H, int64_t W,
                          cudaStream_t stream) {
  dct_unreorder_kernel<<<grid_for(H, W, batch), dim3(kBlockW, kBlockH), 0, stream>>>(v, out, batch, H, W);
}

#define GDDM_INSTANTIATE(scalar_t, acc_t)                                                              \
  template void launch_dct_reorder<scalar_t, acc_t>(const scalar_t*, acc_t*, const ImageBatch&, bool,  \
                                                    double, cudaStream_t);                             \
  template void launch_dct_unreorder<acc_t, scalar_t>(const acc_t*, scalar_t*, int64_t, int64_t,      \
                                                      int64_t, cudaStream_t);
GDDM_INSTANTIATE(float, float)
GDDM_INSTANTIATE(c10::Half, float)
GDDM_INSTANTIATE(c10::BFloat16, float)
GDDM_INSTANTIATE(double, double)
#undef GDDM_INSTANTIATE
template void launch_spectral_solve<float>(Cplx<float>*, int64_t, int64_t, int64_t, double, cudaStream_t);
template void launch_spectral_solve<double>(Cplx<double>*, int64_t, int64_t, int64_t, double, cudaStream_t);

}  // namespace gddm::cuda
