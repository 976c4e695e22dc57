// CUDA kernels of the cosine-transform Poisson solve: one thread per element (per pair of
// mirrored spectrum rows for the solve), twiddles computed in-register with sincospi;
// grid-stride loops over rows, columns and (grid.z) the batch.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "launch.h"
#include "poisson_kernels.h"

namespace gddm::cuda {
namespace {

const dim3 kBlock(32, 8);

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

template <typename scalar_t, typename acc_t>
__global__ void dct_reorder_kernel(const scalar_t* __restrict__ x, acc_t* __restrict__ out, ImageBatch b,
                                   bool field, acc_t scale) {
  for (int64_t m1 = first_y(); m1 < b.H; m1 += stride_y()) {
    for (int64_t m2 = first_x(); m2 < b.W; m2 += stride_x()) {
      const int64_t i = dct_source(m1, b.H), j = dct_source(m2, b.W);
      for (int64_t n = blockIdx.z; n < b.batch(); n += gridDim.z) {
        const scalar_t* p = x + b.base(n) + i * b.s_h + j * b.s_w;
        const acc_t v = field ? divergence_at<acc_t>(p, b.s_c, b.s_h, b.s_w, i, j, b.H, b.W) : acc_t(*p);
        out[(n * b.H + m1) * b.W + m2] = scale * v;
      }
    }
  }
}

template <typename acc_t>
__global__ void spectral_solve_kernel(Cplx<acc_t>* __restrict__ z, int64_t batch, int64_t H, int64_t W,
                                      acc_t mean) {
  const int64_t Wh = W / 2 + 1;
  for (int64_t p = first_y(); p <= H / 2; p += stride_y()) {
    const int64_t p_m = (H - p) % H;
    const Twiddle<acc_t> tp = twiddle(p, H, acc_t(0));
    for (int64_t q = first_x(); q < Wh; q += stride_x()) {
      const Twiddle<acc_t> tq = twiddle(q, W, acc_t(0));
      for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
        Cplx<acc_t>* a = z + (n * H + p) * Wh + q;
        Cplx<acc_t>* b = z + (n * H + p_m) * Wh + q;
        Cplx<acc_t> za, zb;
        spectral_solve_pair(*a, *b, tp, tq, p > 0, q > 0, mean * acc_t(H) * acc_t(W), za, zb);
        *a = za;
        if (p > 0 && p_m != p) *b = zb;
      }
    }
  }
}

template <typename acc_t, typename scalar_t>
__global__ void dct_unreorder_kernel(const acc_t* __restrict__ v, scalar_t* __restrict__ out, int64_t batch,
                                     int64_t H, int64_t W) {
  for (int64_t i = first_y(); i < H; i += stride_y()) {
    for (int64_t j = first_x(); j < W; j += stride_x()) {
      const int64_t src = dct_position(i, H) * W + dct_position(j, W);
      for (int64_t n = blockIdx.z; n < batch; n += gridDim.z) {
        out[(n * H + i) * W + j] = static_cast<scalar_t>(v[n * H * W + src]);
      }
    }
  }
}

}  // namespace

template <typename scalar_t, typename acc_t>
void launch_dct_reorder(const scalar_t* x, acc_t* out, const ImageBatch& b, bool field, double scale,
                        cudaStream_t stream) {
  launch(dct_reorder_kernel<scalar_t, acc_t>, tile_grid(b.H, b.W, b.batch(), kBlock), kBlock, stream, x, out, b,
         field, acc_t(scale));
}

template <typename acc_t>
void launch_spectral_solve(Cplx<acc_t>* spectrum, int64_t batch, int64_t H, int64_t W, double mean,
                           cudaStream_t stream) {
  launch(spectral_solve_kernel<acc_t>, tile_grid(H / 2 + 1, W / 2 + 1, batch, kBlock), kBlock, stream, spectrum,
         batch, H, W, acc_t(mean));
}

template <typename acc_t, typename scalar_t>
void launch_dct_unreorder(const acc_t* v, scalar_t* out, int64_t batch, int64_t H, int64_t W,
                          cudaStream_t stream) {
  launch(dct_unreorder_kernel<acc_t, scalar_t>, tile_grid(H, W, batch, kBlock), kBlock, stream, v, out, batch, H, W);
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
