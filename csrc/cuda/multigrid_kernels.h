// Launchers of the CUDA multigrid kernels (multigrid_kernels.cu); acc_t: float or double.
// Grids are contiguous (batch, H, W); the coarse grids (batch, ceil(H/2), ceil(W/2)).
#pragma once

#include "runtime.h"

#include <cstdint>

namespace gddm::cuda {

template <typename acc_t>
void launch_mg_smooth(acc_t* u, const acc_t* f, const acc_t* wy, const acc_t* wx, int64_t batch, int64_t H,
                      int64_t W, int color, cudaStream_t stream);

template <typename acc_t>
void launch_mg_residual_restrict(const acc_t* u, const acc_t* f, const acc_t* wy, const acc_t* wx, acc_t* out,
                                 int64_t batch, int64_t H, int64_t W, cudaStream_t stream);

template <typename acc_t>
void launch_mg_prolong_correct(acc_t* u, const acc_t* e, const int64_t* lo_y, const int64_t* hi_y,
                               const acc_t* w_y, const int64_t* lo_x, const int64_t* hi_x, const acc_t* w_x,
                               int64_t batch, int64_t H, int64_t W, int64_t Hc, int64_t Wc,
                               cudaStream_t stream);

}  // namespace gddm::cuda
