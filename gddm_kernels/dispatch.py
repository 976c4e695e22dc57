"""Backends and how one is chosen.

Each backend states what it supports as data (device types, dtypes) and why it cannot run a
given input (`not_supported_reasons`). The backend of a call comes from, in this order:
the op's `backend=` argument, the innermost `use_backend(...)` block, the environment variable
GDDM_BACKEND, or the automatic choice: the first backend of AUTO_PRIORITY for the tensor's
device type that supports the input. An explicitly requested backend that cannot run raises
with its reasons; the automatic choice falls back to the reference, warning once when that is
because a compiled part is missing.

Priority: on CUDA the compiled CUDA kernels come first, then Triton (both are one-pass
memory-bound kernels; the order is to be confirmed by the H100 measurements of issue 6). On
CPU the C++ kernels come first; Triton on CPU is the interpreter, for tests only, never auto.
"""

import contextlib
import functools
import importlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

import torch
from torch import Tensor

from . import _extension
from ._validation import FLOATING_DTYPES

ENV_VAR = "GDDM_BACKEND"
AUTO = "auto"
TRITON_INTERPRET_VAR = "TRITON_INTERPRET"
LOW_PRECISION_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_TRITON_IMAGE_ELEMENTS = 2**31 - 1  # in-image offsets are int32 in the Triton kernels


def _triton_import_error() -> str | None:
    try:
        importlib.import_module("triton")
    except ImportError as error:
        return f"triton is not installed ({error})"
    return None


def _triton_interpreting() -> bool:
    return os.environ.get(TRITON_INTERPRET_VAR, "0") == "1"


@dataclass(frozen=True)
class Backend:
    """One implementation of every op, and what it supports."""

    name: str
    module_name: str  # module with gradient/divergence/laplacian of the reference's signatures
    device_types: tuple[str, ...] | None  # None: every device
    dtypes: tuple[torch.dtype, ...]
    description: str

    @functools.cache
    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run at all here (None if it can)."""
        if self.name in ("cpu", "cuda") and _extension.LOAD_ERROR is not None:
            return f"gddm_kernels._C is not loaded ({_extension.LOAD_ERROR})"
        if self.name == "cuda" and not _extension.has_kernel("gradient", "CUDA"):
            return "gddm_kernels._C was built without CUDA kernels"
        if self.name == "triton":
            return _triton_import_error()
        return None

    def runs_on(self, device_type: str) -> bool:
        if self.name == "triton" and device_type == "cpu":
            return _triton_interpreting()
        return self.device_types is None or device_type in self.device_types

    def not_supported_reasons(self, x: Tensor) -> list[str]:
        """Every reason this backend cannot run on `x` (empty if it can)."""
        reasons = []
        unavailable = self.unavailable_reason()
        if unavailable:
            reasons.append(unavailable)
        if not self.runs_on(x.device.type):
            hint = f" (set {TRITON_INTERPRET_VAR}=1 before importing triton)" if self.name == "triton" else ""
            reasons.append(f"does not run on {x.device.type} tensors{hint}")
        if x.dtype not in self.dtypes:
            reasons.append(f"does not support {x.dtype} (supports {', '.join(map(str, self.dtypes))})")
        if self.name == "triton" and x.shape[-2:].numel() > MAX_TRITON_IMAGE_ELEMENTS:
            reasons.append(f"images of over {MAX_TRITON_IMAGE_ELEMENTS} elements")
        return reasons

    @functools.cached_property
    def module(self) -> ModuleType:
        """The implementation module, imported on first use (select runs on every op call)."""
        return importlib.import_module(self.module_name, __package__)


BACKENDS = {
    b.name: b
    for b in (
        Backend("reference", ".reference", None, FLOATING_DTYPES, "pure PyTorch, the specification"),
        Backend("cpu", "._compiled", ("cpu",), FLOATING_DTYPES, "C++ kernels (gddm_kernels._C)"),
        Backend("cuda", "._compiled", ("cuda",), FLOATING_DTYPES, "CUDA kernels (gddm_kernels._C)"),
        Backend("triton", ".triton", ("cuda",), LOW_PRECISION_DTYPES, "Triton kernels"),
    )
}
AUTO_PRIORITY = {"cuda": ("cuda", "triton", "reference"), "cpu": ("cpu", "reference")}

_override_stack: list[str] = []
_warned_fallback = False


def backends(device: str | torch.device | None = None) -> list[str]:
    """Names of the backends usable here; with `device`, those that run on that device type."""
    usable = [b for b in BACKENDS.values() if b.unavailable_reason() is None]
    if device is not None:
        device_type = torch.device(device).type
        usable = [b for b in usable if b.runs_on(device_type)]
    return [b.name for b in usable]


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run every gddm op inside the block on backend `name` (unless a call names its own)."""
    _check_name(name)
    _override_stack.append(name)
    try:
        yield
    finally:
        _override_stack.pop()


def _check_name(name: str) -> None:
    if name != AUTO and name not in BACKENDS:
        raise ValueError(f"gddm: unknown backend {name!r}; choose one of {[AUTO, *BACKENDS]}")


def requested_backend(backend: str) -> str:
    """The backend name in force for a call whose argument is `backend` ("auto" = none given)."""
    _check_name(backend)
    if backend != AUTO:
        return backend
    if _override_stack:
        return _override_stack[-1]
    from_env = os.environ.get(ENV_VAR, AUTO)
    if from_env != AUTO and from_env not in BACKENDS:
        raise ValueError(f"gddm: {ENV_VAR}={from_env!r} is not a backend; choose one of {[AUTO, *BACKENDS]}")
    return from_env


def select(op: str, backend: str, x: Tensor) -> ModuleType:
    """The implementation module that runs `op` on `x` for the call's `backend` argument."""
    global _warned_fallback
    name = requested_backend(backend)
    if name != AUTO:
        reasons = BACKENDS[name].not_supported_reasons(x)
        if reasons:
            raise RuntimeError(
                f"gddm.{op}: backend {name!r} cannot run on this input ({x.device.type}, {x.dtype}): "
                + "; ".join(reasons)
            )
        return BACKENDS[name].module
    skipped = []
    for candidate in AUTO_PRIORITY.get(x.device.type, ("reference",)):
        reasons = BACKENDS[candidate].not_supported_reasons(x)
        if not reasons:
            if candidate == "reference" and skipped and not _warned_fallback:
                _warned_fallback = True
                warnings.warn(
                    f"gddm.{op}: no fast backend for {x.device.type} {x.dtype} input, using the "
                    f"reference ({'; '.join(skipped)})",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return BACKENDS[candidate].module
        skipped.append(f"{candidate}: {', '.join(reasons)}")
    raise RuntimeError(f"gddm.{op}: no backend can run on this input: {'; '.join(skipped)}")
