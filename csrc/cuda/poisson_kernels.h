// Launchers of the CUDA kernels of the cosine-transform Poisson solve (poisson_kernels.cu).
#pragma once

#include "runtime.h"

#include "../poisson.h"

namespace gddm::cuda {

// out (batch, H, W) contiguous acc_t = scale * x (or scale * divergence(x) when field) in
// Makhoul's order. scalar_t: float, double, c10::Half, c10::BFloat16; acc_t: float or double.
template <typename scalar_t, typename acc_t>
void launch_dct_reorder(const scalar_t* x, acc_t* out, const ImageBatch& b, bool field, double scale,
                        cudaStream_t stream);

// In place on the contiguous half spectrum (batch, H, W/2+1) of rfft2.
template <typename acc_t>
void launch_spectral_solve(Cplx<acc_t>* spectrum, int64_t batch, int64_t H, int64_t W, double mean,
                           cudaStream_t stream);

// out (batch, H, W) contiguous in natural order from v in Makhoul's order.
template <typename acc_t, typename scalar_t>
void launch_dct_unreorder(const acc_t* v, scalar_t* out, int64_t batch, int64_t H, int64_t W,
                          cudaStream_t stream);

}  // namespace gddm::cuda
