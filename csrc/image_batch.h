// Host-side helpers shared by the CPU and CUDA op implementations: argument checks and the
// ImageBatch descriptor of a (B0, B1, [2,] H, W) tensor.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "stencils.h"

namespace gddm {

// x: (B0, B1, H, W), or (B0, B1, 2, H, W) when `field` is true.
inline ImageBatch image_batch(const at::Tensor& x, bool field, const char* op) {
  const int64_t rank = field ? 5 : 4;
  TORCH_CHECK(x.dim() == rank, "gddm_C::", op, ": expected a ", rank, "-d tensor, got ",
              x.dim(), "-d");
  TORCH_CHECK(!field || x.size(2) == 2, "gddm_C::", op,
              ": the gradient-component dim must have size 2, got ", x.size(2));
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "gddm_C::", op,
              ": expected a floating-point tensor, got ", x.scalar_type());
  const int64_t h = rank - 2;
  return ImageBatch{x.size(0),   x.size(1),   x.size(h),   x.size(h + 1), x.stride(0),
                    x.stride(1), field ? x.stride(2) : 0, x.stride(h), x.stride(h + 1)};
}

// Contiguous output shapes: (B0, B1, 2, H, W) for gradient, (B0, B1, H, W) otherwise.
inline std::vector<int64_t> field_shape(const ImageBatch& b) { return {b.B0, b.B1, 2, b.H, b.W}; }
inline std::vector<int64_t> image_shape(const ImageBatch& b) { return {b.B0, b.B1, b.H, b.W}; }

}  // namespace gddm
