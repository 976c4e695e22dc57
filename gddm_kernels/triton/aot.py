"""Every Triton kernel of the package compiled ahead of time for a real GPU, without one.

How: each op wrapper of this package is called on small CPU tensors (contiguous float32 and
bfloat16 data, 64x64 images) while its kernels are replaced by recorders, so every launch is
captured with exactly the arguments a real launch passes. Each captured launch then goes through
Triton's own launch-time specialisation (the binder of triton.runtime.jit: unit integers become
constants, pointers aligned to 16 bytes and integers divisible by 16 get tt.divisibility=16)
and `triton.compile` for the target, down to PTX and the cubin from Triton's bundled ptxas. No
driver is touched; the result is what a GPU launch on the same data would compile.

Triton must not be in interpreter mode (TRITON_INTERPRET=1 makes @triton.jit build interpreter
objects): run this module in a process without it,

    python -m gddm_kernels.triton.aot [--arch 90] [--json results.json]

which prints one line per compiled specialisation and exits non-zero if any failed.
"""

import argparse
import contextlib
import dataclasses
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from types import ModuleType

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton.runtime.jit import JITFunction, create_function_from_signature

from .. import _multigrid
from . import diffusion, multigrid, poisson, stencils

MODULES = (stencils, poisson, multigrid, diffusion)
DTYPES = (torch.float32, torch.bfloat16)
BATCH = (2, 3)
SIZE = 64
DEFAULT_ARCH = 90


@dataclasses.dataclass
class Launch:
    """One launch as a wrapper made it."""

    kernel: JITFunction
    args: tuple
    kwargs: dict


@dataclasses.dataclass
class Compiled:
    """One compiled specialisation: its name, Triton's inputs and the result (or the error)."""

    name: str
    kernel: str
    signature: dict
    constexprs: dict  # Triton's form: {(argument index,): value}
    constants: dict  # the same by argument name
    attrs: dict
    num_warps: int
    compiled: object | None = None
    error: str | None = None


def kernels() -> dict[str, JITFunction]:
    """Every launched kernel of the package (the @triton.jit functions named *_kernel)."""
    found = {}
    for module in MODULES:
        for name, value in vars(module).items():
            if name.endswith("_kernel") and isinstance(value, JITFunction):
                found[name] = value
    return found


class _Recorder:
    def __init__(self, kernel: JITFunction, launches: list[Launch]):
        self.kernel, self.launches = kernel, launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append(Launch(self.kernel, args, kwargs))
        return launch


