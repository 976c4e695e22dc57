// The diffusion ops of the compiled backends with the coefficients formed in C++: a forward
// process or a reverse step takes the schedule's gamma table and the per-sample timesteps, the
// per-sample coefficients come from gddm_C::noise_coefs / step_coefs (csrc/step_coefs.h; one
// thread per sample on CUDA), and the fused kernel follows. No host tensor ops and no host sync
// between the caller and the kernels; the seed of the in-kernel noise is drawn from the
// caller's generator, exactly as torch.randint would draw it (csrc/seed.h). This file holds the
// schemas, the composite form for the devices without their own (the CPU has one in
// csrc/cpu/diffusion_cpu.cpp, which forms the coefficients in a host buffer) and the autograd
// of sampler_add_noise.
//
//   step_coefs(gammas, t, t_prev, t_last?, sampler, prediction, eta, k, clip) -> (B, 11) float64
//   noise_coefs(gammas, t, k) -> (B, 2) float64: [sqrt(g), k sqrt(1 - g)] for integer
//       timesteps of a schedule, [1 - t, k sqrt(t)] for the attenuation process's floating t
//   sampler_step(x, m, ..., gammas, t, t_prev, t_last?, sampler, prediction, eta, k, guidance,
//       clip, noise?, generator?, draw_noise, write_x0) -> (x_prev, x0 or empty)
//   sampler_add_noise(x0, gammas, t, domain, exact, k, noise?, generator?, write_noise)
//       -> (x_t, generated noise or empty); differentiable in x0.
// gddm_kernels/diffusion.py calls them when the compiled backend is in force.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <tuple>

#include "sampler_checks.h"
#include "seed.h"

namespace gddm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

template <typename Signature>
c10::TypedOperatorHandle<Signature> find(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

using OptTensor = c10::optional<at::Tensor>;
using StepCoefsOp = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&, int64_t,
                               int64_t, double, double, bool);
using NoiseCoefsOp = at::Tensor(const at::Tensor&, const at::Tensor&, double);
using StepOp = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const OptTensor&,
                                                  const OptTensor&, const OptTensor&, const OptTensor&,
                                                  const at::Tensor&, double, double, const OptTensor&,
                                                  const OptTensor&, bool);
using AddNoiseOp = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, int64_t, bool,
                                                      const OptTensor&, const OptTensor&, bool);
using SamplerAddNoiseOp = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                             int64_t, bool, double, const OptTensor&,
                                                             c10::optional<at::Generator>, bool);

at::ScalarType arithmetic_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

std::tuple<at::Tensor, at::Tensor> sampler_step_impl(
    const at::Tensor& x, const at::Tensor& m, const OptTensor& m_uncond, const OptTensor& m2,
    const OptTensor& m2_uncond, const OptTensor& prev_x0, const at::Tensor& gammas, const at::Tensor& t,
    const at::Tensor& t_prev, const OptTensor& t_last, int64_t sampler, int64_t prediction, double eta, double k,
    double guidance, double clip, const OptTensor& noise, c10::optional<at::Generator> generator, bool draw_noise,
    bool write_x0) {
  static const auto step_coefs = find<StepCoefsOp>("gddm_C::step_coefs");
  static const auto step = find<StepOp>("gddm_C::diffusion_step");
  check_sampler_step_tensors(sampler, x, m, m_uncond, m2, m2_uncond, prev_x0, t, t_prev, t_last, noise);
  const at::Tensor coefs = step_coefs.call(gammas, t, t_prev, t_last, sampler, prediction, eta, k, clip > 0)
                               .to(arithmetic_dtype(x.scalar_type()));
  const OptTensor seed = draw_seed(draw_noise, noise, std::move(generator), x);
  return step.call(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, guidance, clip, noise, seed, write_x0);
}

std::tuple<at::Tensor, at::Tensor> add_noise_with_coefs(const at::Tensor& x0, const at::Tensor& coefs, int64_t domain,
                                                        bool exact, const OptTensor& noise,
                                                        c10::optional<at::Generator> generator, bool write_noise) {
  static const auto add_noise = find<AddNoiseOp>("gddm_C::add_noise");
  const OptTensor seed = draw_seed(true, noise, std::move(generator), x0);
  return add_noise.call(x0, coefs, domain, exact, noise, seed, write_noise);
}

