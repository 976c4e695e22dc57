// The stencils along one image row on the CPU: the formulas are csrc/stencils.h's, these loops
// own the boundary columns and keep the interior branch-free (vectorised when the loads are
// contiguous). laplacian_row serves the laplacian kernel (stencils_cpu.cpp) and the fused
// noise-add (diffusion_cpu.cpp); gradient_row the noise-add only: the gradient kernel keeps its
// own loop, which measured 1.6x faster than this one through strided accessors (0.10 vs 0.16 ms,
// 8x3x128x128 float32, one thread). Rows are read through accessors, `row(j)` -> element j as acc_t, and written
// through `store(j, value)`.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../stencils.h"
#include "isa.h"

namespace gddm {

// laplacian of row `centre` with the rows above (`up`) and below (`down`), edge-replicated
// (up == centre on the first row, down == centre on the last).
template <typename Up, typename Centre, typename Down, typename Store>
GDDM_ALWAYS_INLINE void laplacian_row(Up up, Centre centre, Down down, int64_t W, Store store) {
  store(0, laplacian_from(centre(0), up(0), down(0), centre(0), centre(std::min<int64_t>(1, W - 1))));
  for (int64_t j = 1; j + 1 < W; ++j) {
    store(j, laplacian_from(centre(j), up(j), down(j), centre(j - 1), centre(j + 1)));
  }
  if (W > 1) store(W - 1, laplacian_from(centre(W - 1), up(W - 1), down(W - 1), centre(W - 2), centre(W - 1)));
}

// The two gradient components of row `centre`: vertical (`down` is the next row, absent on the
// last row: has_down false) into store_v, horizontal into store_h; the differences that leave
// the image are forward_difference's 0.
template <typename Centre, typename Down, typename StoreV, typename StoreH>
GDDM_ALWAYS_INLINE void gradient_row(Centre centre, Down down, bool has_down, int64_t W, StoreV store_v,
                                     StoreH store_h) {
  if (has_down) {
    for (int64_t j = 0; j < W; ++j) store_v(j, forward_difference(down(j), centre(j), true));
  } else {
    for (int64_t j = 0; j < W; ++j) store_v(j, forward_difference(centre(j), centre(j), false));
  }
  for (int64_t j = 0; j + 1 < W; ++j) store_h(j, forward_difference(centre(j + 1), centre(j), true));
  store_h(W - 1, forward_difference(centre(W - 1), centre(W - 1), false));
}

}  // namespace gddm
