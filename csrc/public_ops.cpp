// The public ops of the compiled backends (cpu and cuda) registered in C++: any (..., H, W)
// layout, the op layer's argument checks, autograd, and nothing in Python between the caller
// and the kernel. gddm_kernels' public functions call them whenever the compiled backend of
// the input's device is the one in force (dispatch.compiled_fast_path); the other backends,
// and torch.compile, go through the Python ops torch.ops.gddm.* (gddm_kernels/ops), whose
// semantics these ops share (tests/test_public_ops.py compares the two).
//
//   gradient_nd(x, scale), divergence_nd(g, scale), laplacian_nd(x, scale)
//   poisson_solve_nd(f, mean, matmul_max_size), reconstruct_nd(g, mean, matmul_max_size):
//     the DCT solve; images with max(H, W) <= matmul_max_size (the backend's measured
//     crossover) by float64 cosine-matrix products, larger ones by gddm_C::dct_solve.
// Backward passes are these ops again: gradient and divergence are negative adjoints, the
// Laplacian and the solve are self-adjoint, reconstruct's adjoint is -1/4 gradient(solve(.)).
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cmath>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "fold_batch.h"

namespace gddm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr double kReconstructScale = 0.25;  // reconstruct(g) = poisson_solve(0.25 divergence(g))

// ---- checks (the messages of gddm_kernels/_validation.py) -----------------------------------

void check_floating(const at::Tensor& x, const char* op, const char* arg) {
  const auto t = x.scalar_type();
  TORCH_CHECK_TYPE(t == at::kHalf || t == at::kBFloat16 || t == at::kFloat || t == at::kDouble, "gddm.", op,
                   ": argument `", arg, "` must have a floating dtype (float16, bfloat16, float32 or float64), got ",
                   t);
}

void check_image(const at::Tensor& x, const char* op, const char* arg) {
  check_floating(x, op, arg);
  TORCH_CHECK_VALUE(x.dim() >= 2, "gddm.", op, ": argument `", arg,
                    "` must have shape (..., H, W) with at least 2 dims, got shape ", x.sizes());
}

void check_field(const at::Tensor& g, const char* op, const char* arg) {
  check_floating(g, op, arg);
  TORCH_CHECK_VALUE(g.dim() >= 3 && g.size(-3) == 2, "gddm.", op, ": argument `", arg,
                    "` must be a gradient field of shape (..., 2, H, W) (component dim -3 of size 2), got shape ",
                    g.sizes());
}

std::vector<int64_t> field_shape_of(const at::Tensor& x) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.insert(shape.end() - 2, 2);
  return shape;
}

std::vector<int64_t> image_shape_of(const at::Tensor& g) {
  std::vector<int64_t> shape(g.sizes().begin(), g.sizes().end());
  shape.erase(shape.end() - 3);
  return shape;
}

// ---- op handles, looked up once --------------------------------------------------------------

using StencilOp = at::Tensor(const at::Tensor&, double);
using SolveOp = at::Tensor(const at::Tensor&, double, int64_t);
using DctSolveOp = at::Tensor(const at::Tensor&, bool, double, double);

template <const char* kName, typename Signature>
const c10::TypedOperatorHandle<Signature>& op() {
  static const auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(kName, "").typed<Signature>();
  return handle;
}

// The folded kernels of gddm_C (csrc/ops.cpp) and the public ops below.
constexpr char kGradientKernel[] = "gddm_C::gradient";
constexpr char kDivergenceKernel[] = "gddm_C::divergence";
constexpr char kLaplacianKernel[] = "gddm_C::laplacian";
constexpr char kDctSolveKernel[] = "gddm_C::dct_solve";
constexpr char kGradient[] = "gddm_C::gradient_nd";
constexpr char kDivergence[] = "gddm_C::divergence_nd";
constexpr char kLaplacian[] = "gddm_C::laplacian_nd";
constexpr char kPoissonSolve[] = "gddm_C::poisson_solve_nd";
constexpr char kReconstruct[] = "gddm_C::reconstruct_nd";

at::Tensor dct_solve(const at::Tensor& x, bool field, double scale, double mean) {
  return op<kDctSolveKernel, DctSolveOp>().call(x, field, scale, mean);
}

// ---- composite implementations (below autograd) ---------------------------------------------

at::Tensor gradient_impl(const at::Tensor& x, double scale) {
  check_image(x, "gradient", "x");
  if (x.numel() == 0) return at::empty(field_shape_of(x), x.options());
  return op<kGradientKernel, StencilOp>().call(fold_batch(x, 2), scale).view(field_shape_of(x));
}

