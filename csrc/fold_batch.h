// Folding the leading (batch) dims of a tensor into two, (B0, B1, *inner), without a copy for
// the common layouts (contiguous, channels-last, slices, expanded dims): the C++ twin of
// gddm_kernels/_layout.py's fold_batch, same rule (tests/test_public_ops.py compares them).
// Adjacent leading dims merge when stride[i] == stride[i+1] * size[i+1], size-1 dims drop out;
// only when more than two leading dims stay unmergeable is the tensor copied.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace gddm {

constexpr int64_t kFoldedBatchDims = 2;

inline at::Tensor fold_batch(const at::Tensor& x, int64_t inner_dims) {
  const int64_t lead = x.dim() - inner_dims;
  std::vector<int64_t> sizes, strides;
  for (int64_t d = 0; d < lead; ++d) {
    const int64_t size = x.size(d), stride = x.stride(d);
    if (size == 1) continue;
    if (!sizes.empty() && strides.back() == stride * size) {
      sizes.back() *= size;
      strides.back() = stride;
    } else {
      sizes.push_back(size);
      strides.push_back(stride);
    }
  }
  if (static_cast<int64_t>(sizes.size()) > kFoldedBatchDims) {
    const at::Tensor dense = x.contiguous();
    std::vector<int64_t> shape{1, -1};
    for (int64_t d = lead; d < x.dim(); ++d) shape.push_back(x.size(d));
    return dense.view(shape);
  }
  while (static_cast<int64_t>(sizes.size()) < kFoldedBatchDims) {
    sizes.insert(sizes.begin(), 1);
    strides.insert(strides.begin(), 0);
  }
  for (int64_t d = lead; d < x.dim(); ++d) {
    sizes.push_back(x.size(d));
    strides.push_back(x.stride(d));
  }
  return x.as_strided(sizes, strides, x.storage_offset());
}

}  // namespace gddm
