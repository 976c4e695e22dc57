// Schemas of the compiled kernels (the library gddm_C, csrc/ops.cpp; the CUDA emulation
// module of the tests, csrc/emulation, defines the same ops as gddm_emu).
//
// These are the kernels, on a fixed layout: images (B0, B1, H, W) and gradient fields
// (B0, B1, 2, H, W) with any strides; outputs are contiguous. The public ops of the compiled
// backends (csrc/public_ops.cpp, csrc/sampler_ops.cpp: any layout, checks, autograd) and the
// multi-backend ops torch.ops.gddm.* (gddm_kernels/ops) fold the leading dims into (B0, B1)
// and call these. dct_reorder, spectral_solve_, dct_unreorder, spectral_solve_columns_ and
// spectrum_rows are the stages of dct_solve, registered as debugging ops so that tests check
// each pass on its own.
#pragma once

#include <torch/library.h>

namespace gddm {

inline void define_schemas(torch::Library& m) {
  m.def("gradient(Tensor x, float scale) -> Tensor");
  m.def("divergence(Tensor g, float scale) -> Tensor");
  m.def("laplacian(Tensor x, float scale) -> Tensor");
  // Cosine-transform Poisson solve around torch.fft (csrc/poisson.h), CUDA:
  //   dct_reorder: scale * x, or scale * divergence(g) when `field`, reordered for Makhoul's
  //                DCT, in the arithmetic dtype (float32, float64 for float64), (B0, B1, H, W);
  //   spectral_solve_: rfft2 of that (batch, H, W//2+1), in place -> the spectrum whose irfft2
  //                is the reordered solution with the given mean;
  //   dct_unreorder: back to the natural order, in `dtype`.
  m.def("dct_reorder(Tensor x, bool field, float scale) -> Tensor");
  m.def("spectral_solve_(Tensor(a!) spectrum, int H, int W, float mean) -> ()");
  m.def("dct_unreorder(Tensor v, ScalarType dtype) -> Tensor");
  // The whole solve as one op: dct_solve(x, field, scale, mean) = dct_unreorder(irfft2(
  // spectral_solve_(rfft2(dct_reorder(x, field, scale)))), x.dtype). CUDA: exactly that, around
  // cuFFT. CPU: the FFTs are called from C++ over cache-sized chunks, on the transposed
  // spectrum (batch, W//2+1, H), the layout the CPU FFT leaves fft(rfft(v), dim=-2) in:
  // spectral_solve_columns_ is spectral_solve_ on that layout, spectrum_rows transposes it back;
  // small batches of small images (dct_direct_pays, csrc/poisson.h) take direct cosine sums in
  // float64 instead. dct_solve_fft and dct_solve_direct (CPU) force one path at every size, for
  // the tests and the crossover benchmark.
  m.def("dct_solve(Tensor x, bool field, float scale, float mean) -> Tensor");
  m.def("dct_solve_fft(Tensor x, bool field, float scale, float mean) -> Tensor");
  m.def("dct_solve_direct(Tensor x, bool field, float scale, float mean) -> Tensor");
  m.def("spectral_solve_columns_(Tensor(a!) spectrum_t, int H, int W, float mean) -> ()");
  m.def("spectrum_rows(Tensor spectrum_t) -> Tensor");
  // Geometric multigrid stages (csrc/multigrid.h) on contiguous float32/float64 (..., H, W)
  // grids with cell widths wy (H,), wx (W,):
  //   mg_smooth_: one red (color 0, (i+j) even) or black (1) Gauss-Seidel half sweep, in place;
  //   mg_residual_restrict: f - L u summed over 2x2 children -> (..., ceil(H/2), ceil(W/2));
  //   mg_prolong_correct_: u += linear interpolation of the coarse e (lo/hi/w per axis).
  m.def("mg_smooth_(Tensor(a!) u, Tensor f, Tensor wy, Tensor wx, int color) -> ()");
  m.def("mg_residual_restrict(Tensor u, Tensor f, Tensor wy, Tensor wx) -> Tensor");
  m.def("mg_prolong_correct_(Tensor(a!) u, Tensor e, Tensor lo_y, Tensor hi_y, Tensor w_y, Tensor lo_x, "
        "Tensor hi_x, Tensor w_x) -> ()");
  // Fused diffusion kernels (csrc/diffusion.h) on contiguous tensors whose dim 0 is the sample:
  //   add_noise: x0 (B, ..., H, W), coefs (B, 2) = (sqrt(g), noise scale) in the arithmetic dtype,
  //     domain 0/1/2 = image/gradient/laplacian, exact noise model or not; the noise is `noise`
  //     or generated from `seed` (an int64 (1,) tensor on the device); returns (x_t, noise
  //     written when write_noise and generated, else an empty tensor);
  //   diffusion_step: the generic affine step with per-sample coefs (B, 11); returns (x_prev,
  //     x0 when write_x0 else an empty tensor).
  m.def("add_noise(Tensor x0, Tensor coefs, int domain, bool exact, Tensor? noise, Tensor? seed, "
        "bool write_noise) -> (Tensor, Tensor)");
  m.def("diffusion_step(Tensor x, Tensor m, Tensor? m_uncond, Tensor? m2, Tensor? m2_uncond, Tensor? prev_x0, "
        "Tensor coefs, float guidance, float clip, Tensor? noise, Tensor? seed, bool write_x0) -> (Tensor, Tensor)");
  // Per-sample coefficients of the fused diffusion kernels (csrc/step_coefs.h), float64:
  //   step_coefs: (B, 11) for a sampler (0 ddpm, 1 ddim, 2 dpm, 3 attenuation) from the gamma
  //     table (T,) and int64 timesteps (floating times and an empty table for attenuation);
  //   noise_coefs: (B, 2) [sqrt(g), k sqrt(1-g)] (int64 t) or [1 - t, k sqrt(t)] (floating t).
  m.def("step_coefs(Tensor gammas, Tensor t, Tensor t_prev, Tensor? t_last, int sampler, int prediction, "
        "float eta, float k, bool clip) -> Tensor");
  m.def("noise_coefs(Tensor gammas, Tensor t, float k) -> Tensor");
}

}  // namespace gddm
