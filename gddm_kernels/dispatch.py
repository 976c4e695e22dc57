"""Backends and how one is chosen.

Each backend states what it supports as data (device types, dtypes) and why it cannot run a
given input (`not_supported_reasons`). The backend of a call comes from, in this order:
the op's `backend=` argument, the innermost `use_backend(...)` block, the environment variable
GDDM_BACKEND, or the automatic choice: the first backend of AUTO_PRIORITY for the tensor's
device type that supports the input. An explicitly requested backend that cannot run raises
with its reasons; the automatic choice falls back to the reference, warning once when that is
because a compiled part is missing.

The `use_backend` choice is per thread and per asyncio task (a context variable): a block in
one thread never changes the backend of another.

Priority: on CUDA the compiled CUDA kernels come first, then Triton (both are one-pass
memory-bound kernels; no GPU has measured the order yet). On CPU the C++ kernels come first;
Triton on CPU is the interpreter, for tests only, never automatic.
"""

import contextlib
import contextvars
import functools
import importlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from . import _extension
from ._validation import FLOATING_DTYPES
from .backends.fast import FastBackend
from .backends.protocol import OpImplementation

ENV_VAR = "GDDM_BACKEND"
AUTO = "auto"
TRITON_INTERPRET_VAR = "TRITON_INTERPRET"
LOW_PRECISION_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _env_backend() -> str | None:
    """GDDM_BACKEND as set now (it is read on every call, so a change takes effect at once).
    Read from os.environ's own store: one dict lookup, where os.environ.get costs ~1 us, the
    cost of a whole kernel launch at small sizes."""
    raw = _ENVIRON_STORE.get(_ENV_KEY)
    return None if raw is None else os.environ.decodevalue(raw)


