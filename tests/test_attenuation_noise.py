"""The analytic-attenuation forward process F_t = (1 - t) D(x0) + k sqrt(t) eps (Huang et al.
2023, H_t = c t, c = -F0): the fused `attenuation_add_noise` on every backend against its
reference, the in-kernel noise's statistics, and its argument errors."""

import math

import pytest
import torch

import gddm_kernels.diffusion as fused
from gddm_kernels.reference import diffusion as spec
from gddm_kernels.reference import random as ref_random
from gddm_kernels.stencils import gradient, laplacian

from conftest import ALL_CASES, gen, supports

TOL = {torch.float32: 2e-5, torch.float64: 1e-12, torch.bfloat16: 2e-2}
DOMAINS = ["image", "gradient", "laplacian"]
OPERATORS = {"image": lambda x: x, "gradient": gradient, "laplacian": laplacian}
TIMES = [0.0, 1e-3, 0.37, 1.0]  # both ends of [0, 1] included


def close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual.cpu().double(), expected.cpu().double(), atol=TOL[dtype] * scale, rtol=0)


@pytest.mark.parametrize("backend,device", ALL_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("noise_model", ["paper", "exact"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_fused_matches_reference_with_given_noise(domain, noise_model, dtype, backend, device):
    if not supports(backend, dtype):
        pytest.skip(f"{backend} does not support {dtype}")
    x0 = torch.randn(4, 2, 9, 11, dtype=torch.float64).to(device, dtype)
    t = torch.tensor(TIMES, device=device)
    _, eps = spec.attenuation_add_noise(x0, t, domain, noise_model)
    expected, _ = spec.attenuation_add_noise(x0, t, domain, noise_model, noise=eps)
    actual, returned = fused.attenuation_add_noise(x0, t, domain, noise_model, noise=eps, backend=backend)
    assert returned is eps and actual.shape == expected.shape and actual.dtype == dtype
    close(actual, expected, dtype)


@pytest.mark.parametrize("domain", DOMAINS)
def test_reference_is_the_attenuation_maths(domain):
    """F_t = (1 - t) F0 + k sqrt(t) eps: F_0 = F0, F_1 = k eps, and the add_noise kernel's
    coefficients are [1 - t, k sqrt(t)]."""
    x0 = torch.randn(4, 1, 6, 7, dtype=torch.float64)
    t = torch.tensor(TIMES, dtype=torch.float64)
    k = spec.DOMAIN_SCALES[domain]
    field = OPERATORS[domain](x0)
    eps = torch.randn(field.shape, dtype=torch.float64)
    f_t, _ = spec.attenuation_add_noise(x0, t, domain, noise=eps)
    per_sample = t.view(-1, *[1] * (field.dim() - 1))
    torch.testing.assert_close(f_t, (1 - per_sample) * field + k * per_sample.sqrt() * eps)
    torch.testing.assert_close(f_t[0], field[0])
    torch.testing.assert_close(f_t[-1], k * eps[-1])
    coefs = torch.stack([1 - t, k * t.sqrt()], dim=1)
    kernel, _ = torch.ops.gddm.add_noise(x0, coefs, domain, False, eps, None, False, "reference")
    torch.testing.assert_close(f_t, kernel)


@pytest.mark.parametrize("backend,device", ALL_CASES)
@pytest.mark.parametrize("domain", DOMAINS)
def test_generated_noise_is_the_philox_stream(domain, backend, device):
    x0 = torch.randn(4, 3, 8, 10, device=device)
    t = torch.tensor(TIMES, device=device)
    seed = int(torch.randint(0, fused.SEED_HIGH, (1,), generator=gen(7, device), device=device).item())
    f_t, eps = fused.attenuation_add_noise(x0, t, domain, generator=gen(7, device), backend=backend)
    torch.testing.assert_close(eps.cpu(), ref_random.normal(seed, tuple(eps.shape)), atol=2e-6, rtol=0)
    expected, _ = spec.attenuation_add_noise(x0, t, domain, noise=eps)
    close(f_t, expected, torch.float32)
    again, none = fused.attenuation_add_noise(x0, t, domain, generator=gen(7, device), return_noise=False,
                                              backend=backend)
    assert none is None
    torch.testing.assert_close(again, f_t, atol=0, rtol=0)


@pytest.mark.parametrize("domain", DOMAINS)
def test_generated_noise_has_the_process_mean_and_variance(domain):
    """Per sample, F_t - (1 - t) F0 has mean 0 and variance k^2 t; the returned eps is N(0, 1)."""
    x0 = torch.rand(3, 1, 256, 256) * 2 - 1
    t = torch.tensor([0.05, 0.5, 1.0])
    f_t, eps = fused.attenuation_add_noise(x0, t, domain, generator=gen(0, "cpu"))
    assert abs(eps.mean().item()) < 0.01 and abs(eps.var().item() - 1) < 0.02
    residual = f_t - (1 - t).view(-1, 1, 1, 1, *[1] * (domain == "gradient")) * OPERATORS[domain](x0)
    k = spec.DOMAIN_SCALES[domain]
    for b in range(3):
        std = k * math.sqrt(t[b].item())
        assert abs(residual[b].mean().item()) < 0.02 * std
        assert abs(residual[b].var().item() / std**2 - 1) < 0.03


def test_is_differentiable_in_x0():
    x0 = torch.randn(2, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.2, 0.9], dtype=torch.float64)
    noise = torch.randn(2, 1, 2, 5, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: fused.attenuation_add_noise(x, t, "gradient", noise=noise, backend="cpu")[0], (x0,))


@pytest.mark.parametrize("impl", [fused, spec], ids=["fused", "reference"])
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(t=torch.tensor([1, 0])), TypeError, "floating dtype"),
    (dict(t=torch.tensor([0.5])), ValueError, r"shape \(B,\) = \(2,\)"),
    (dict(t=torch.tensor([0.5, 1.5])), ValueError, r"`t` must lie in \[0, 1\]"),
    (dict(t=torch.tensor([-0.1, 0.5])), ValueError, r"`t` must lie in \[0, 1\]"),
    (dict(domain="fourier"), ValueError, "`domain`"),
    (dict(noise_model="x"), ValueError, "`noise_model`"),
    (dict(noise=torch.randn(2, 3)), ValueError, "`noise` must have shape"),
    (dict(x0=torch.randn(4, 4)), ValueError, "at least 3 dims"),
])
def test_argument_errors(impl, kwargs, error, match):
    args = {"x0": torch.randn(2, 3, 4, 4), "t": torch.tensor([0.5, 1.0]), **kwargs}
    with pytest.raises(error, match=f"attenuation_add_noise: .*{match}"):
        impl.attenuation_add_noise(**args)
