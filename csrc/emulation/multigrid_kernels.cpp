// csrc/cuda/multigrid_kernels.cu compiled as C++ for the CUDA emulation module (see module.cpp).
#include "../cuda/multigrid_kernels.cu"
