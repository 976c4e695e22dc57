"""Every fast backend against the reference: odd shapes, leading dims of rank 0..3,
non-contiguous / channels-last / expanded layouts, every dtype, forward and backward."""

import pytest
import torch

import gddm_kernels as gk
from gddm_kernels import reference

from conftest import FAST_CASES, assert_close_to_oracle, supports

OPS = ["gradient", "divergence", "laplacian"]
SHAPES = [(1, 1), (1, 9), (9, 1), (2, 2), (37, 53), (257, 255)]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
SCALES = [1.0, -0.37]


def make_input(op: str, lead: tuple[int, ...], hw: tuple[int, int], dtype: torch.dtype,
               device: str) -> torch.Tensor:
    """A random image batch (..., H, W), or gradient field (..., 2, H, W) for divergence."""
    inner = (2, *hw) if op == "divergence" else hw
    return torch.randn(*lead, *inner, dtype=torch.float64).to(device=device, dtype=dtype)


def oracle(op: str, x: torch.Tensor, scale: float) -> torch.Tensor:
    """The reference in float64 on the CPU."""
    return getattr(reference, op)(x.cpu().double(), scale)


def run(op: str, x: torch.Tensor, backend: str, scale: float = 1.0) -> torch.Tensor:
    return getattr(gk, op)(x, scale=scale, backend=backend)


def layouts(op: str, lead: tuple[int, ...], hw: tuple[int, int], dtype, device):
    """The same values in several memory layouts: (name, tensor)."""
    x = make_input(op, lead, hw, dtype, device)
    inner = x.dim() - len(lead)
    yield "contiguous", x
    wide = make_input(op, lead, (hw[0], 2 * hw[1]), dtype, device)
    yield "column-stride-2", wide[..., ::2]
    yield "transposed", x.transpose(-1, -2).contiguous().transpose(-1, -2)
    perm = list(range(x.dim()))
    if len(lead) >= 1:  # batch dims not mergeable: channels-last-like (leading dim innermost)
        order = perm[1:] + perm[:1]
        inv = [order.index(d) for d in perm]
        yield "batch-innermost", x.permute(order).contiguous().permute(inv)
    if len(lead) >= 2:
        yield "batch-dims-swapped", x.transpose(0, 1).contiguous().transpose(0, 1)
    yield "expanded", x[..., :1, :, :].expand(*x.shape) if inner == 3 else x[..., :1, :].expand(*x.shape)
    del inner


@pytest.mark.parametrize("backend,device", FAST_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("hw", SHAPES, ids=str)
@pytest.mark.parametrize("op", OPS)
def test_matches_reference_shapes_dtypes(op, hw, dtype, backend, device):
    if not supports(backend, dtype):
        pytest.skip(f"{backend} does not support {dtype}")
    for scale in SCALES:
        x = make_input(op, (2, 3), hw, dtype, device)
        assert_close_to_oracle(run(op, x, backend, scale), oracle(op, x, scale), dtype)


@pytest.mark.parametrize("backend,device", FAST_CASES)
@pytest.mark.parametrize("lead", [(), (3,), (2, 3), (2, 1, 3)], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_matches_reference_layouts(op, lead, backend, device):
    for name, x in layouts(op, lead, (13, 11), torch.float32, device):
        out = run(op, x, backend)
        assert out.is_contiguous(), name
        assert_close_to_oracle(out, oracle(op, x, 1.0), torch.float32)


def test_channels_last_nchw():
    """An NCHW channels-last batch: both kernels read it in place, and agree."""
    x = torch.randn(2, 3, 17, 19).to(memory_format=torch.channels_last)
    for op in OPS[::2]:
        assert_close_to_oracle(run(op, x, "cpu"), oracle(op, x, 1.0), torch.float32)


@pytest.mark.parametrize("backend,device", FAST_CASES)
@pytest.mark.parametrize("op", OPS)
def test_backward_matches_reference(op, backend, device):
    x = make_input(op, (2,), (10, 12), torch.float32, device).requires_grad_()
    x_ref = x.detach().cpu().double().requires_grad_()
    out = run(op, x, backend, 0.5)
    cotangent = torch.randn_like(out)
    out.backward(cotangent)
    getattr(reference, op)(x_ref, 0.5).backward(cotangent.cpu().double())
    assert_close_to_oracle(x.grad, x_ref.grad, torch.float32)


@pytest.mark.parametrize("backend,device", FAST_CASES)
@pytest.mark.parametrize("shape", [(0, 5, 5), (3, 0, 5), (3, 5, 0)], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_empty_input(op, shape, backend, device):
    x = torch.empty(*shape[:-2], *((2,) if op == "divergence" else ()), *shape[-2:], device=device)
    out = run(op, x, backend)
    assert out.shape == oracle(op, x, 1.0).shape
    assert out.numel() == 0
