// The compiled kernels' library gddm_C (schemas in schemas.h), loaded as the Python module
// gddm_kernels._C.
#include <Python.h>
#include <torch/library.h>

#include "poisson.h"
#include "schemas.h"

TORCH_LIBRARY(gddm_C, m) { gddm::define_schemas(m); }

// A Python module holding only constants (DCT_DIRECT_MAX_WORK), so that `import gddm_kernels._C`
// loads the library and runs the registrations above.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module != nullptr && PyModule_AddIntConstant(module, "DCT_DIRECT_MAX_WORK", gddm::kDctDirectMaxWork) != 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