@contextlib.contextmanager
def _recording(launches: list[Launch]) -> Iterator[None]:
    """Within the block, kernel launches of MODULES are recorded instead of run."""
    saved: list[tuple[ModuleType, str, JITFunction]] = []
    try:
        for module in MODULES:
            for name, value in list(vars(module).items()):
                if name.endswith("_kernel") and isinstance(value, JITFunction):
                    saved.append((module, name, value))
                    setattr(module, name, _Recorder(value, launches))
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _images(dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(*BATCH, SIZE, SIZE).to(dtype)


def _fields(dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(*BATCH, 2, SIZE, SIZE).to(dtype)


def _stencil_calls(dtype: torch.dtype) -> None:
    stencils.gradient(_images(dtype))
    stencils.divergence(_fields(dtype))
    stencils.laplacian(_images(dtype))


def _poisson_calls(dtype: torch.dtype) -> None:
    for field in (False, True):
        x = _fields(dtype) if field else _images(dtype)
        poisson.dct_reorder(x, field, 1.0)
    spectrum = torch.zeros(*BATCH, SIZE, SIZE // 2 + 1, dtype=torch.complex64)
    poisson.spectral_solve_(spectrum, SIZE, SIZE, 0.0)
    poisson.dct_unreorder(torch.zeros(*BATCH, SIZE, SIZE), dtype)


def _multigrid_calls(dtype: torch.dtype) -> None:
    stages = _multigrid.fused_stages(multigrid, _multigrid.finest_operator64)
    _multigrid.solve(_images(dtype).float(), stages, tol=0.0, max_cycles=1)


def _diffusion_calls(dtype: torch.dtype) -> None:
    x = _images(dtype)
    coefs = torch.rand(BATCH[0], 2)
    seed = torch.tensor([7], dtype=torch.int64)
    for domain in diffusion.DOMAIN_CODES:
        for exact in (False, True):
            shape = diffusion.noise_shape(x.shape, domain, exact)
            diffusion.add_noise(x, coefs, domain, exact, None, seed, True)
            diffusion.add_noise(x, coefs, domain, exact, torch.randn(shape).to(dtype), None, False)
    step = torch.rand(BATCH[0], len(diffusion.STEP_COEFS))
    diffusion.diffusion_step(x, x, None, None, None, None, step, 0.0, 0.0, None, None, False)
    diffusion.diffusion_step(x, x, x, x, x, x, step, 2.0, 1.0, None, seed, True)
    diffusion.diffusion_step(x, x, None, None, None, None, step, 0.0, 0.0, x, None, False)


CALLS: tuple[Callable[[torch.dtype], None], ...] = (_stencil_calls, _poisson_calls, _multigrid_calls,
                                                    _diffusion_calls)


def launches() -> list[Launch]:
    """Every kernel launch the wrappers make on contiguous float32 and bfloat16 data."""
    recorded: list[Launch] = []
    with _recording(recorded):
        for dtype in DTYPES:
            for call in CALLS:
                call(dtype)
    return recorded


def _describe(kernel: JITFunction, signature: dict, constexprs: dict, attrs: dict) -> str:
    """pointer element types, upper-case constexprs and the integer arguments divisible by 16."""
    pointers = sorted({v[1:] for v in signature.values() if isinstance(v, str) and v.startswith("*")})
    names = [f"{k}={v}" for k, v in constexprs.items() if k[0].isupper()]
    divisible = [kernel.arg_names[path[0]] for path, attr in attrs.items()
                 if attr and not signature[kernel.arg_names[path[0]]].startswith("*")]
    return ",".join([*pointers, *names, *([f"div16={'/'.join(divisible)}"] if divisible else [])])


def specialise(launch: Launch, target: GPUTarget) -> Compiled:
    """Triton's own launch-time specialisation of `launch` for `target` (what JITFunction.run
    computes before it compiles)."""
    kernel = launch.kernel
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*launch.args, **launch.kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, launch.kwargs, bound, specialization,
                                                              options)
    named = {kernel.arg_names[path[0]]: value for path, value in constexprs.items() if len(path) == 1}
    return Compiled(name=f"{kernel.__name__}[{_describe(kernel, signature, named, attrs)}]", kernel=kernel.__name__,
                    signature=signature, constexprs=constexprs, constants=named, attrs=attrs,
                    num_warps=options.num_warps)


def compile_all(arch: int = DEFAULT_ARCH, only: str | None = None) -> list[Compiled]:
    """Every distinct specialisation of every launch (of the kernels whose name contains `only`),
    compiled for sm_`arch` (errors kept)."""
    target = GPUTarget("cuda", arch, 32)
    results: dict[str, Compiled] = {}
    for launch in launches():
        if only and only not in launch.kernel.__name__:
            continue
        spec = specialise(launch, target)
        key = repr((spec.kernel, spec.signature, spec.constexprs, spec.attrs, spec.num_warps))
        if key in results:
            continue
        try:
            spec.compiled = triton.compile(ASTSource(launch.kernel, spec.signature, spec.constexprs, spec.attrs),
                                           target=target, options={"num_warps": spec.num_warps})
        except Exception:  # noqa: BLE001 - a compiler failure of any kind is the result
            spec.error = traceback.format_exc(limit=3)
        results[key] = spec
    return list(results.values())


def _summary(result: Compiled) -> dict:
    return {"name": result.name, "kernel": result.kernel, "ok": result.error is None, "error": result.error,
            "signature": {k: str(v) for k, v in result.signature.items()},
            "attrs": {str(k): v for k, v in result.attrs.items()}, "num_warps": result.num_warps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=DEFAULT_ARCH, help="CUDA compute capability, e.g. 90")
    parser.add_argument("--json", help="write one record per compiled specialisation to this file")
    args = parser.parse_args(argv)
    if triton.knobs.runtime.interpret:
        parser.error("TRITON_INTERPRET=1 is set: @triton.jit builds interpreter objects; unset it")
    results = compile_all(args.arch)
    for result in results:
        print(f"{'ok  ' if result.error is None else 'FAIL'} {result.name}")
        if result.error:
            print(result.error, file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"arch": args.arch, "kernels": sorted(kernels()), "results": [_summary(r) for r in results]},
                      f, indent=1)
    return 0 if all(r.error is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
