// Argument checks of the stencil and cosine-transform kernels (host side), shared by the CPU
// and CUDA registrations: the checked ImageBatch of a (B0, B1, [2,] H, W) tensor, the spectrum
// and solution checks of the DCT solve, and the output shapes.
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

// The arithmetic dtype of data of dtype t: float64 for float64, float32 otherwise.
inline at::ScalarType arithmetic_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// The half spectrum (..., H, W/2+1) a DCT solve works on in place; returns the image count.
inline int64_t check_spectrum(const at::Tensor& spectrum, int64_t H, int64_t W) {
  TORCH_CHECK(H >= 1 && W >= 1, "gddm_C::spectral_solve_: the image size `H`, `W` must be at least 1, got ", H,
              ", ", W);
  TORCH_CHECK(spectrum.is_complex() && spectrum.is_contiguous() && spectrum.dim() >= 2 &&
                  spectrum.size(-2) == H && spectrum.size(-1) == W / 2 + 1,
              "gddm_C::spectral_solve_: expected a contiguous complex (..., H, W//2+1) spectrum");
  return spectrum.numel() == 0 ? 0 : spectrum.numel() / (H * (W / 2 + 1));
}

// The transposed spectrum (..., W//2+1, H) of spectral_solve_columns_ -> its batch size.
inline int64_t check_spectrum_columns(const at::Tensor& spectrum_t, int64_t H, int64_t W) {
  TORCH_CHECK(H >= 1 && W >= 1, "gddm_C::spectral_solve_columns_: the image size `H`, `W` must be at least 1, got ",
              H, ", ", W);
  TORCH_CHECK(spectrum_t.is_complex() && spectrum_t.is_contiguous() && spectrum_t.dim() >= 2 &&
                  spectrum_t.size(-2) == W / 2 + 1 && spectrum_t.size(-1) == H,
              "gddm_C::spectral_solve_columns_: expected a contiguous complex (..., W//2+1, H) spectrum");
  return spectrum_t.numel() == 0 ? 0 : spectrum_t.numel() / (H * (W / 2 + 1));
}

// A reordered solution v (contiguous, arithmetic dtype) going back to `dtype`.
inline void check_unreorder(const at::Tensor& v, at::ScalarType dtype) {
  TORCH_CHECK(v.is_contiguous() && v.dim() >= 2, "gddm_C::dct_unreorder: expected a contiguous (..., H, W) tensor");
  TORCH_CHECK(v.scalar_type() == arithmetic_dtype(dtype),
              "gddm_C::dct_unreorder: float64 solutions go to float64 only, float32 ones to the other dtypes");
}

// Contiguous output shapes: (B0, B1, 2, H, W) for gradient, (B0, B1, H, W) otherwise.
inline std::vector<int64_t> field_shape(const ImageBatch& b) { return {b.B0, b.B1, 2, b.H, b.W}; }
inline std::vector<int64_t> image_shape(const ImageBatch& b) { return {b.B0, b.B1, b.H, b.W}; }

}  // namespace gddm
