"""Loads the compiled library gddm_kernels._C (C++ CPU kernels, and CUDA kernels when built).

The package imports without it: `LOAD_ERROR` then says why, one warning is issued, and the
automatic backend choice falls back to the pure-PyTorch reference.
"""

import warnings

import torch

try:
    from . import _C  # noqa: F401  (registers torch.ops.gddm_C.*)

    LOAD_ERROR: str | None = None
except ImportError as error:  # not built, or built against another torch
    LOAD_ERROR = f"{type(error).__name__}: {error}"
    warnings.warn(
        f"gddm_kernels: the compiled kernels (gddm_kernels._C) could not be loaded ({LOAD_ERROR}); "
        "only the 'reference' and 'triton' backends are available. Build them with "
        "`pip install --no-build-isolation -e .`.",
        RuntimeWarning,
        stacklevel=2,
    )


def has_kernel(op: str, dispatch_key: str) -> bool:
    """Whether torch.ops.gddm_C.<op> has a compiled kernel for `dispatch_key` ("CPU", "CUDA")."""
    if LOAD_ERROR is not None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"gddm_C::{op}", dispatch_key)
