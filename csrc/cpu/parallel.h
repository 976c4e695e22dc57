// Work splitting shared by the CPU kernels.
#pragma once

#include <algorithm>
#include <cstdint>

namespace gddm {

// Rows of at least this many elements in total go to one at::parallel_for task.
constexpr int64_t kGrainElements = 32768;

inline int64_t row_grain(int64_t row_length) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(row_length, 1));
}

}  // namespace gddm
