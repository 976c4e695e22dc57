"""bfloat16 outputs of the Triton kernels are rounded to nearest even, as torch's .to() rounds
the reference's float32 result. (Triton's interpreter truncates in its own float32 -> bfloat16
cast, so a kernel that relied on it would round toward zero under TRITON_INTERPRET=1.)

Each kernel computes in float32 from the bfloat16 input's exact float32 values; the same kernel
on float32 copies of the inputs does the same arithmetic, so its output rounded by torch must
equal the bfloat16 output bit for bit. Against the reference, whose float32 arithmetic order may
differ, outputs are at most 1 ulp apart.
"""

import pytest
import torch

import gddm_kernels as gk
from gddm_kernels import reference

pytestmark = pytest.mark.triton

BF16 = torch.bfloat16
SHAPE = (2, 3, 37, 53)
FIELD = (2, 3, 2, 37, 53)
POISSON_SHAPE = (2, 64, 72)  # above the cosine-matrix size, so the DCT kernels run


def _bf16(shape: tuple[int, ...]) -> torch.Tensor:
    return (3 * torch.randn(shape)).to(BF16)


def _ulps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance in bfloat16 steps between same-signed finite values."""
    return (a.view(torch.int16).int() - b.view(torch.int16).int()).abs()


def _check(out: torch.Tensor, from_float32: torch.Tensor, spec: torch.Tensor | None = None) -> None:
    assert out.dtype == BF16
    assert torch.equal(out.view(torch.int16), from_float32.to(BF16).view(torch.int16))
    if spec is not None:
        close = (out == spec) | (torch.sign(out) == torch.sign(spec)) & (_ulps(out, spec) <= 1)
        assert bool(close.all()), f"{int((~close).sum())} outputs more than 1 ulp from the reference"


@pytest.mark.parametrize("op", ["gradient", "divergence", "laplacian"])
def test_stencils_round_to_nearest(op):
    x = _bf16(FIELD if op == "divergence" else SHAPE)
    fn = getattr(gk, op)
    _check(fn(x, backend="triton"), fn(x.float(), backend="triton"), getattr(reference, op)(x))


@pytest.mark.parametrize("op", ["poisson_solve", "reconstruct"])
def test_solves_round_to_nearest(op):
    """The DCT solve's float32 error exceeds a bfloat16 ulp on values near zero: the rounding is
    checked against the kernels' own float32 result only."""
    x = _bf16((2, 2, *POISSON_SHAPE[1:]) if op == "reconstruct" else POISSON_SHAPE)
    fn = getattr(gk, op)
    _check(fn(x, backend="triton"), fn(x.float(), backend="triton"))


def test_truncation_would_be_caught():
    """The check above separates rounding from truncation: about half the outputs differ."""
    x = _bf16(SHAPE)
    exact = gk.laplacian(x.float(), backend="triton")
    truncated = (exact.view(torch.int32) & ~0xFFFF).view(torch.float32).to(BF16)
    assert (truncated != exact.to(BF16)).float().mean() > 0.3


@pytest.mark.parametrize("domain", ["image", "gradient", "laplacian"])
@pytest.mark.parametrize("exact", [False, True])
def test_add_noise_rounds_to_nearest(domain, exact):
    x0 = _bf16(SHAPE)
    coefs = torch.rand(SHAPE[0], 2)
    noise = _bf16(reference.fused_diffusion.noise_shape(x0.shape, domain, exact))
    out, _ = torch.ops.gddm.add_noise(x0, coefs, domain, exact, noise, None, False, "triton")
    wide, _ = torch.ops.gddm.add_noise(x0.float(), coefs, domain, exact, noise.float(), None, False, "triton")
    _check(out, wide)


def test_generated_noise_rounds_to_nearest():
    x0, seed = _bf16(SHAPE), torch.tensor([3])
    coefs = torch.rand(SHAPE[0], 2)
    out, noise = torch.ops.gddm.add_noise(x0, coefs, "image", False, None, seed, True, "triton")
    wide, wide_noise = torch.ops.gddm.add_noise(x0.float(), coefs, "image", False, None, seed, True, "triton")
    _check(out, wide)
    _check(noise, wide_noise)


def test_diffusion_step_rounds_to_nearest():
    x, m, prev, z = (_bf16(SHAPE) for _ in range(4))
    coefs = torch.randn(SHAPE[0], 11)
    out, x0 = torch.ops.gddm.diffusion_step(x, m, None, None, None, prev, coefs, 0.0, 0.0, z, None, True, "triton")
    wide, wide_x0 = torch.ops.gddm.diffusion_step(x.float(), m.float(), None, None, None, prev.float(), coefs, 0.0,
                                                  0.0, z.float(), None, True, "triton")
    _check(out, wide)
    _check(x0, wide_x0)
    spec, spec_x0 = torch.ops.gddm.diffusion_step(x, m, None, None, None, prev, coefs, 0.0, 0.0, z, None, True,
                                                  "reference")
    _check(out, wide, spec)
    _check(x0, wide_x0, spec_x0)
