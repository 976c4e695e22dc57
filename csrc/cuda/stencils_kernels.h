// Launchers of the CUDA stencil kernels (defined in stencils_kernels.cu, which includes no torch
// headers so that nvcc compiles it quickly). scalar_t: float, double, c10::Half, c10::BFloat16.
#pragma once

#include "runtime.h"

#include "../stencils.h"

namespace gddm::cuda {

// out: contiguous (batch, 2, H, W).
template <typename scalar_t>
void launch_gradient(const scalar_t* x, scalar_t* out, const ImageBatch& b, double scale,
                     cudaStream_t stream);

// g: (batch, 2, H, W) with b's strides; out: contiguous (batch, H, W).
template <typename scalar_t>
void launch_divergence(const scalar_t* g, scalar_t* out, const ImageBatch& b, double scale,
                       cudaStream_t stream);

// out: contiguous (batch, H, W).
template <typename scalar_t>
void launch_laplacian(const scalar_t* x, scalar_t* out, const ImageBatch& b, double scale,
                      cudaStream_t stream);

}  // namespace gddm::cuda
