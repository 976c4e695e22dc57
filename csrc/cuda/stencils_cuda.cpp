// CUDA registrations of gddm_C::{gradient, divergence, laplacian}: checks, output allocation
// and the launch on the current stream (kernels in stencils_kernels.cu).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../image_checks.h"
#include "host.h"
#include "stencils_kernels.h"

namespace gddm {
namespace {

template <typename Launch>
at::Tensor run_cuda(const at::Tensor& x, double scale, bool field_in, bool field_out,
                    const char* name, Launch launch) {
  const ImageBatch b = image_batch(x, field_in, name);
  const cuda::DeviceGuard guard(x.device());
  at::Tensor out = at::empty(field_out ? field_shape(b) : image_shape(b), x.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    launch(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), b, scale,
           cuda::current_stream());
  });
  GDDM_CHECK_LAUNCH();
  return out;
}

at::Tensor gradient_cuda(const at::Tensor& x, double scale) {
  return run_cuda(x, scale, false, true, "gradient",
                  [](auto... args) { cuda::launch_gradient(args...); });
}

at::Tensor divergence_cuda(const at::Tensor& g, double scale) {
  return run_cuda(g, scale, true, false, "divergence",
                  [](auto... args) { cuda::launch_divergence(args...); });
}

at::Tensor laplacian_cuda(const at::Tensor& x, double scale) {
  return run_cuda(x, scale, false, false, "laplacian",
                  [](auto... args) { cuda::launch_laplacian(args...); });
}

}  // namespace

TORCH_LIBRARY_IMPL(GDDM_CUDA_LIBRARY, GDDM_CUDA_KEY, m) {
  m.impl("gradient", &gradient_cuda);
  m.impl("divergence", &divergence_cuda);
  m.impl("laplacian", &laplacian_cuda);
}

}  // namespace gddm
