// How every kernel of csrc/cuda is launched (included by the .cu files only): `launch` is the
// real <<<grid, block, 0, stream>>> launch under nvcc and, in the emulation build, a host loop
// over the grid (emulation.h). Grids are capped at CUDA's limits and the kernels walk the rest
// with grid-stride loops (`first_*`, `stride_*`), so a launch is valid for any tensor size.
#pragma once

#include <algorithm>
#include <cstdint>

#include "runtime.h"

namespace gddm::cuda {

constexpr int64_t kMaxGridX = 2147483647;  // CUDA's limits on gridDim.x and on gridDim.y, .z
constexpr int64_t kMaxGridYZ = 65535;

// Blocks along one axis for `n` items, `per_block` per block: ceil(n / per_block), at least 1
// (an empty grid is an invalid launch) and at most `limit`.
inline unsigned grid_extent(int64_t n, int64_t per_block, int64_t limit) {
  return unsigned(std::clamp<int64_t>((n + per_block - 1) / per_block, 1, limit));
}

// The grid of 2-d tiles (block (bw, bh)) over `rows` x `cols` items, grid.z walking `batch`.
inline dim3 tile_grid(int64_t rows, int64_t cols, int64_t batch, dim3 block) {
  return dim3(grid_extent(cols, block.x, kMaxGridX), grid_extent(rows, block.y, kMaxGridYZ),
              grid_extent(batch, 1, kMaxGridYZ));
}

// Grid-stride loops: a thread's first index along x / y and the step to its next one.
__device__ __forceinline__ int64_t first_x() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t stride_x() { return int64_t(gridDim.x) * blockDim.x; }
__device__ __forceinline__ int64_t first_y() { return int64_t(blockIdx.y) * blockDim.y + threadIdx.y; }
__device__ __forceinline__ int64_t stride_y() { return int64_t(gridDim.y) * blockDim.y; }

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
#if defined(GDDM_CUDA_EMULATION)
  (void)stream;
  emulation::run_grid(grid, block, [&] { kernel(Params(args)...); });
#else
  kernel<<<grid, block, 0, stream>>>(Params(args)...);
#endif
}

}  // namespace gddm::cuda
