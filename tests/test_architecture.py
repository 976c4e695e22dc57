"""The package's structure, as tests: the specification stays a specification, every backend
offers the written-down interface, and facts shared by C++ and Python agree."""

import ast
import inspect
import re
from pathlib import Path

import pytest

import gddm_kernels
from gddm_kernels import _diffusion_contract as contract
from gddm_kernels import dispatch
from gddm_kernels.backends.protocol import Kernels, OpImplementation

PACKAGE = Path(gddm_kernels.__file__).parent
REPO = PACKAGE.parent


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a package file imports (relative imports resolved)."""
    module = ".".join(path.relative_to(REPO).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def test_no_package_module_imports_the_reference():
    """Production code never runs on the specification: only the backend table names it (as a
    module path string for the `reference` backend)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "reference" in path.relative_to(PACKAGE).parts:
            continue
        if any(name == "gddm_kernels.reference" or name.startswith("gddm_kernels.reference.")
               for name in _imported_modules(path)):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
    assert dispatch.BACKENDS["reference"].kernels == ".reference"


def _parameters(function) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def _members(protocol: type) -> list[str]:
    return [name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")]


@pytest.mark.parametrize("name", ["cpu", "cuda", "triton"])
def test_fast_backends_offer_every_kernel_of_the_protocol(name):
    backend = dispatch.BACKENDS[name]
    if backend.unavailable_reason() is not None:
        pytest.skip(f"backend {name} unavailable here: {backend.unavailable_reason()}")
    kernels = backend.implementation.kernels
    for member in _members(Kernels):
        assert hasattr(kernels, member), f"{name} lacks {member}"
        assert _parameters(getattr(kernels, member)) == _parameters(getattr(Kernels, member)), member


@pytest.mark.parametrize("name", list(dispatch.BACKENDS))
def test_every_backend_implements_the_ops(name):
    backend = dispatch.BACKENDS[name]
    if backend.unavailable_reason() is not None:
        pytest.skip(f"backend {name} unavailable here: {backend.unavailable_reason()}")
    implementation = backend.implementation
    for member in _members(OpImplementation):
        assert _parameters(getattr(implementation, member)) == _parameters(getattr(OpImplementation, member)), member


def _enum(header: str, name: str) -> list[str]:
    body = re.search(rf"enum {name} \{{([^}}]*)\}}", header).group(1)
    return [entry.split("=")[0].strip() for entry in body.split(",") if entry.strip()]


def test_cpp_enums_agree_with_the_python_contract():
    header = (REPO / "csrc" / "diffusion.h").read_text()
    step = _enum(header, "StepCoef")
    assert step[-1] == "kNumStepCoefs"
    assert [entry[1:].lower() for entry in step[:-1]] == list(contract.STEP_COEFS)
    domains = _enum(header, "Domain")
    assert [entry[1:].lower() for entry in domains] == list(contract.DOMAINS)
    assert contract.DOMAIN_CODES == {name: i for i, name in enumerate(contract.DOMAINS)}


def test_library_import_loads_no_application_module():
    """The kernel library needs torch and numpy only (what torch itself imports aside)."""
    import subprocess
    import sys

    code = ("import sys, torch; before = set(sys.modules); "
            "import gddm_kernels, gddm_kernels.diffusion, gddm_kernels.schedules; "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
            "('tqdm', 'PIL', 'sklearn', 'skimage') or m.startswith('gddm_kernels.app')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"


def test_no_repository_file_points_outside_it():
    """Comments and docs cite files of this repository only."""
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *(REPO / "csrc").rglob("*.[ch]*"), *(REPO / "tests").rglob("*.py"),
                 *(REPO / "benchmarks").rglob("*.py"), *(REPO / "docs").rglob("*.md"), REPO / "README.md"]:
        text = path.read_text(errors="replace")
        if path.name != "test_architecture.py" and re.search(r"DESIGN\.md|\.\./shared|STYLE\.md|[Ii]ssue \d", text):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
