"""Builds and loads the CUDA emulation module (csrc/emulation): the CUDA kernels of csrc/cuda and
their host launchers compiled as C++, each launch run on the CPU as a loop over its real grid
(csrc/cuda/emulation.h), registered as torch.ops.gddm_emu.* (gddm_C's CUDA ops, on CPU tensors).

For tests only: a normal install never builds it. The build is cached in build/cuda-emulation
(or $GDDM_EMULATION_BUILD_DIR), with $GDDM_EMULATION_CFLAGS added to the compiler flags
(scripts/sanitize.sh builds a sanitized copy this way)."""

import functools
import os
import shlex
from pathlib import Path

import torch
from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
# The shipped build's flags (setup.py), minus OpenMP (the emulator runs on one thread).
BASE_CFLAGS = ["-O2", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-DGDDM_CUDA_EMULATION"]


def sources() -> list[str]:
    """The emulation module's own files and the CUDA host launchers; the .cu kernels come in
    through csrc/emulation/*_kernels.cpp, which include them."""
    files = sorted(CSRC.glob("emulation/*.cpp")) + sorted(CSRC.glob("cuda/*_cuda.cpp"))
    return [str(p) for p in files]


@functools.cache  # once per process: a second library registering gddm_emu would abort
def load() -> object:
    """Builds (or reuses) the module and loads it; returns torch.ops.gddm_emu."""
    build_dir = Path(os.environ.get("GDDM_EMULATION_BUILD_DIR", ROOT / "build" / "cuda-emulation"))
    build_dir.mkdir(parents=True, exist_ok=True)
    extra = shlex.split(os.environ.get("GDDM_EMULATION_CFLAGS", ""))
    cpp_extension.load(
        name="gddm_emu",
        sources=sources(),
        extra_cflags=BASE_CFLAGS + extra,
        extra_ldflags=[f for f in extra if f.startswith("-fsanitize")],
        build_directory=str(build_dir),
        with_cuda=False,
        verbose=False,
    )
    return torch.ops.gddm_emu