_ENVIRON_STORE, _ENV_KEY = os.environ._data, os.environ.encodekey(ENV_VAR)  # CPython's os._Environ


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
    """One implementation of every op, and what it supports, as data.

    kernels: module path (relative to the package) of the backend's kernels: an
        OpImplementation itself when `fast` is False (the reference), else the backend's
        `Kernels` (backends/protocol.py), composed by backends/fast.py's FastBackend.
    device_types: where it runs (None: every device); `interpreted_on_cpu`: also on CPU
        tensors when TRITON_INTERPRET=1 (for tests; never an automatic choice).
    needs: what must be importable: "compiled" (gddm_kernels._C), "compiled_cuda" (_C built
        with CUDA kernels), "triton".
    max_image_elements: the largest H * W its kernels index (None: no limit).
    cpp_ops: whether gddm_C registers its public ops in C++ (csrc/public_ops.cpp), which the
        public functions call directly when this backend is in force (`compiled_fast_path`).
    """

    name: str
    kernels: str
    device_types: tuple[str, ...] | None
    dtypes: tuple[torch.dtype, ...]
    description: str
    fast: bool = True
    needs: tuple[str, ...] = ()
    interpreted_on_cpu: bool = False
    max_image_elements: int | None = None
    cpp_ops: bool = False

    @functools.cache
    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run at all here (None if it can)."""
        if "compiled" in self.needs and _extension.LOAD_ERROR is not None:
            return f"gddm_kernels._C is not loaded ({_extension.LOAD_ERROR})"
        if "compiled_cuda" in self.needs and not _extension.has_kernel("gradient", "CUDA"):
            return "gddm_kernels._C was built without CUDA kernels"
        if "triton" in self.needs:
            return _triton_import_error()
        return None

    def runs_on(self, device_type: str) -> bool:
        if self.interpreted_on_cpu and device_type == "cpu":
            return _triton_interpreting()
        return self.device_types is None or device_type in self.device_types

    def not_supported_reasons(self, x: Tensor) -> list[str]:
        """Every reason this backend cannot run on `x` (empty if it can)."""
        reasons = []
        unavailable = self.unavailable_reason()
        if unavailable:
            reasons.append(unavailable)
        if not self.runs_on(x.device.type):
            hint = f" (set {TRITON_INTERPRET_VAR}=1 before importing triton)" if self.interpreted_on_cpu else ""
            reasons.append(f"does not run on {x.device.type} tensors{hint}")
        if x.dtype not in self.dtypes:
            reasons.append(f"does not support {x.dtype} (supports {', '.join(map(str, self.dtypes))})")
        if self.max_image_elements is not None and x.dim() >= 2 and x.shape[-2:].numel() > self.max_image_elements:
            reasons.append(f"images of over {self.max_image_elements} elements")
        return reasons

    @functools.cached_property
    def implementation(self) -> OpImplementation:
        """What the ops call, built on first use (select runs on every op call)."""
        module = importlib.import_module(self.kernels, __package__)
        if not self.fast:
            return module
        return FastBackend(module, float64=torch.float64 in self.dtypes)


BACKENDS = {
    b.name: b
    for b in (
        Backend("reference", ".reference", None, FLOATING_DTYPES, "pure PyTorch, the specification", fast=False),
        Backend("cpu", ".backends.compiled", ("cpu",), FLOATING_DTYPES, "C++ kernels (gddm_kernels._C)",
                needs=("compiled",), cpp_ops=True),
        Backend("cuda", ".backends.compiled", ("cuda",), FLOATING_DTYPES, "CUDA kernels (gddm_kernels._C)",
                needs=("compiled", "compiled_cuda"), cpp_ops=True),
        Backend("triton", ".triton", ("cuda",), LOW_PRECISION_DTYPES, "Triton kernels", needs=("triton",),
                interpreted_on_cpu=True, max_image_elements=2**31 - 1),
    )
}
AUTO_PRIORITY = {"cuda": ("cuda", "triton", "reference"), "cpu": ("cpu", "reference")}

_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("gddm_backend", default=None)
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
    token = _override.set(name)
    try:
        yield
    finally:
        _override.reset(token)


def _check_name(name: str) -> None:
    if name != AUTO and name not in BACKENDS:
        raise ValueError(f"gddm: unknown backend {name!r}; choose one of {[AUTO, *BACKENDS]}")


def requested_backend(backend: str) -> str:
    """The backend name in force for a call whose argument is `backend` ("auto" = none given)."""
    _check_name(backend)
    if backend != AUTO:
        return backend
    override = _override.get()
    if override is not None:
        return override
    from_env = _env_backend() or AUTO
    if from_env != AUTO and from_env not in BACKENDS:
        raise ValueError(f"gddm: {ENV_VAR}={from_env!r} is not a backend; choose one of {[AUTO, *BACKENDS]}")
    return from_env


def compiled_fast_path(backend: str | None, x: object) -> Backend | None:
    """The compiled backend (cpu or cuda) in force for a call on `x`, when the call can go
    straight to its C++ public ops (gddm_C::*_nd: checks, autograd and kernel in C++); None
    when it takes the op layer torch.ops.gddm.*: another backend, a torch.compile trace, an
    unknown name (the op layer raises), or a case the automatic choice must resolve with its
    fallbacks. Costs about a microsecond; the op layer's Python custom op costs tens."""
    if not isinstance(x, Tensor) or torch.compiler.is_compiling() or _extension.LOAD_ERROR is not None:
        return None
    device_type = "cuda" if x.is_cuda else "cpu" if x.is_cpu else None  # x.device.type costs 0.5 us
    name = backend or _override.get() or _env_backend() or AUTO
    if name == AUTO:
        name = AUTO_PRIORITY.get(device_type, (AUTO,))[0]
    spec = BACKENDS.get(name)
    if spec is None or not spec.cpp_ops or device_type not in spec.device_types or x.dtype not in spec.dtypes:
        return None
    if "compiled_cuda" in spec.needs and spec.unavailable_reason() is not None:
        return None
    return spec


def select(op: str, backend: str, x: Tensor) -> OpImplementation:
    """The implementation that runs `op` on `x` for the call's `backend` argument."""
    global _warned_fallback
    name = requested_backend(backend)
    if name != AUTO:
        reasons = BACKENDS[name].not_supported_reasons(x)
        if reasons:
            raise RuntimeError(
                f"gddm.{op}: backend {name!r} cannot run on this input ({x.device.type}, {x.dtype}): "
                + "; ".join(reasons)
            )
        return BACKENDS[name].implementation
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
            return BACKENDS[candidate].implementation
        skipped.append(f"{candidate}: {', '.join(reasons)}")
    raise RuntimeError(f"gddm.{op}: no backend can run on this input: {'; '.join(skipped)}")
