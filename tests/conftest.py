"""Test configuration. Triton kernels run on CPU tensors through the interpreter, which must be
switched on before triton is first imported; GPU cases are marked `cuda` and skipped without one."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from gddm_kernels.dispatch import BACKENDS  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
CUDA_MARKS = [pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")]

# (backend, device) pairs that every fast-backend test runs; the reference is the oracle.
FAST_CASES = [
    pytest.param("cpu", "cpu", id="cpu"),
    pytest.param("triton", "cpu", id="triton-interpret", marks=pytest.mark.triton),
    pytest.param("cuda", "cuda", id="cuda", marks=CUDA_MARKS),
    pytest.param("triton", "cuda", id="triton-cuda", marks=[pytest.mark.triton, *CUDA_MARKS]),
]

# Tolerances (atol, rtol) against a float64 reference, per output dtype: the kernels compute in
# float32 (float64 for float64) and round once, like the reference does.
TOLERANCES = {
    torch.float64: (1e-12, 1e-12),
    torch.float32: (2e-6, 2e-6),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (8e-3, 8e-3),
}


# FAST_CASES and the reference backend, for the ops whose reference is itself a kernel contract.
ALL_CASES = [pytest.param("reference", "cpu", id="reference"), *FAST_CASES]


def gen(seed: int, device: str) -> torch.Generator:
    """A generator on `device` seeded with `seed`."""
    return torch.Generator(device=device).manual_seed(seed)


def supports(backend: str, dtype: torch.dtype) -> bool:
    return dtype in BACKENDS[backend].dtypes


def assert_close_to_oracle(actual: torch.Tensor, oracle: torch.Tensor, dtype: torch.dtype) -> None:
    """`actual` (in `dtype`) matches the float64 `oracle` within the dtype's tolerance."""
    atol, rtol = TOLERANCES[dtype]
    assert actual.dtype == dtype
    torch.testing.assert_close(actual.cpu().double(), oracle.cpu().double(), atol=atol, rtol=rtol)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _grad_mode_is_restored():
    """A test must not leave autograd switched off for the tests after it."""
    yield
    assert torch.is_grad_enabled(), "the test left torch.set_grad_enabled(False) behind"
