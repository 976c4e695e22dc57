// CPU kernels of the multigrid stages: a red/black Gauss-Seidel half sweep in place, the
// residual fused with its restriction, the prolongation fused with the correction.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../multigrid_checks.h"
#include "../multigrid.h"
#include "parallel.h"

namespace gddm {
namespace {

void mg_smooth_cpu(at::Tensor& u, const at::Tensor& f, const at::Tensor& wy, const at::Tensor& wx,
                   int64_t color) {
  const auto [batch, H, W] = check_smooth(u, f, wy, wx, color);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "gddm_C", [&] {
    scalar_t* up = u.mutable_data_ptr<scalar_t>();
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    const scalar_t *wyp = wy.const_data_ptr<scalar_t>(), *wxp = wx.const_data_ptr<scalar_t>();
    at::parallel_for(0, batch * H, row_grain(W), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / H, i = r % H;
        scalar_t* img = up + n * H * W;
        const scalar_t* rhs = fp + n * H * W;
        for (int64_t j = (i + color) % 2; j < W; j += 2) {
          img[i * W + j] = gauss_seidel_at(img, rhs[i * W + j], wyp, wxp, i, j, H, W);
        }
      }
    });
  });
}

at::Tensor mg_residual_restrict_cpu(const at::Tensor& u, const at::Tensor& f, const at::Tensor& wy,
                                    const at::Tensor& wx) {
  const auto [batch, H, W] = check_residual_restrict(u, f, wy, wx);
  const int64_t Hc = (H + 1) / 2, Wc = (W + 1) / 2;
  at::Tensor out = at::empty(coarse_shape(u), u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "gddm_C", [&] {
    const scalar_t *up = u.const_data_ptr<scalar_t>(), *fp = f.const_data_ptr<scalar_t>();
    const scalar_t *wyp = wy.const_data_ptr<scalar_t>(), *wxp = wx.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, batch * Hc, row_grain(2 * W), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / Hc, I = r % Hc;
        for (int64_t J = 0; J < Wc; ++J) {
          o[r * Wc + J] = residual_restrict_at(up + n * H * W, fp + n * H * W, wyp, wxp, I, J, H, W);
        }
      }
    });
  });
  return out;
}

void mg_prolong_correct_cpu(at::Tensor& u, const at::Tensor& e, const at::Tensor& lo_y, const at::Tensor& hi_y,
                            const at::Tensor& w_y, const at::Tensor& lo_x, const at::Tensor& hi_x,
                            const at::Tensor& w_x) {
  const auto [batch, H, W] = check_prolong_correct(u, e, lo_y, hi_y, w_y, lo_x, hi_x, w_x);
  const int64_t Hc = e.size(-2), Wc = e.size(-1);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "gddm_C", [&] {
    scalar_t* up = u.mutable_data_ptr<scalar_t>();
    const scalar_t* ep = e.const_data_ptr<scalar_t>();
    const int64_t *ly = lo_y.const_data_ptr<int64_t>(), *hy = hi_y.const_data_ptr<int64_t>();
    const int64_t *lx = lo_x.const_data_ptr<int64_t>(), *hx = hi_x.const_data_ptr<int64_t>();
    const scalar_t *wyp = w_y.const_data_ptr<scalar_t>(), *wxp = w_x.const_data_ptr<scalar_t>();
    at::parallel_for(0, batch * H, row_grain(W), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / H, i = r % H;
        const scalar_t* coarse = ep + n * Hc * Wc;
        for (int64_t j = 0; j < W; ++j) {
          up[r * W + j] += prolongation_at(coarse, Wc, ly, hy, wyp, lx, hx, wxp, i, j);
        }
      }
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(gddm_C, CPU, m) {
  m.impl("mg_smooth_", &mg_smooth_cpu);
  m.impl("mg_residual_restrict", &mg_residual_restrict_cpu);
  m.impl("mg_prolong_correct_", &mg_prolong_correct_cpu);
}

}  // namespace gddm
