// Schemas of the compiled kernels, loaded as the Python module gddm_kernels._C.
//
// These are internal ops on a fixed layout: images (B0, B1, H, W) and gradient fields
// (B0, B1, 2, H, W) with any strides; outputs are contiguous. The public ops torch.ops.gddm.*
// (gddm_kernels/ops) validate the input, fold the leading dims into (B0, B1) and call these.
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(gddm_C, m) {
  m.def("gradient(Tensor x, float scale) -> Tensor");
  m.def("divergence(Tensor g, float scale) -> Tensor");
  m.def("laplacian(Tensor x, float scale) -> Tensor");
}

// An empty Python module, so that `import gddm_kernels._C` loads the library and runs the
// registrations above.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
