"""Non-finite values in the compiled kernels (C++ CPU kernels, and the CUDA kernels through the
emulation module) follow the specification: a term whose coefficient is exactly 0 is absent (0,
not 0 * inf = NaN) in the fused step and noise-add, and a NaN scale makes every stencil output
NaN, the border included (scale * 0)."""

import math

import pytest
import torch

import gddm_kernels  # noqa: F401  (loads gddm_kernels._C)
from gddm_kernels import diffusion as fused
from gddm_kernels import _diffusion_contract as contract
from gddm_kernels.reference import fused_diffusion as spec
from gddm_kernels.reference import stencils as ref
from gddm_kernels.schedules import linear_schedule

import cuda_emulation

LIBRARIES = ["gddm_C", "gddm_emu"]
IDS = ["cpu", "cuda-emulated"]
INF = math.inf


@pytest.fixture(scope="module")
def libraries():
    return {"gddm_C": torch.ops.gddm_C, "gddm_emu": cuda_emulation.load()}


@pytest.mark.parametrize("library", LIBRARIES, ids=IDS)
@pytest.mark.parametrize("op", ["gradient", "divergence", "laplacian"])
def test_nan_scale_gives_nan_everywhere(libraries, library, op):
    x = torch.randn(1, 2, 2, 5, 6) if op == "divergence" else torch.randn(1, 2, 5, 6)
    out = getattr(libraries[library], op)(x, math.nan)
    expected = getattr(ref, op)(x, math.nan)
    assert out.isnan().all() and expected.isnan().all()


def ddim_clip_table() -> torch.Tensor:
    """DDIM with clipping: x0 = clamp(a0 x + a1 m) is finite for an infinite m, and eps is
    re-derived from it (e1 == 0), so the step is finite (the specification's value)."""
    t, t_prev = torch.tensor([999, 400]), torch.tensor([900, -1])
    table = fused._coef_table(fused._ddim_coefs(t, t_prev, linear_schedule(), 0.0, 1.0, "eps", 1.0)).float()
    assert (table[:, contract.STEP_COEFS.index("e1")] == 0).all() and (table[:, contract.STEP_COEFS.index("a1")] != 0).all()
    return table


@pytest.mark.parametrize("library", LIBRARIES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_zero_coefficient_drops_infinite_model_output(libraries, library, dtype):
    table = ddim_clip_table().to(torch.float64 if dtype == torch.float64 else torch.float32)
    x = torch.randn(2, 3, 4, dtype=dtype)
    m = torch.randn(2, 3, 4, dtype=dtype)
    m[0, 0, 0], m[1, 2, 3] = INF, -INF
    huge = m.clone()
    huge[0, 0, 0], huge[1, 2, 3] = 1e30, -1e30  # clamps to the same x0, and 0 * 1e30 == 0
    step = getattr(libraries[library], "diffusion_step")
    out, x0 = step(x, m, None, None, None, None, table, 0.0, 1.0, None, None, True)
    expected, expected_x0 = step(x, huge.to(dtype), None, None, None, None, table, 0.0, 1.0, None, None, True)
    assert out.isfinite().all() and x0.isfinite().all()
    assert torch.equal(out, expected) and torch.equal(x0, expected_x0)


@pytest.mark.parametrize("library", LIBRARIES, ids=IDS)
@pytest.mark.parametrize("absent", ["every", "c3"])
def test_zero_step_coefficients_drop_infinite_inputs(libraries, library, absent):
    """Inputs whose coefficients are all 0 do not reach the output, infinite or NaN."""
    names = contract.STEP_COEFS
    table = torch.rand(2, len(names)) + 0.5
    poisoned = {"every": ["m2", "prev_x0", "noise"], "c3": ["noise"]}[absent]
    zero = {"m2": ["e3"], "prev_x0": ["r"], "noise": ["c3"]}
    for name in poisoned:
        for coef in zero[name]:
            table[:, names.index(coef)] = 0.0
    x, m = torch.randn(2, 5), torch.randn(2, 5)
    bad = torch.full((2, 5), INF)
    bad[1] = math.nan
    inputs = {name: (bad if name in poisoned else torch.randn(2, 5)) for name in ["m2", "prev_x0", "noise"]}
    step = getattr(libraries[library], "diffusion_step")
    out, _ = step(x, m, None, inputs["m2"], None, inputs["prev_x0"], table, 0.0, 0.0, inputs["noise"], None, False)
    clean = {name: (torch.zeros(2, 5) if name in poisoned else value) for name, value in inputs.items()}
    expected, _ = step(x, m, None, clean["m2"], None, clean["prev_x0"], table, 0.0, 0.0, clean["noise"], None, False)
    assert out.isfinite().all() and torch.equal(out, expected)


@pytest.mark.parametrize("library", LIBRARIES, ids=IDS)
@pytest.mark.parametrize("exact", [False, True], ids=["paper", "exact"])
@pytest.mark.parametrize("domain", list(contract.DOMAINS))
def test_add_noise_zero_coefficient_drops_infinite_values(libraries, library, domain, exact):
    """a == 0 drops an infinite x0, s == 0 an infinite noise: the rest of x_t is computed as if
    the dropped value were 0."""
    code = contract.DOMAINS.index(domain)
    add_noise = getattr(libraries[library], "add_noise")
    x0 = torch.randn(2, 1, 5, 6)
    noise = torch.randn(contract.noise_shape(x0.shape, domain, exact))
    coefs = torch.tensor([[0.0, 0.7], [0.8, 0.0]])  # sample 0: a == 0; sample 1: s == 0
    x0_bad, noise_bad = x0.clone(), noise.clone()
    x0_bad[0] = INF
    noise_bad[1] = -INF
    out, _ = add_noise(x0_bad, coefs, code, exact, noise_bad, None, False)
    x0_clean, noise_clean = x0.clone(), noise.clone()
    x0_clean[0], noise_clean[1] = 0.0, 0.0
    expected, _ = add_noise(x0_clean, coefs, code, exact, noise_clean, None, False)
    assert out.isfinite().all() and torch.equal(out, expected)


@pytest.mark.parametrize("library", LIBRARIES, ids=IDS)
@pytest.mark.parametrize("coef", ["r", "a0", "c1"])
def test_infinite_coefficient_gives_the_specification_step(libraries, library, coef):
    """An infinite coefficient (a degenerate table, e.g. DPM's r when t_last == t) meets the
    infinities of the specification's term-by-term form: the CPU kernel does not fold it."""
    names = contract.STEP_COEFS
    table = torch.rand(2, len(names), dtype=torch.float64) + 0.5
    table[0, names.index(coef)] = INF
    x, m, prev = (torch.randn(2, 6, dtype=torch.float64) for _ in range(3))
    step = getattr(libraries[library], "diffusion_step")
    out, x0 = step(x, m, None, None, None, prev, table, 0.0, 0.0, None, None, True)
    expected, expected_x0 = spec.diffusion_step(x, m, None, None, None, prev, table, 0.0, 0.0, None, None, True)
    torch.testing.assert_close(out, expected, equal_nan=True)
    torch.testing.assert_close(x0, expected_x0, equal_nan=True)
