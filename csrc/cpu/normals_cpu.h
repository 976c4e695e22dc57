// In-kernel standard normals for the CPU kernels: the Philox4x32-10 + Box-Muller stream of
// csrc/diffusion.h (normal_at), generated many groups at a time.
#pragma once

#include <cstdint>

namespace gddm {

// out[i] = normal_at(seed, start + i) for i in [0, count).
void fill_normals(int64_t seed, int64_t start, int64_t count, float* out);

}  // namespace gddm
