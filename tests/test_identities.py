"""The defining identities of docs/design.md, an explicit-loop oracle for the reference, and
float64 gradcheck of every backend that computes in float64."""

import pytest
import torch

import gddm_kernels as gk
from gddm_kernels import reference

from conftest import FAST_CASES, HAS_CUDA

BACKENDS = ["reference", "cpu"] + (["cuda"] if HAS_CUDA else [])
DEVICE = {"reference": "cpu", "cpu": "cpu", "cuda": "cuda"}


def loops_gradient(x: torch.Tensor) -> torch.Tensor:
    """The gradient of docs/design.md written pixel by pixel (independent of the vectorised reference)."""
    H, W = x.shape
    g = torch.zeros(2, H, W, dtype=x.dtype)
    for i in range(H):
        for j in range(W):
            if i + 1 < H:
                g[0, i, j] = x[i + 1, j] - x[i, j]
            if j + 1 < W:
                g[1, i, j] = x[i, j + 1] - x[i, j]
    return g


def loops_laplacian(x: torch.Tensor) -> torch.Tensor:
    """The paper's kernel [[0,1/4,0],[1/4,-1,1/4],[0,1/4,0]] with edge replication, pixel by pixel."""
    H, W = x.shape
    out = torch.zeros_like(x)
    for i in range(H):
        for j in range(W):
            neighbours = [x[max(i - 1, 0), j], x[min(i + 1, H - 1), j], x[i, max(j - 1, 0)], x[i, min(j + 1, W - 1)]]
            out[i, j] = 0.25 * sum(neighbours) - x[i, j]
    return out


@pytest.mark.parametrize("hw", [(1, 1), (1, 4), (4, 1), (5, 7)], ids=str)
def test_reference_matches_explicit_loops(hw):
    x = torch.randn(*hw, dtype=torch.float64)
    torch.testing.assert_close(reference.gradient(x), loops_gradient(x))
    torch.testing.assert_close(reference.laplacian(x), loops_laplacian(x))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hw", [(1, 1), (1, 6), (6, 1), (37, 53)], ids=str)
def test_divergence_is_negative_adjoint_of_gradient(hw, backend):
    device = DEVICE[backend]
    x = torch.randn(2, 3, *hw, dtype=torch.float64, device=device)
    g = torch.randn(2, 3, 2, *hw, dtype=torch.float64, device=device)
    lhs = (gk.gradient(x, backend=backend) * g).sum()
    rhs = -(x * gk.divergence(g, backend=backend)).sum()
    torch.testing.assert_close(lhs, rhs, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hw", [(1, 1), (1, 6), (6, 1), (37, 53)], ids=str)
def test_laplacian_is_quarter_divergence_of_gradient(hw, backend):
    x = torch.randn(3, *hw, dtype=torch.float64, device=DEVICE[backend])
    expected = 0.25 * gk.divergence(gk.gradient(x, backend=backend), backend=backend)
    torch.testing.assert_close(gk.laplacian(x, backend=backend), expected, atol=1e-12, rtol=1e-12)


def test_five_point_variant_is_four_times_paper_kernel():
    x = torch.randn(4, 9, 8, dtype=torch.float64)
    five_point = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x[:, None], (1, 1, 1, 1), mode="replicate"),
        torch.tensor([[[[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]]], dtype=torch.float64))[:, 0]
    torch.testing.assert_close(gk.laplacian(x, scale=4.0), five_point)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["gradient", "divergence", "laplacian"])
def test_gradcheck_float64(op, backend):
    device = DEVICE[backend]
    inner = (2, 5, 6) if op == "divergence" else (5, 6)
    x = torch.randn(2, *inner, dtype=torch.float64, device=device, requires_grad=True)
    fn = getattr(gk, op)
    assert torch.autograd.gradcheck(lambda t: fn(t, scale=0.7, backend=backend), (x,))
    assert torch.autograd.gradgradcheck(lambda t: fn(t, scale=0.7, backend=backend), (x,))


@pytest.mark.parametrize("backend,device", FAST_CASES)
def test_gradcheck_float32_adjoint_through_fast_backend(backend, device):
    """Backends without float64 (Triton): backward of gradient is -divergence on the same backend."""
    x = torch.randn(2, 7, 9, device=device, requires_grad=True)
    c = torch.randn(2, 2, 7, 9, device=device)
    (gk.gradient(x, backend=backend) * c).sum().backward()
    torch.testing.assert_close(x.grad, -reference.divergence(c), atol=1e-6, rtol=1e-6)