at::Tensor divergence_impl(const at::Tensor& g, double scale) {
  check_field(g, "divergence", "g");
  if (g.numel() == 0) return at::empty(image_shape_of(g), g.options());
  return op<kDivergenceKernel, StencilOp>().call(fold_batch(g, 3), scale).view(image_shape_of(g));
}

at::Tensor laplacian_impl(const at::Tensor& x, double scale) {
  check_image(x, "laplacian", "x");
  if (x.numel() == 0) return at::empty(x.sizes(), x.options());
  return op<kLaplacianKernel, StencilOp>().call(fold_batch(x, 2), scale).view(x.sizes());
}

// The small-image solve: u = Ci_H ((C_H f C_W^T) / lambda) Ci_W^T in float64, with the DCT-II
// matrices C_N[k, m] = cos(pi k (2m + 1) / 2N), their inverses and 1 / lambda (0 for the
// constants), cached per (H, W, device) (gddm_kernels/_spectral.py has the same in Python).
struct SolveMatrices {
  at::Tensor c_h, c_w_t, ci_h, ci_w_t, inv_lambda;
};

at::Tensor cosine_matrix(int64_t n, const at::TensorOptions& f64) {
  const at::Tensor k = at::arange(n, f64).unsqueeze(1);
  const at::Tensor m = at::arange(n, f64).unsqueeze(0);
  return at::cos(k * (2 * m + 1) * (M_PI / (2.0 * n)));
}

at::Tensor inverse_cosine_matrix(int64_t n, const at::TensorOptions& f64) {
  at::Tensor weights = at::full({n}, 2.0 / n, f64);
  weights.select(0, 0).fill_(1.0 / n);
  return cosine_matrix(n, f64).t() * weights;
}

const SolveMatrices& solve_matrices(int64_t H, int64_t W, const at::Device& device) {
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, int, int>, SolveMatrices> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(H, W, static_cast<int>(device.type()), static_cast<int>(device.index()));
  auto found = cache.find(key);
  if (found != cache.end()) return found->second;
  const at::TensorOptions f64 = at::TensorOptions().dtype(at::kDouble).device(device);
  const at::Tensor p = at::arange(H, f64).unsqueeze(1), q = at::arange(W, f64).unsqueeze(0);
  at::Tensor inv_lambda = 1.0 / (0.25 * (2 * at::cos(p * (M_PI / H)) - 2 + 2 * at::cos(q * (M_PI / W)) - 2));
  inv_lambda.select(0, 0).select(0, 0).fill_(0.0);
  SolveMatrices matrices{cosine_matrix(H, f64), cosine_matrix(W, f64).t().contiguous(), inverse_cosine_matrix(H, f64),
                         inverse_cosine_matrix(W, f64).t().contiguous(), inv_lambda};
  return cache.emplace(key, std::move(matrices)).first->second;
}

at::Tensor matmul_solve(const at::Tensor& f, double mean) {
  const int64_t H = f.size(-2), W = f.size(-1);
  const SolveMatrices& m = solve_matrices(H, W, f.device());
  at::Tensor spectrum = at::matmul(at::matmul(m.c_h, f.to(at::kDouble)), m.c_w_t) * m.inv_lambda;
  // The constants' coefficient 0 * sum(f) + H W mean: a NaN or Inf in f makes it NaN, and the
  // inverse transform spreads it over the whole image.
  spectrum.select(-1, 0).select(-1, 0).add_(mean * H * W);
  return at::matmul(at::matmul(m.ci_h, spectrum), m.ci_w_t).to(f.scalar_type()).contiguous();
}

bool is_half(const at::Tensor& x) {
  return x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16;
}

at::Tensor poisson_solve_impl(const at::Tensor& f, double mean, int64_t matmul_max_size) {
  check_image(f, "poisson_solve", "f");
  if (f.numel() == 0) return at::empty(f.sizes(), f.options());
  if (std::max(f.size(-2), f.size(-1)) <= matmul_max_size) {
    return matmul_solve(is_half(f) ? f.to(at::kFloat) : f, mean).to(f.scalar_type());
  }
  return dct_solve(fold_batch(f, 2), false, 1.0, mean).view(f.sizes());
}

at::Tensor reconstruct_impl(const at::Tensor& g, double mean, int64_t matmul_max_size) {
  check_field(g, "reconstruct", "g");
  const std::vector<int64_t> out_shape = image_shape_of(g);
  if (g.numel() == 0) return at::empty(out_shape, g.options());
  if (std::max(g.size(-2), g.size(-1)) <= matmul_max_size) {
    const at::Tensor wide = is_half(g) ? g.to(at::kFloat) : g;
    return matmul_solve(divergence_impl(wide, kReconstructScale), mean).to(g.scalar_type());
  }
  return dct_solve(fold_batch(g, 3), true, kReconstructScale, mean).view(out_shape);
}

