// Stencil arithmetic shared by the CPU (C++) and CUDA kernels.
//
// The operators (docs/design.md, "Operators"), on an image x of size H x W with a Neumann boundary:
//   gradient(x)[0, i, j] = x[i+1, j] - x[i, j]   (0 on the last row)
//   gradient(x)[1, i, j] = x[i, j+1] - x[i, j]   (0 on the last column)
//   divergence(g)        = -gradient^T g         (exact negative adjoint)
//   laplacian(x)[i, j]   = 1/4 (x_up + x_down + x_left + x_right) - x[i, j], edge-replicated
//                        = 1/4 divergence(gradient(x))
// Every output is multiplied by `scale`. Arithmetic is done in acc_t (float for
// fp32/fp16/bf16 data, double for fp64); the kernels own the memory access and the boundary
// masks, these helpers own the formulas.
#pragma once

#include <cstdint>

// Forced inline on both sides: the CPU kernels vectorise loops over these helpers only when
// they are inlined, also into the ISA clones of csrc/cpu/isa.h.
#if defined(__CUDACC__)
#define GDDM_HD __host__ __device__ __forceinline__
#else
#define GDDM_HD __attribute__((always_inline)) inline
#endif

namespace gddm {

// A batch of images (B0, B1, [C,] H, W) with arbitrary element strides. Two batch dims are
// enough for every layout the Python layer passes without a copy (e.g. channels-last NCHW).
struct ImageBatch {
  int64_t B0, B1, H, W;
  int64_t s_b0, s_b1, s_c, s_h, s_w;  // s_c: stride of the gradient-component dim (if any)

  GDDM_HD int64_t base(int64_t b) const { return (b / B1) * s_b0 + (b % B1) * s_b1; }
  GDDM_HD int64_t batch() const { return B0 * B1; }
};

// One forward difference with the Neumann boundary: 0 where the neighbour is outside.
template <typename acc_t>
GDDM_HD acc_t forward_difference(acc_t next, acc_t here, bool next_inside) {
  return next_inside ? next - here : acc_t(0);
}

// divergence at a pixel from the two gradient components at the pixel and at its upper and
// left neighbours; the flags say which of those differences exist (Neumann boundary).
template <typename acc_t>
GDDM_HD acc_t divergence_from(acc_t gv, acc_t gv_up, acc_t gh, acc_t gh_left, bool has_down,
                              bool has_up, bool has_right, bool has_left) {
  acc_t d = acc_t(0);
  if (has_down) d += gv;
  if (has_up) d -= gv_up;
  if (has_right) d += gh;
  if (has_left) d -= gh_left;
  return d;
}

// divergence at pixel (i, j) of a gradient field whose vertical component at (i, j) is *pv;
// the horizontal component lies s_c further, rows s_h apart, columns s_w apart.
template <typename acc_t, typename scalar_t>
GDDM_HD acc_t divergence_at(const scalar_t* pv, int64_t s_c, int64_t s_h, int64_t s_w, int64_t i,
                            int64_t j, int64_t H, int64_t W) {
  const bool has_up = i > 0, has_down = i + 1 < H, has_left = j > 0, has_right = j + 1 < W;
  const scalar_t* ph = pv + s_c;
  return divergence_from(has_down ? acc_t(pv[0]) : acc_t(0), has_up ? acc_t(pv[-s_h]) : acc_t(0),
                         has_right ? acc_t(ph[0]) : acc_t(0), has_left ? acc_t(ph[-s_w]) : acc_t(0),
                         has_down, has_up, has_right, has_left);
}

// The paper's 5-point kernel [[0,1/4,0],[1/4,-1,1/4],[0,1/4,0]] from the (edge-replicated)
// neighbours, written as a sum of differences so that smooth regions lose no precision.
template <typename acc_t>
GDDM_HD acc_t laplacian_from(acc_t c, acc_t up, acc_t down, acc_t left, acc_t right) {
  return acc_t(0.25) * (((up - c) + (down - c)) + ((left - c) + (right - c)));
}

}  // namespace gddm
