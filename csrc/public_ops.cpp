// The public ops of the compiled backends (cpu and cuda) registered in C++: any (..., H, W)
// layout, the op layer's argument checks, autograd, and nothing in Python between the caller
// and the kernel. gddm_kernels' public functions call them whenever the compiled backend of
// the input's device is the one in force (dispatch.compiled_fast_path); the other backends,
// and torch.compile, go through the Python ops torch.ops.gddm.* (gddm_kernels/ops), whose
// semantics these ops share (tests/test_public_ops.py compares the two).
//
//   gradient_nd(x, scale), divergence_nd(g, scale), laplacian_nd(x, scale)
//   poisson_solve_nd(f, mean), reconstruct_nd(g, mean): the DCT solve, gddm_C::dct_solve (on
//     CPU tensors small images by direct cosine sums, larger ones by FFTs).
// Backward passes are these ops again: gradient and divergence are negative adjoints, the
// Laplacian and the solve are self-adjoint, reconstruct's adjoint is -1/4 gradient(solve(.)).
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>
#include <torch/library.h>

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
using SolveOp = at::Tensor(const at::Tensor&, double);
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

at::Tensor poisson_solve_impl(const at::Tensor& f, double mean) {
  check_image(f, "poisson_solve", "f");
  if (f.numel() == 0) return at::empty(f.sizes(), f.options());
  return dct_solve(fold_batch(f, 2), false, 1.0, mean).view(f.sizes());
}

at::Tensor reconstruct_impl(const at::Tensor& g, double mean) {
  check_field(g, "reconstruct", "g");
  const std::vector<int64_t> out_shape = image_shape_of(g);
  if (g.numel() == 0) return at::empty(out_shape, g.options());
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

// A solve op (poisson_solve_nd or reconstruct_nd). Backward: the solve is self-adjoint, and
// reconstruct(g) = solve(0.25 divergence(g)) has the adjoint -0.25 gradient(solve(.)).
template <const char* kName>
struct SolveFunction : public torch::autograd::Function<SolveFunction<kName>> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, double mean) {
    const at::AutoDispatchBelowADInplaceOrView guard;
    return op<kName, SolveOp>().call(x, mean);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor solved = op<kPoissonSolve, SolveOp>().call(grads[0], 0.0);
    if (kName == kPoissonSolve) return {solved, at::Tensor()};
    return {op<kGradient, StencilOp>().call(solved, -kReconstructScale), at::Tensor()};
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
at::Tensor poisson_solve_autograd(const at::Tensor& f, double mean) { return SolveFunction<kPoissonSolve>::apply(f, mean); }
at::Tensor reconstruct_autograd(const at::Tensor& g, double mean) { return SolveFunction<kReconstruct>::apply(g, mean); }

}  // namespace

TORCH_LIBRARY_FRAGMENT(gddm_C, m) {
  m.def("gradient_nd(Tensor x, float scale=1.0) -> Tensor");
  m.def("divergence_nd(Tensor g, float scale=1.0) -> Tensor");
  m.def("laplacian_nd(Tensor x, float scale=1.0) -> Tensor");
  m.def("poisson_solve_nd(Tensor f, float mean=0.0) -> Tensor");
  m.def("reconstruct_nd(Tensor g, float mean=0.0) -> Tensor");
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