// ---- autograd ---------------------------------------------------------------------------------

// A linear stencil op whose backward is `kAdjoint` with scale * `kAdjointSign`.
template <const char* kName, const char* kAdjoint, int kAdjointSign>
struct StencilFunction : public torch::autograd::Function<StencilFunction<kName, kAdjoint, kAdjointSign>> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, double scale) {
    ctx->saved_data["scale"] = scale;
    const at::AutoDispatchBelowADInplaceOrView guard;
    return op<kName, StencilOp>().call(x, scale);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const double scale = ctx->saved_data["scale"].toDouble();
    return {op<kAdjoint, StencilOp>().call(grads[0], kAdjointSign * scale), at::Tensor()};
  }
};

struct PoissonSolveFunction : public torch::autograd::Function<PoissonSolveFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& f, double mean, int64_t matmul_max_size) {
    ctx->saved_data["matmul_max_size"] = matmul_max_size;
    const at::AutoDispatchBelowADInplaceOrView guard;
    return op<kPoissonSolve, SolveOp>().call(f, mean, matmul_max_size);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const int64_t matmul_max_size = ctx->saved_data["matmul_max_size"].toInt();
    return {op<kPoissonSolve, SolveOp>().call(grads[0], 0.0, matmul_max_size), at::Tensor(), at::Tensor()};
  }
};

struct ReconstructFunction : public torch::autograd::Function<ReconstructFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, double mean, int64_t matmul_max_size) {
    ctx->saved_data["matmul_max_size"] = matmul_max_size;
    const at::AutoDispatchBelowADInplaceOrView guard;
    return op<kReconstruct, SolveOp>().call(g, mean, matmul_max_size);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const int64_t matmul_max_size = ctx->saved_data["matmul_max_size"].toInt();
    const at::Tensor solved = op<kPoissonSolve, SolveOp>().call(grads[0], 0.0, matmul_max_size);
    return {op<kGradient, StencilOp>().call(solved, -kReconstructScale), at::Tensor(), at::Tensor()};
  }
};

at::Tensor gradient_autograd(const at::Tensor& x, double scale) {
  return StencilFunction<kGradient, kDivergence, -1>::apply(x, scale);
}
at::Tensor divergence_autograd(const at::Tensor& g, double scale) {
  return StencilFunction<kDivergence, kGradient, -1>::apply(g, scale);
}
at::Tensor laplacian_autograd(const at::Tensor& x, double scale) {
  return StencilFunction<kLaplacian, kLaplacian, 1>::apply(x, scale);
}
at::Tensor poisson_solve_autograd(const at::Tensor& f, double mean, int64_t matmul_max_size) {
  return PoissonSolveFunction::apply(f, mean, matmul_max_size);
}
at::Tensor reconstruct_autograd(const at::Tensor& g, double mean, int64_t matmul_max_size) {
  return ReconstructFunction::apply(g, mean, matmul_max_size);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gddm_C, m) {
  m.def("gradient_nd(Tensor x, float scale=1.0) -> Tensor");
  m.def("divergence_nd(Tensor g, float scale=1.0) -> Tensor");
  m.def("laplacian_nd(Tensor x, float scale=1.0) -> Tensor");
  m.def("poisson_solve_nd(Tensor f, float mean=0.0, int matmul_max_size=0) -> Tensor");
  m.def("reconstruct_nd(Tensor g, float mean=0.0, int matmul_max_size=0) -> Tensor");
}

TORCH_LIBRARY_IMPL(gddm_C, CompositeExplicitAutograd, m) {
  m.impl("gradient_nd", &gradient_impl);
  m.impl("divergence_nd", &divergence_impl);
  m.impl("laplacian_nd", &laplacian_impl);
  m.impl("poisson_solve_nd", &poisson_solve_impl);
  m.impl("reconstruct_nd", &reconstruct_impl);
}

TORCH_LIBRARY_IMPL(gddm_C, Autograd, m) {
  m.impl("gradient_nd", &gradient_autograd);
  m.impl("divergence_nd", &divergence_autograd);
  m.impl("laplacian_nd", &laplacian_autograd);
  m.impl("poisson_solve_nd", &poisson_solve_autograd);
  m.impl("reconstruct_nd", &reconstruct_autograd);
}

}  // namespace gddm
