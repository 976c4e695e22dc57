"""The fast backends' kernels behind one written-down interface (protocol.py), and the
op-level implementation every fast backend shares (fast.py): the drivers of _spectral.py and
_multigrid.py calling a backend's named stage functions.

    cpu.py, cuda.py   gddm_kernels._C (C++ kernels on CPU tensors, CUDA kernels on CUDA ones)
    ../triton/        Triton kernels
The `reference` backend is the specification itself (gddm_kernels.reference)."""
