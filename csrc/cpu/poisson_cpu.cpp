// CPU kernels of the cosine-transform Poisson solve: the reorder (optionally fused with the
// divergence of a gradient field), the in-place spectral solve, and the inverse reorder.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <c10/util/complex.h>
#include <torch/library.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "../image_batch.h"
#include "parallel.h"
#include "../poisson.h"

namespace gddm {
namespace {

// Twiddles (cos, sin)(pi p / 2N) for p = 0 .. N/2.
template <typename acc_t>
std::vector<Twiddle<acc_t>> twiddles(int64_t N) {
  std::vector<Twiddle<acc_t>> t(N / 2 + 1);
  for (int64_t p = 0; p <= N / 2; ++p) {
    const double angle = M_PI * double(p) / (2.0 * double(N));
    t[p] = {acc_t(std::cos(angle)), acc_t(std::sin(angle))};
  }
  return t;
}

at::Tensor dct_reorder_cpu(const at::Tensor& x, bool field, double scale) {
  const ImageBatch b = image_batch(x, field, "dct_reorder");
  at::Tensor out = at::empty(image_shape(b), x.options().dtype(arithmetic_dtype(x.scalar_type())));
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    acc_t* o = out.mutable_data_ptr<acc_t>();
    const acc_t s = acc_t(scale);
    at::parallel_for(0, b.batch() * b.H, row_grain(b.W), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / b.H, m1 = r % b.H, i = dct_source(m1, b.H);
        const scalar_t* img = in + b.base(n);
        acc_t* orow = o + r * b.W;
        if (field) {
          for (int64_t m2 = 0; m2 < b.W; ++m2) {
            const int64_t j = dct_source(m2, b.W);
            orow[m2] = s * divergence_at<acc_t>(img + i * b.s_h + j * b.s_w, b.s_c, b.s_h, b.s_w, i, j, b.H, b.W);
          }
        } else {  // even columns ascending, then odd columns descending: two strided loops
          const scalar_t* row = img + i * b.s_h;
          const int64_t half = (b.W + 1) / 2;
          for (int64_t m2 = 0; m2 < half; ++m2) orow[m2] = s * acc_t(row[2 * m2 * b.s_w]);
          for (int64_t m2 = half; m2 < b.W; ++m2) orow[m2] = s * acc_t(row[(2 * (b.W - 1 - m2) + 1) * b.s_w]);
        }
      }
    });
  });
  return out;
}

void spectral_solve_cpu(at::Tensor& spectrum, int64_t H, int64_t W, double mean) {
  const int64_t batch = check_spectrum(spectrum, H, W), Wh = W / 2 + 1;
  if (batch == 0) return;
  AT_DISPATCH_FLOATING_TYPES(c10::toRealValueType(spectrum.scalar_type()), "gddm_C", [&] {
    using acc_t = scalar_t;
    auto* z = reinterpret_cast<Cplx<acc_t>*>(spectrum.mutable_data_ptr());
    const auto t1 = twiddles<acc_t>(H), t2 = twiddles<acc_t>(W);
    const int64_t pairs = H / 2 + 1;  // rows p = 0 .. H/2 with their mirrors H - p
    at::parallel_for(0, batch * pairs, row_grain(Wh), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / pairs, p = r % pairs, p_m = (H - p) % H;
        Cplx<acc_t>* row_a = z + (n * H + p) * Wh;
        Cplx<acc_t>* row_b = z + (n * H + p_m) * Wh;
        const bool write_b = p > 0 && p_m != p;
        const acc_t dc = acc_t(mean) * acc_t(H) * acc_t(W);
        // The mirror flags as compile-time constants, so the interior loops are branch-free.
        auto solve = [&](int64_t q, auto row_mirror, auto col_mirror) {
          Cplx<acc_t> za, zb;
          spectral_solve_pair(row_a[q], row_b[q], t1[p], t2[q], bool(row_mirror), bool(col_mirror), dc, za, zb);
          row_a[q] = za;
          if (write_b) row_b[q] = zb;
        };
        if (p > 0) {
          solve(0, std::true_type{}, std::false_type{});
          for (int64_t q = 1; q < Wh; ++q) solve(q, std::true_type{}, std::true_type{});
        } else {
          solve(0, std::false_type{}, std::false_type{});
          for (int64_t q = 1; q < Wh; ++q) solve(q, std::false_type{}, std::true_type{});
        }
      }
    });
  });
}

at::Tensor dct_unreorder_cpu(const at::Tensor& v, at::ScalarType dtype) {
  check_unreorder(v, dtype);
  at::Tensor out = at::empty(v.sizes(), v.options().dtype(dtype));
  if (out.numel() == 0) return out;
  const int64_t H = v.size(-2), W = v.size(-1), batch = v.numel() / (H * W);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t* in = v.const_data_ptr<acc_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, batch * H, row_grain(W), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / H, m1 = r % H;
        const acc_t* vrow = in + r * W;
        scalar_t* orow = o + (n * H + dct_source(m1, H)) * W;
        const int64_t half = (W + 1) / 2;
        for (int64_t m2 = 0; m2 < half; ++m2) orow[2 * m2] = static_cast<scalar_t>(vrow[m2]);
        for (int64_t m2 = half; m2 < W; ++m2) orow[2 * (W - 1 - m2) + 1] = static_cast<scalar_t>(vrow[m2]);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gddm_C, CPU, m) {
  m.impl("dct_reorder", &dct_reorder_cpu);
  m.impl("spectral_solve_", &spectral_solve_cpu);
  m.impl("dct_unreorder", &dct_unreorder_cpu);
}

}  // namespace gddm
