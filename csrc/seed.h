// The seed of the in-kernel noise, drawn from the caller's generator exactly as
// torch.randint(0, 2**62, (1,)) would draw it (gddm_kernels/diffusion.py's _seed).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Optional.h>

namespace gddm {

constexpr int64_t kSeedHigh = int64_t(1) << 62;  // seeds are uniform in [0, 2^62)

// A one-element int64 seed on `like`'s device where the step draws its noise in the kernel
// (`draw` and no noise given), else none.
inline c10::optional<at::Tensor> draw_seed(bool draw, const c10::optional<at::Tensor>& noise,
                                           c10::optional<at::Generator> generator, const at::Tensor& like) {
  if (!draw || noise) return c10::nullopt;
  return at::randint(0, kSeedHigh, {1}, std::move(generator), like.options().dtype(at::kLong));
}

}  // namespace gddm
