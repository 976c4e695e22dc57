// csrc/cuda/poisson_kernels.cu compiled as C++ for the CUDA emulation module (see module.cpp).
#include "../cuda/poisson_kernels.cu"
