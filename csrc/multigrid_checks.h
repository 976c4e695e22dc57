// Argument checks of the multigrid kernels (host side), shared by the CPU and CUDA
// registrations so both accept exactly the same inputs.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <initializer_list>
#include <vector>

namespace gddm {

struct GridSize {
  int64_t batch, H, W;
};

namespace detail {

inline GridSize check_grid(const at::Tensor& u, const char* op) {
  TORCH_CHECK(u.dim() >= 2 && u.is_contiguous() &&
                  (u.scalar_type() == at::kFloat || u.scalar_type() == at::kDouble),
              "gddm_C::", op, ": expected a contiguous float32/float64 (..., H, W) grid `u`");
  const int64_t H = u.size(-2), W = u.size(-1);
  TORCH_CHECK(H > 0 && W > 0, "gddm_C::", op, ": grids must have H, W >= 1");
  return {u.numel() / (H * W), H, W};
}

inline void check_like(const at::Tensor& t, const at::Tensor& u, at::IntArrayRef shape, const char* op,
                       const char* arg) {
  TORCH_CHECK(t.is_contiguous() && t.scalar_type() == u.scalar_type() && t.device() == u.device() &&
                  t.sizes() == shape,
              "gddm_C::", op, ": `", arg, "` must be contiguous, of u's dtype and device, shape ", shape);
}

inline void check_index(const at::Tensor& t, const at::Tensor& u, int64_t n, const char* op, const char* arg) {
  TORCH_CHECK(t.is_contiguous() && t.scalar_type() == at::kLong && t.device() == u.device() && t.dim() == 1 &&
                  t.size(0) == n,
              "gddm_C::", op, ": `", arg, "` must be a contiguous int64 tensor of length ", n, " on u's device");
}

// An index tensor and the bound its values must stay below.
struct IndexBound {
  const at::Tensor& t;
  int64_t limit;
  const char* arg;
};

// Every value of every index tensor lies in [0, limit): a loop on the CPU; on a GPU one
// reduction and one synchronisation for all of them (the failure path then names the first
// offending tensor and its range).
inline void check_index_values(std::initializer_list<IndexBound> indices, const char* op) {
  bool in_range = true;
  if (indices.begin()->t.is_cpu()) {
    for (const IndexBound& index : indices) {
      const int64_t* p = index.t.const_data_ptr<int64_t>();
      for (int64_t n = 0; n < index.t.numel(); ++n) in_range &= p[n] >= 0 && p[n] < index.limit;
    }
  } else {
    at::Tensor outside;
    for (const IndexBound& index : indices) {
      at::Tensor bad = index.t.lt(0).logical_or(index.t.ge(index.limit)).any();
      outside = outside.defined() ? outside.logical_or(bad) : bad;
    }
    in_range = !outside.item<bool>();
  }
  if (in_range) return;
  for (const IndexBound& index : indices) {
    if (index.t.numel() == 0) continue;
    const int64_t lo = index.t.min().item<int64_t>(), hi = index.t.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < index.limit, "gddm_C::", op, ": `", index.arg, "` must hold indices in [0, ",
                index.limit, "), got values in [", lo, ", ", hi, "]");
  }
}

}  // namespace detail

inline GridSize check_smooth(const at::Tensor& u, const at::Tensor& f, const at::Tensor& wy, const at::Tensor& wx,
                             int64_t color) {
  const GridSize g = detail::check_grid(u, "mg_smooth_");
  detail::check_like(f, u, u.sizes(), "mg_smooth_", "f");
  detail::check_like(wy, u, {g.H}, "mg_smooth_", "wy");
  detail::check_like(wx, u, {g.W}, "mg_smooth_", "wx");
  TORCH_CHECK(color == 0 || color == 1, "gddm_C::mg_smooth_: color must be 0 (red) or 1 (black)");
  return g;
}

// Returns the fine grid's size; the coarse output has shape coarse_shape(u).
inline GridSize check_residual_restrict(const at::Tensor& u, const at::Tensor& f, const at::Tensor& wy,
                                        const at::Tensor& wx) {
  const GridSize g = detail::check_grid(u, "mg_residual_restrict");
  detail::check_like(f, u, u.sizes(), "mg_residual_restrict", "f");
  detail::check_like(wy, u, {g.H}, "mg_residual_restrict", "wy");
  detail::check_like(wx, u, {g.W}, "mg_residual_restrict", "wx");
  return g;
}

inline std::vector<int64_t> coarse_shape(const at::Tensor& u) {
  std::vector<int64_t> shape(u.sizes().begin(), u.sizes().end());
  shape[shape.size() - 2] = (shape[shape.size() - 2] + 1) / 2;
  shape[shape.size() - 1] = (shape[shape.size() - 1] + 1) / 2;
  return shape;
}

inline GridSize check_prolong_correct(const at::Tensor& u, const at::Tensor& e, const at::Tensor& lo_y,
                                      const at::Tensor& hi_y, const at::Tensor& w_y, const at::Tensor& lo_x,
                                      const at::Tensor& hi_x, const at::Tensor& w_x) {
  const char* op = "mg_prolong_correct_";
  const GridSize g = detail::check_grid(u, op);
  TORCH_CHECK(e.dim() == u.dim() && e.sizes().slice(0, u.dim() - 2) == u.sizes().slice(0, u.dim() - 2),
              "gddm_C::", op, ": `e` must have u's leading dims");
  detail::check_like(e, u, e.sizes(), op, "e");
  detail::check_index(lo_y, u, g.H, op, "lo_y");
  detail::check_index(hi_y, u, g.H, op, "hi_y");
  detail::check_index(lo_x, u, g.W, op, "lo_x");
  detail::check_index(hi_x, u, g.W, op, "hi_x");
  detail::check_like(w_y, u, {g.H}, op, "w_y");
  detail::check_like(w_x, u, {g.W}, op, "w_x");
  const int64_t Hc = e.size(-2), Wc = e.size(-1);  // the coarse grid the indices point into
  detail::check_index_values({{lo_y, Hc, "lo_y"}, {hi_y, Hc, "hi_y"}, {lo_x, Wc, "lo_x"}, {hi_x, Wc, "hi_x"}}, op);
  return g;
}

}  // namespace gddm
