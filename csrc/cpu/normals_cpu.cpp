// CPU generation of the in-kernel normals (see normals_cpu.h).
#include "normals_cpu.h"

#include <algorithm>

#include "../diffusion.h"
#include "isa.h"

namespace gddm {
namespace {

// Groups go through Philox and Box-Muller kPhiloxLanes at a time, structure-of-arrays, so the
// compiler vectorises both loops (with -fno-math-errno -fno-trapping-math, see setup.py) at the
// width of the running CPU (GDDM_ISA_CLONES: 16 lanes with AVX-512, 8 with AVX2, 4 baseline).
constexpr int kPhiloxLanes = 64;

GDDM_ALWAYS_INLINE void normal4_lanes(int64_t seed, int64_t first_group, float out[kNormalsPerGroup * kPhiloxLanes]) {
  uint32_t c0[kPhiloxLanes], c1[kPhiloxLanes], c2[kPhiloxLanes], c3[kPhiloxLanes];
  for (int l = 0; l < kPhiloxLanes; ++l) {
    const uint64_t group = static_cast<uint64_t>(first_group + l);
    c0[l] = static_cast<uint32_t>(group);
    c1[l] = static_cast<uint32_t>(group >> 32);
    c2[l] = 0;
    c3[l] = 0;
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(static_cast<uint64_t>(seed) >> 32);
  for (int round = 0; round < kPhiloxRounds; ++round) {
    for (int l = 0; l < kPhiloxLanes; ++l) {
      const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c0[l], p1 = static_cast<uint64_t>(kPhiloxM1) * c2[l];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = static_cast<uint32_t>(p1);
      c3[l] = static_cast<uint32_t>(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  for (int l = 0; l < kPhiloxLanes; ++l) {
    const float rho_a = sqrtf(-2.0f * log_positive(uniform24(c0[l], true)));
    const float rho_b = sqrtf(-2.0f * log_positive(uniform24(c2[l], true)));
    float sin_a, cos_a, sin_b, cos_b;
    sincos_turns(uniform24(c1[l], false), sin_a, cos_a);
    sincos_turns(uniform24(c3[l], false), sin_b, cos_b);
    out[4 * l] = rho_a * cos_a;
    out[4 * l + 1] = rho_a * sin_a;
    out[4 * l + 2] = rho_b * cos_b;
    out[4 * l + 3] = rho_b * sin_b;
  }
}

}  // namespace

GDDM_ISA_CLONES void fill_normals(int64_t seed, int64_t start, int64_t count, float* out) {
  constexpr int64_t kBlock = kNormalsPerGroup * kPhiloxLanes;
  float block[kBlock];
  for (int64_t g = start / kNormalsPerGroup; g * kNormalsPerGroup < start + count; g += kPhiloxLanes) {
    normal4_lanes(seed, g, block);
    const int64_t from = std::max<int64_t>(g * kNormalsPerGroup, start);
    const int64_t to = std::min<int64_t>(g * kNormalsPerGroup + kBlock, start + count);
    for (int64_t i = from; i < to; ++i) out[i - start] = block[i - g * kNormalsPerGroup];
  }
}

}  // namespace gddm
