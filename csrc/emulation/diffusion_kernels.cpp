// csrc/cuda/diffusion_kernels.cu compiled as C++ for the CUDA emulation module (see module.cpp).
#include "../cuda/diffusion_kernels.cu"
