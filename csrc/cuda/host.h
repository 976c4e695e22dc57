// What the CUDA op registrations (*_cuda.cpp) need from the CUDA runtime, so that the same
// files also build into the emulation module (GDDM_CUDA_EMULATION, csrc/emulation), where the
// kernels run on CPU tensors:
//   GDDM_CUDA_LIBRARY, GDDM_CUDA_KEY   the library and dispatch key the ops register at
//                                      (gddm_C at CUDA; gddm_emu at CPU when emulated)
//   DeviceGuard, current_stream()      the device guard and the stream kernels launch on
//   GDDM_CHECK_LAUNCH()                raises the launch's error, if any
#pragma once

#include "runtime.h"

#if defined(GDDM_CUDA_EMULATION)

#include <c10/core/Device.h>

#define GDDM_CUDA_LIBRARY gddm_emu
#define GDDM_CUDA_KEY CPU
#define GDDM_CHECK_LAUNCH()  // the emulator throws on an invalid launch

namespace gddm::cuda {
struct DeviceGuard {
  explicit DeviceGuard(c10::Device) {}
};
inline cudaStream_t current_stream() { return nullptr; }
}  // namespace gddm::cuda

#else

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#define GDDM_CUDA_LIBRARY gddm_C
#define GDDM_CUDA_KEY CUDA
#define GDDM_CHECK_LAUNCH() C10_CUDA_KERNEL_LAUNCH_CHECK()

namespace gddm::cuda {
using DeviceGuard = c10::cuda::CUDAGuard;
inline cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream(); }
}  // namespace gddm::cuda

#endif
