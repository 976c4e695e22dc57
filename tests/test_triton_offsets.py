"""Triton kernels on small views whose in-image reach passes 2^31 elements (a row-sliced view of
a huge tensor, one channel of channels-last data): every offset must be computed in 64 bits
where it does not fit in 32, and the result must equal the reference on the same view. The
fused diffusion kernels index contiguous data at int64 offsets; they get strided views too
(direct op calls) and must read them as their values.

Memory: each test allocates a storage of more than 2^31 bf16 elements (4+ GiB of address space)
with torch.empty, which maps pages without touching them; only the few pages under the view's
elements are written (and become resident). The tests check that the process's resident set
grows by less than RESIDENT_LIMIT, so the peak RSS stays small.
"""

import pytest
import torch

import gddm_kernels as gk
from gddm_kernels import reference

from conftest import TOLERANCES

pytestmark = pytest.mark.triton

DTYPE = torch.bfloat16
PAST_INT32 = 2**31
RESIDENT_LIMIT = 256 * 2**20  # bytes
PAGE = 4096


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _view(shape: tuple[int, ...], strides: tuple[int, ...]) -> torch.Tensor:
    """A view of the given shape and strides into a fresh storage just large enough for it,
    filled with random values (only the view's elements are written)."""
    reach = sum((size - 1) * stride for size, stride in zip(shape, strides))
    storage = torch.empty(reach + 1, dtype=DTYPE)
    view = storage.as_strided(shape, strides)
    view.copy_(torch.randn(shape, dtype=torch.float64))
    return view


def _row_slice(inner: tuple[int, ...] = ()) -> torch.Tensor:
    """3 rows of 5 pixels, 2^30 elements apart: row 2 starts at 2^31 (inner: leading field dims,
    channel stride 5 so channels do not overlap)."""
    return _view((*inner, 3, 5), (*(5 for _ in inner), 2**30, 1))


def _channels_last_channel() -> torch.Tensor:
    """Channel 0 of a channels-last (1, C, 3, 3) tensor with H * W * C = 9 * 2^28 > 2^31."""
    C = 2**28
    return _view((1, 1, 3, 3), (9 * C, 1, 3 * C, C))


VIEWS = {"row-slice": _row_slice, "channels-last-channel": _channels_last_channel}


def _check(op: str, x: torch.Tensor, oracle_op=None) -> None:
    before = _resident_bytes()
    out = getattr(gk, op)(x, backend="triton")
    expected = (oracle_op or getattr(reference, op))(x.double())
    atol, rtol = TOLERANCES[DTYPE]
    torch.testing.assert_close(out.double(), expected, atol=atol, rtol=rtol)
    assert _resident_bytes() - before < RESIDENT_LIMIT


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("op", ["gradient", "laplacian", "poisson_solve"])
def test_image_ops_on_views_reaching_past_int32(op, view):
    x = VIEWS[view]()
    assert sum((s - 1) * st for s, st in zip(x.shape, x.stride())) >= PAST_INT32
    _check(op, x)


@pytest.mark.parametrize("op", ["divergence", "reconstruct"])
def test_field_ops_on_views_reaching_past_int32(op):
    g = _row_slice(inner=(2,))
    _check(op, g)


def _strided(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random values in a non-contiguous view (every other column of a wider tensor)."""
    wide = torch.randn(*shape[:-1], 2 * shape[-1], dtype=torch.float64).to(dtype)
    return wide[..., ::2]


@pytest.mark.parametrize("domain", ["image", "gradient", "laplacian"])
def test_add_noise_on_non_contiguous_views(domain):
    """The fused noise-add kernels index contiguous data; a strided view is taken as its values."""
    x0 = _strided((2, 3, 7, 9))
    coefs = torch.rand(2, 4, dtype=torch.float32)[:, ::2]
    noise = _strided((2, 3, 2, 7, 9) if domain == "gradient" else (2, 3, 7, 9))
    args = (coefs, domain, False, noise, None, False)
    out, _ = torch.ops.gddm.add_noise(x0, *args, "triton")
    expected, _ = torch.ops.gddm.add_noise(x0.contiguous(), coefs.contiguous(), domain, False,
                                           noise.contiguous(), None, False, "reference")
    torch.testing.assert_close(out, expected, atol=2e-6, rtol=2e-6)


def test_diffusion_step_on_non_contiguous_views():
    x, m, prev = (_strided((2, 3, 7, 9)) for _ in range(3))
    coefs = torch.randn(2, 22, dtype=torch.float32)[:, ::2]
    args = (None, None, None, prev, coefs, 0.0, 0.0, None, None, True)
    out, x0 = torch.ops.gddm.diffusion_step(x, m, *args, "triton")
    expected, expected_x0 = torch.ops.gddm.diffusion_step(x.contiguous(), m.contiguous(), None, None, None,
                                                          prev.contiguous(), coefs.contiguous(), 0.0, 0.0, None,
                                                          None, True, "reference")
    torch.testing.assert_close(out, expected, atol=2e-6, rtol=2e-6)
    torch.testing.assert_close(x0, expected_x0, atol=2e-6, rtol=2e-6)
