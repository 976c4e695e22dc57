// CUDA registrations of the cosine-transform Poisson solve kernels (poisson_kernels.cu).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/fft_irfft2.h>
#include <ATen/ops/fft_rfft2.h>
#include <torch/library.h>

#include <vector>

#include "../image_checks.h"
#include "host.h"
#include "poisson_kernels.h"

namespace gddm {
namespace {

at::Tensor dct_reorder_cuda(const at::Tensor& x, bool field, double scale) {
  const ImageBatch b = image_batch(x, field, "dct_reorder");
  const cuda::DeviceGuard guard(x.device());
  at::Tensor out = at::empty(image_shape(b), x.options().dtype(arithmetic_dtype(x.scalar_type())));
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    cuda::launch_dct_reorder(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<acc_t>(), b, field, scale,
                             cuda::current_stream());
  });
  GDDM_CHECK_LAUNCH();
  return out;
}

void spectral_solve_cuda(at::Tensor& spectrum, int64_t H, int64_t W, double mean) {
  const int64_t batch = check_spectrum(spectrum, H, W);
  if (batch == 0) return;
  const cuda::DeviceGuard guard(spectrum.device());
  AT_DISPATCH_FLOATING_TYPES(c10::toRealValueType(spectrum.scalar_type()), "gddm_C", [&] {
    cuda::launch_spectral_solve(reinterpret_cast<Cplx<scalar_t>*>(spectrum.mutable_data_ptr()), batch, H, W,
                                mean, cuda::current_stream());
  });
  GDDM_CHECK_LAUNCH();
}

at::Tensor dct_unreorder_cuda(const at::Tensor& v, at::ScalarType dtype) {
  check_unreorder(v, dtype);
  const cuda::DeviceGuard guard(v.device());
  at::Tensor out = at::empty(v.sizes(), v.options().dtype(dtype));
  if (out.numel() == 0) return out;
  const int64_t H = v.size(-2), W = v.size(-1), batch = v.numel() / (H * W);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    cuda::launch_dct_unreorder(v.const_data_ptr<acc_t>(), out.mutable_data_ptr<scalar_t>(), batch, H, W,
                               cuda::current_stream());
  });
  GDDM_CHECK_LAUNCH();
  return out;
}

// The whole solve: the three passes around cuFFT's rfft2 / irfft2 (gddm_kernels/_spectral.py).
at::Tensor dct_solve_cuda(const at::Tensor& x, bool field, double scale, double mean) {
  const int64_t H = x.size(-2), W = x.size(-1);
  at::Tensor spectrum = at::fft_rfft2(dct_reorder_cuda(x, field, scale));
  spectral_solve_cuda(spectrum, H, W, mean);
  return dct_unreorder_cuda(at::fft_irfft2(spectrum, std::vector<int64_t>{H, W}), x.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(GDDM_CUDA_LIBRARY, GDDM_CUDA_KEY, m) {
  m.impl("dct_solve", &dct_solve_cuda);
  m.impl("dct_reorder", &dct_reorder_cuda);
  m.impl("spectral_solve_", &spectral_solve_cuda);
  m.impl("dct_unreorder", &dct_unreorder_cuda);
}

}  // namespace gddm
