// CUDA kernels of gddm_C::{gradient, divergence, laplacian}: one thread per output pixel,
// 32-wide blocks along the row so loads and stores coalesce, neighbour reads served by L1/L2,
// fp32 (fp64 for double) arithmetic. Grid-stride loops over rows, columns and (grid.z) images.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "launch.h"
#include "stencils_kernels.h"

namespace gddm::cuda {
namespace {

template <typename T>
struct Acc { using type = float; };
template <>
struct Acc<double> { using type = double; };

constexpr int kBlockW = 32;
constexpr int kBlockH = 8;

template <typename scalar_t>
__device__ __forceinline__ typename Acc<scalar_t>::type ld(const scalar_t* p) {
  return static_cast<typename Acc<scalar_t>::type>(*p);
}

// Each thread: its pixels (i, j) of images blockIdx.z, blockIdx.z + gridDim.z, ...
#define GDDM_PIXEL_LOOP(b)                                         \
  for (int64_t i = first_y(); i < (b).H; i += stride_y())          \
    for (int64_t j = first_x(); j < (b).W; j += stride_x())        \
      for (int64_t n = blockIdx.z; n < (b).batch(); n += gridDim.z)

template <typename scalar_t, typename acc_t = typename Acc<scalar_t>::type>
__global__ void gradient_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                                ImageBatch b, acc_t scale) {
  GDDM_PIXEL_LOOP(b) {
    const scalar_t* p = x + b.base(n) + i * b.s_h + j * b.s_w;
    const acc_t c = ld(p);
    const bool has_down = i + 1 < b.H, has_right = j + 1 < b.W;
    const acc_t down = has_down ? ld(p + b.s_h) : c;
    const acc_t right = has_right ? ld(p + b.s_w) : c;
    scalar_t* o = out + ((n * 2) * b.H + i) * b.W + j;
    o[0] = static_cast<scalar_t>(scale * forward_difference(down, c, has_down));
    o[b.H * b.W] = static_cast<scalar_t>(scale * forward_difference(right, c, has_right));
  }
}

template <typename scalar_t, typename acc_t = typename Acc<scalar_t>::type>
__global__ void divergence_kernel(const scalar_t* __restrict__ g, scalar_t* __restrict__ out,
                                  ImageBatch b, acc_t scale) {
  GDDM_PIXEL_LOOP(b) {
    const scalar_t* pv = g + b.base(n) + i * b.s_h + j * b.s_w;
    out[(n * b.H + i) * b.W + j] =
        static_cast<scalar_t>(scale * divergence_at<acc_t>(pv, b.s_c, b.s_h, b.s_w, i, j, b.H, b.W));
  }
}

template <typename scalar_t, typename acc_t = typename Acc<scalar_t>::type>
__global__ void laplacian_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                                 ImageBatch b, acc_t scale) {
  GDDM_PIXEL_LOOP(b) {
    const scalar_t* p = x + b.base(n) + i * b.s_h + j * b.s_w;
    const acc_t c = ld(p);
    const acc_t up = i > 0 ? ld(p - b.s_h) : c;  // edge-replicate
    const acc_t down = i + 1 < b.H ? ld(p + b.s_h) : c;
    const acc_t left = j > 0 ? ld(p - b.s_w) : c;
    const acc_t right = j + 1 < b.W ? ld(p + b.s_w) : c;
    out[(n * b.H + i) * b.W + j] = static_cast<scalar_t>(scale * laplacian_from(c, up, down, left, right));
  }
}
#undef GDDM_PIXEL_LOOP

}  // namespace

#define GDDM_DEFINE_LAUNCHER(NAME)                                                              \
  template <typename scalar_t>                                                                  \
  void launch_##NAME(const scalar_t* in, scalar_t* out, const ImageBatch& b, double scale,      \
                     cudaStream_t stream) {                                                     \
    const dim3 block(kBlockW, kBlockH);                                                         \
    launch(NAME##_kernel<scalar_t>, tile_grid(b.H, b.W, b.batch(), block), block, stream, in, out, b, \
           static_cast<typename Acc<scalar_t>::type>(scale));                                   \
  }                                                                                             \
  template void launch_##NAME<float>(const float*, float*, const ImageBatch&, double, cudaStream_t); \
  template void launch_##NAME<double>(const double*, double*, const ImageBatch&, double, cudaStream_t); \
  template void launch_##NAME<c10::Half>(const c10::Half*, c10::Half*, const ImageBatch&, double,   \
                                         cudaStream_t);                                         \
  template void launch_##NAME<c10::BFloat16>(const c10::BFloat16*, c10::BFloat16*,              \
                                             const ImageBatch&, double, cudaStream_t);

GDDM_DEFINE_LAUNCHER(gradient)
GDDM_DEFINE_LAUNCHER(divergence)
GDDM_DEFINE_LAUNCHER(laplacian)
#undef GDDM_DEFINE_LAUNCHER

}  // namespace gddm::cuda
