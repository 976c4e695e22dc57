// The CUDA emulation module, for tests only (never built by setup.py): the CUDA kernels of
// csrc/cuda/*.cu and their host launchers (csrc/cuda/*_cuda.cpp), compiled as C++ with
// GDDM_CUDA_EMULATION so that each launch runs as a host loop over its real launch grid
// (csrc/cuda/emulation.h). The ops are gddm_C's CUDA ops under the name gddm_emu, on CPU
// tensors, plus check_launch (the emulator's launch-limit check on a given configuration).
// Built by tests/cuda_emulation.py.
#include <Python.h>
#include <torch/library.h>

#include "../cuda/emulation.h"
#include "../schemas.h"

namespace {

void check_launch(c10::IntArrayRef grid, c10::IntArrayRef block) {
  TORCH_CHECK(grid.size() == 3 && block.size() == 3, "gddm_emu::check_launch: give three grid and block dims");
  gddm::cuda::emulation::check_launch(dim3(unsigned(grid[0]), unsigned(grid[1]), unsigned(grid[2])),
                                      dim3(unsigned(block[0]), unsigned(block[1]), unsigned(block[2])));
}

}  // namespace

TORCH_LIBRARY(gddm_emu, m) {
  gddm::define_schemas(m);
  m.def("check_launch(int[] grid, int[] block) -> ()", &check_launch);
}

extern "C" PyObject* PyInit_gddm_emu(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "gddm_emu", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
