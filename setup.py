"""Build gddm_kernels._C: the C++ CPU kernels always, the CUDA kernels whenever nvcc and a
CUDA build of torch are present (a GPU is not needed to compile them).

Switches (environment variables):
    GDDM_SKIP_CUDA=1        build the CPU kernels only, even where CUDA could be built
    TORCH_CUDA_ARCH_LIST    CUDA architectures; default "9.0" (H100) when no GPU is visible
    MAX_JOBS                parallel compile jobs (ninja)

Object files are kept in build/temp-<python>-torch<version>/ (ignored by git), also for
`pip install -e .`, whose own build directory is temporary: ninja then recompiles only the
sources whose text, included headers or compile command changed.
"""

import os
import sys
from pathlib import Path

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = Path(__file__).parent
DEFAULT_ARCH_WITHOUT_GPU = "9.0"


def _build_temp() -> Path:
    """A kept object directory per Python and torch version (their headers differ)."""
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    return ROOT / "build" / f"temp-{python}-torch{torch.__version__.replace('+', '-')}"


class IncrementalBuild(BuildExtension):
    """torch's ninja build with its objects in the kept _build_temp(), not a fresh temp dir."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.build_temp = str(_build_temp())


def _sources(pattern: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "csrc").glob(pattern))


def _build_cuda() -> tuple[bool, str]:
    if os.environ.get("GDDM_SKIP_CUDA", "0") == "1":
        return False, "GDDM_SKIP_CUDA=1"
    if torch.version.cuda is None:
        return False, "torch is a CPU-only build"
    if CUDA_HOME is None:
        return False, "nvcc not found (set CUDA_HOME)"
    return True, f"nvcc at {CUDA_HOME}, torch CUDA {torch.version.cuda}"


def _extension():
    with_cuda, why = _build_cuda()
    # No errno and no trapping FP exceptions: lets the compiler vectorise loops with sqrt and
    # selects (the in-kernel Philox normals); results are unchanged (no reassociation). No FMA
    # contraction: the ISA clones of csrc/cpu/isa.h give bit-identical results on every CPU.
    cxx_flags = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
    sources = _sources("*.cpp") + _sources("cpu/*.cpp")
    if with_cuda:
        if "TORCH_CUDA_ARCH_LIST" not in os.environ and not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCH_WITHOUT_GPU
        sources += _sources("cuda/*.cpp") + _sources("cuda/*.cu")
        ext = CUDAExtension(
            "gddm_kernels._C",
            sources,
            extra_compile_args={"cxx": cxx_flags,
                                "nvcc": ["-O3", "-lineinfo"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension("gddm_kernels._C", sources, extra_compile_args={"cxx": cxx_flags},
                           extra_link_args=["-fopenmp"])
    print(f"gddm_kernels build: torch {torch.__version__}, CPU kernels: yes, "
          f"CUDA kernels: {'yes' if with_cuda else 'no'} ({why}), "
          f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '<torch default>')}, "
          f"MAX_JOBS={os.environ.get('MAX_JOBS', '<default>')}")
    return ext


setup(ext_modules=[_extension()], cmdclass={"build_ext": IncrementalBuild})
