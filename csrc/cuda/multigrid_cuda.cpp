// CUDA registrations of the multigrid stages (multigrid_kernels.cu).
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../multigrid_checks.h"
#include "host.h"
#include "multigrid_kernels.h"

namespace gddm {
namespace {

void mg_smooth_cuda(at::Tensor& u, const at::Tensor& f, const at::Tensor& wy, const at::Tensor& wx,
                    int64_t color) {
  const auto [batch, H, W] = check_smooth(u, f, wy, wx, color);
  const cuda::DeviceGuard guard(u.device());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "gddm_C", [&] {
    cuda::launch_mg_smooth(u.mutable_data_ptr<scalar_t>(), f.const_data_ptr<scalar_t>(),
                           wy.const_data_ptr<scalar_t>(), wx.const_data_ptr<scalar_t>(), batch, H, W, int(color),
                           cuda::current_stream());
  });
  GDDM_CHECK_LAUNCH();
}

at::Tensor mg_residual_restrict_cuda(const at::Tensor& u, const at::Tensor& f, const at::Tensor& wy,
                                     const at::Tensor& wx) {
  const auto [batch, H, W] = check_residual_restrict(u, f, wy, wx);
  const cuda::DeviceGuard guard(u.device());
  at::Tensor out = at::empty(coarse_shape(u), u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "gddm_C", [&] {
    cuda::launch_mg_residual_restrict(u.const_data_ptr<scalar_t>(), f.const_data_ptr<scalar_t>(),
                                      wy.const_data_ptr<scalar_t>(), wx.const_data_ptr<scalar_t>(),
                                      out.mutable_data_ptr<scalar_t>(), batch, H, W,
                                      cuda::current_stream());
  });
  GDDM_CHECK_LAUNCH();
  return out;
}

void mg_prolong_correct_cuda(at::Tensor& u, const at::Tensor& e, const at::Tensor& lo_y, const at::Tensor& hi_y,
                             const at::Tensor& w_y, const at::Tensor& lo_x, const at::Tensor& hi_x,
                             const at::Tensor& w_x) {
  const auto [batch, H, W] = check_prolong_correct(u, e, lo_y, hi_y, w_y, lo_x, hi_x, w_x);
  const cuda::DeviceGuard guard(u.device());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "gddm_C", [&] {
    cuda::launch_mg_prolong_correct(u.mutable_data_ptr<scalar_t>(), e.const_data_ptr<scalar_t>(),
                                    lo_y.const_data_ptr<int64_t>(), hi_y.const_data_ptr<int64_t>(),
                                    w_y.const_data_ptr<scalar_t>(), lo_x.const_data_ptr<int64_t>(),
                                    hi_x.const_data_ptr<int64_t>(), w_x.const_data_ptr<scalar_t>(), batch, H, W,
                                    e.size(-2), e.size(-1), cuda::current_stream());
  });
  GDDM_CHECK_LAUNCH();
}

}  // namespace

TORCH_LIBRARY_IMPL(GDDM_CUDA_LIBRARY, GDDM_CUDA_KEY, m) {
  m.impl("mg_smooth_", &mg_smooth_cuda);
  m.impl("mg_residual_restrict", &mg_residual_restrict_cuda);
  m.impl("mg_prolong_correct_", &mg_prolong_correct_cuda);
}

}  // namespace gddm