at::Tensor noise_coefs_for(const at::Tensor& x0, const at::Tensor& gammas, const at::Tensor& t, double k) {
  static const auto noise_coefs = find<NoiseCoefsOp>("gddm_C::noise_coefs");
  check_noise_add_times(x0, t);
  return noise_coefs.call(gammas, t, k).to(arithmetic_dtype(x0.scalar_type()));
}

std::tuple<at::Tensor, at::Tensor> sampler_add_noise_impl(const at::Tensor& x0, const at::Tensor& gammas,
                                                          const at::Tensor& t, int64_t domain, bool exact, double k,
                                                          const OptTensor& noise,
                                                          c10::optional<at::Generator> generator, bool write_noise) {
  return add_noise_with_coefs(x0, noise_coefs_for(x0, gammas, t, k), domain, exact, noise, std::move(generator),
                              write_noise);
}

// add_noise is linear in x0: the cotangent of x0 is a[b] D^T(grad) per sample, D^T the identity,
// -divergence or the Laplacian (csrc/public_ops.cpp's ops).
struct AddNoiseFunction : public torch::autograd::Function<AddNoiseFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x0, const at::Tensor& gammas,
                               const at::Tensor& t, int64_t domain, bool exact, double k, const OptTensor& noise,
                               c10::optional<at::Generator> generator, bool write_noise) {
    const at::AutoDispatchBelowADInplaceOrView guard;
    const at::Tensor coefs = noise_coefs_for(x0, gammas, t, k);
    ctx->save_for_backward({coefs});
    ctx->saved_data["domain"] = domain;
    auto [x_t, written] = add_noise_with_coefs(x0, coefs, domain, exact, noise, std::move(generator), write_noise);
    ctx->mark_non_differentiable({written});
    return {x_t, written};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto divergence = find<at::Tensor(const at::Tensor&, double)>("gddm_C::divergence_nd");
    static const auto laplacian = find<at::Tensor(const at::Tensor&, double)>("gddm_C::laplacian_nd");
    const at::Tensor coefs = ctx->get_saved_variables()[0];
    const int64_t domain = ctx->saved_data["domain"].toInt();
    at::Tensor back = grads[0];
    if (domain == 1) back = divergence.call(back, -1.0);
    if (domain == 2) back = laplacian.call(back, 1.0);
    std::vector<int64_t> per_sample(back.dim(), 1);
    per_sample[0] = -1;
    const at::Tensor a = coefs.select(1, 0).to(back.scalar_type()).view(per_sample);
    return {a * back, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> sampler_add_noise_autograd(const at::Tensor& x0, const at::Tensor& gammas,
                                                              const at::Tensor& t, int64_t domain, bool exact,
                                                              double k, const OptTensor& noise,
                                                              c10::optional<at::Generator> generator,
                                                              bool write_noise) {
  if (!(x0.requires_grad() && at::GradMode::is_enabled())) {  // no graph to record: the device's kernel
    static const auto op = find<SamplerAddNoiseOp>("gddm_C::sampler_add_noise");
    const at::AutoDispatchBelowADInplaceOrView guard;
    return op.call(x0, gammas, t, domain, exact, k, noise, std::move(generator), write_noise);
  }
  variable_list out = AddNoiseFunction::apply(x0, gammas, t, domain, exact, k, noise, std::move(generator),
                                              write_noise);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gddm_C, m) {
  m.def("sampler_step(Tensor x, Tensor m, Tensor? m_uncond, Tensor? m2, Tensor? m2_uncond, Tensor? prev_x0, "
        "Tensor gammas, Tensor t, Tensor t_prev, Tensor? t_last, int sampler, int prediction, float eta, float k, "
        "float guidance, float clip, Tensor? noise, Generator? generator, bool draw_noise, bool write_x0) "
        "-> (Tensor, Tensor)");
  m.def("sampler_add_noise(Tensor x0, Tensor gammas, Tensor t, int domain, bool exact, float k, Tensor? noise, "
        "Generator? generator, bool write_noise) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(gddm_C, CompositeExplicitAutograd, m) {
  m.impl("sampler_step", &sampler_step_impl);
  m.impl("sampler_add_noise", &sampler_add_noise_impl);
}

TORCH_LIBRARY_IMPL(gddm_C, Autograd, m) { m.impl("sampler_add_noise", &sampler_add_noise_autograd); }

}  // namespace gddm
