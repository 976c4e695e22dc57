// The CUDA built-ins that csrc/cuda's kernels use, on the host, for the emulation build
// (GDDM_CUDA_EMULATION, csrc/emulation): the same kernel sources compiled as C++ and run by a
// loop over every block and thread of the launch grid. Exact for kernels that are a pure
// function of (blockIdx, threadIdx), i.e. that use no shared memory, no __syncthreads and no
// warp intrinsics, which holds for every kernel here.
#pragma once

#if defined(__CUDACC__)
#error "emulation.h is for host compilers only"
#endif

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

using cudaStream_t = struct CUstream_st*;

// What a kernel reads as blockIdx, threadIdx, blockDim and gridDim: set by the launch loop
// before each emulated thread runs (thread_local, so launches from several host threads do not
// interfere).
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

// CUDA math functions the kernels call, in double precision on the host.
inline void sincospif(float x, float* s, float* c) {
  const double angle = M_PI * double(x);
  *s = float(std::sin(angle));
  *c = float(std::cos(angle));
}

inline void sincospi(double x, double* s, double* c) {
  *s = std::sin(M_PI * x);
  *c = std::cos(M_PI * x);
}

namespace gddm::cuda::emulation {

// CUDA's launch limits (compute capability 9.0, as on every architecture since 3.0).
constexpr int64_t kMaxThreadsPerBlock = 1024;
constexpr int64_t kMaxBlockX = 1024, kMaxBlockY = 1024, kMaxBlockZ = 64;
constexpr int64_t kMaxGridX = 2147483647, kMaxGridY = 65535, kMaxGridZ = 65535;

inline void check_dim(const char* what, char axis, unsigned value, int64_t limit) {
  if (value < 1 || int64_t(value) > limit) {
    throw std::runtime_error(std::string("emulated CUDA launch: ") + what + "." + axis + " = " +
                                std::to_string(value) + " is outside CUDA's limit [1, " +
                                std::to_string(limit) + "]");
  }
}

// Refuses a launch configuration that CUDA would refuse (cudaErrorInvalidConfiguration).
inline void check_launch(dim3 grid, dim3 block) {
  check_dim("gridDim", 'x', grid.x, kMaxGridX);
  check_dim("gridDim", 'y', grid.y, kMaxGridY);
  check_dim("gridDim", 'z', grid.z, kMaxGridZ);
  check_dim("blockDim", 'x', block.x, kMaxBlockX);
  check_dim("blockDim", 'y', block.y, kMaxBlockY);
  check_dim("blockDim", 'z', block.z, kMaxBlockZ);
  const int64_t threads = int64_t(block.x) * block.y * block.z;
  if (threads > kMaxThreadsPerBlock) {
    throw std::runtime_error("emulated CUDA launch: " + std::to_string(threads) +
                                " threads per block, CUDA allows at most " + std::to_string(kMaxThreadsPerBlock));
  }
}

// Runs thread() once for every (block, thread) of the grid, blocks in order, threads of a block
// in order, with the built-ins set as CUDA sets them.
template <typename Thread>
void run_grid(dim3 grid, dim3 block, Thread&& thread) {
  check_launch(grid, block);
  gridDim = grid;
  blockDim = block;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        blockIdx = {bx, by, bz};
        for (unsigned tz = 0; tz < block.z; ++tz)
          for (unsigned ty = 0; ty < block.y; ++ty)
            for (unsigned tx = 0; tx < block.x; ++tx) {
              threadIdx = {tx, ty, tz};
              thread();
            }
      }
}

}  // namespace gddm::cuda::emulation
