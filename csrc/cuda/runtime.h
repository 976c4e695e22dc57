// cudaStream_t, dim3 and the other CUDA runtime types of the kernel headers: <cuda_runtime.h>,
// or their host definitions in the emulation build (emulation.h).
#pragma once

#if defined(GDDM_CUDA_EMULATION)
#include "emulation.h"
#else
#include <cuda_runtime.h>
#endif
