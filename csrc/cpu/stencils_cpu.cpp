// CPU kernels of gddm_C::{gradient, divergence, laplacian}: one pass over the image, rows in
// parallel (at::parallel_for), a branch-free inner loop over the interior columns that the
// compiler vectorises when the column stride is 1.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>

#include "../image_checks.h"
#include "parallel.h"
#include "stencil_rows.h"

namespace gddm {
namespace {

// Loads element j of a row with column stride sw (a compile-time 1 on the fast path).
template <bool kUnitW, typename acc_t, typename scalar_t>
inline acc_t load(const scalar_t* row, int64_t j, int64_t sw) {
  return static_cast<acc_t>(row[kUnitW ? j : j * sw]);
}

template <bool kUnitW, typename scalar_t>
void gradient_rows(const scalar_t* x, scalar_t* out, const ImageBatch& b, double scale_d,
                   int64_t begin, int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t scale = static_cast<acc_t>(scale_d);
  const int64_t W = b.W, sw = b.s_w;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / b.H, i = r % b.H;
    const scalar_t* row = x + b.base(n) + i * b.s_h;
    scalar_t* out_v = out + ((n * 2) * b.H + i) * W;
    scalar_t* out_h = out_v + b.H * W;
    if (i + 1 < b.H) {
      const scalar_t* down = row + b.s_h;
      for (int64_t j = 0; j < W; ++j) {
        out_v[j] = static_cast<scalar_t>(
            scale * forward_difference(load<kUnitW, acc_t>(down, j, sw), load<kUnitW, acc_t>(row, j, sw), true));
      }
    } else {  // scale * 0: NaN for a NaN scale, as everywhere else
      for (int64_t j = 0; j < W; ++j) out_v[j] = static_cast<scalar_t>(scale * acc_t(0));
    }
    for (int64_t j = 0; j + 1 < W; ++j) {
      out_h[j] = static_cast<scalar_t>(
          scale * forward_difference(load<kUnitW, acc_t>(row, j + 1, sw), load<kUnitW, acc_t>(row, j, sw), true));
    }
    out_h[W - 1] = static_cast<scalar_t>(scale * acc_t(0));
  }
}

template <bool kUnitW, typename scalar_t>
void divergence_rows(const scalar_t* g, scalar_t* out, const ImageBatch& b, double scale_d,
                     int64_t begin, int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t scale = static_cast<acc_t>(scale_d);
  const int64_t W = b.W, sw = b.s_w;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / b.H, i = r % b.H;
    const scalar_t* gv = g + b.base(n) + i * b.s_h;
    const scalar_t* gh = gv + b.s_c;
    const bool has_up = i > 0, has_down = i + 1 < b.H;
    const scalar_t* gv_up = has_up ? gv - b.s_h : gv;
    scalar_t* o = out + (n * b.H + i) * W;
    auto at = [&](int64_t j, bool has_left, bool has_right) {
      const acc_t gh_left = has_left ? load<kUnitW, acc_t>(gh, j - 1, sw) : acc_t(0);
      return static_cast<scalar_t>(
          scale * divergence_from(load<kUnitW, acc_t>(gv, j, sw), load<kUnitW, acc_t>(gv_up, j, sw),
                                  load<kUnitW, acc_t>(gh, j, sw), gh_left, has_down, has_up, has_right,
                                  has_left));
    };
    o[0] = at(0, false, W > 1);
    for (int64_t j = 1; j + 1 < W; ++j) o[j] = at(j, true, true);
    if (W > 1) o[W - 1] = at(W - 1, true, false);
  }
}

template <bool kUnitW, typename scalar_t>
void laplacian_rows(const scalar_t* x, scalar_t* out, const ImageBatch& b, double scale_d,
                    int64_t begin, int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t scale = static_cast<acc_t>(scale_d);
  const int64_t W = b.W, sw = b.s_w;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / b.H, i = r % b.H;
    const scalar_t* row = x + b.base(n) + i * b.s_h;
    const scalar_t* up = i > 0 ? row - b.s_h : row;           // edge-replicate
    const scalar_t* down = i + 1 < b.H ? row + b.s_h : row;
    scalar_t* o = out + (n * b.H + i) * W;
    laplacian_row([=](int64_t j) { return load<kUnitW, acc_t>(up, j, sw); },
                  [=](int64_t j) { return load<kUnitW, acc_t>(row, j, sw); },
                  [=](int64_t j) { return load<kUnitW, acc_t>(down, j, sw); }, W,
                  [=](int64_t j, acc_t v) { o[j] = static_cast<scalar_t>(scale * v); });
  }
}

// Allocates the contiguous output and runs rows(unit_w, in, out, b, scale, begin, end) over
// all B*H rows in parallel; unit_w is std::true_type when the column stride is 1.
template <typename Rows>
at::Tensor run_rows(const at::Tensor& x, double scale, bool field_in, bool field_out,
                    const char* name, Rows rows) {
  const ImageBatch b = image_batch(x, field_in, name);
  at::Tensor out = at::empty(field_out ? field_shape(b) : image_shape(b), x.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    const scalar_t* in_ptr = x.const_data_ptr<scalar_t>();
    scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, b.batch() * b.H, row_grain(b.W), [&](int64_t begin, int64_t end) {
      if (b.s_w == 1) rows(std::true_type{}, in_ptr, out_ptr, b, scale, begin, end);
      else rows(std::false_type{}, in_ptr, out_ptr, b, scale, begin, end);
    });
  });
  return out;
}

at::Tensor gradient_cpu(const at::Tensor& x, double scale) {
  return run_rows(x, scale, false, true, "gradient",
                  [](auto unit_w, auto... args) { gradient_rows<decltype(unit_w)::value>(args...); });
}

at::Tensor divergence_cpu(const at::Tensor& g, double scale) {
  return run_rows(g, scale, true, false, "divergence",
                  [](auto unit_w, auto... args) { divergence_rows<decltype(unit_w)::value>(args...); });
}

at::Tensor laplacian_cpu(const at::Tensor& x, double scale) {
  return run_rows(x, scale, false, false, "laplacian",
                  [](auto unit_w, auto... args) { laplacian_rows<decltype(unit_w)::value>(args...); });
}

}  // namespace

TORCH_LIBRARY_IMPL(gddm_C, CPU, m) {
  m.impl("gradient", &gradient_cpu);
  m.impl("divergence", &divergence_cpu);
  m.impl("laplacian", &laplacian_cpu);
}

}  // namespace gddm
