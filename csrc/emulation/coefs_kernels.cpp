// csrc/cuda/coefs_kernels.cu compiled as C++ for the CUDA emulation module (see module.cpp).
#include "../cuda/coefs_kernels.cu"
