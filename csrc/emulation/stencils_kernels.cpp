// csrc/cuda/stencils_kernels.cu compiled as C++ for the CUDA emulation module (see module.cpp).
#include "../cuda/stencils_kernels.cu"
