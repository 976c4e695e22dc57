"""The multigrid solve through the op layer: every fast backend's fused stages against the
reference cycles, the 10-cycle requirement, autograd, opcheck, compile and errors."""

import math

import pytest
import torch

import gddm_kernels as gk
from gddm_kernels.reference import multigrid as ref_mg

from conftest import FAST_CASES, HAS_CUDA

F64_BACKENDS = ["cpu"] + (["cuda"] if HAS_CUDA else [])
DEVICE = {"reference": "cpu", "cpu": "cpu", "cuda": "cuda"}
INTERPRETER_SHAPES = [(1, 1), (1, 7), (7, 1), (2, 3), (13, 11)]


def centred(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean((-1, -2), keepdim=True)


def relative_residual(u: torch.Tensor, f: torch.Tensor) -> float:
    b = centred(f.double())
    r = b - gk.laplacian(u.double(), backend="reference")
    return float((r.flatten(-2).norm(dim=-1) / b.flatten(-2).norm(dim=-1).clamp_min(1e-30)).max())


@pytest.mark.parametrize("backend", F64_BACKENDS)
@pytest.mark.parametrize("hw", [(1, 1), (1, 9), (9, 1), (3, 2), (37, 53), (64, 64), (257, 255)], ids=str)
def test_fused_stages_reproduce_reference_cycles_float64(hw, backend):
    f = torch.randn(2, *hw, dtype=torch.float64)
    expected_u, expected_history = ref_mg.multigrid_solve(f, tol=1e-10, max_cycles=12, return_history=True)
    u, history = gk.poisson_solve(f.to(DEVICE[backend]), method="multigrid", tol=1e-10, max_cycles=12,
                                  return_history=True, backend=backend)
    torch.testing.assert_close(history.cpu(), expected_history, atol=1e-12, rtol=1e-6)
    torch.testing.assert_close(u.cpu(), expected_u, atol=1e-10 * max(1.0, expected_u.abs().max().item()), rtol=0)


@pytest.mark.parametrize("backend,device", FAST_CASES)
@pytest.mark.parametrize("hw", INTERPRETER_SHAPES, ids=str)
def test_fused_stages_match_reference_float32(hw, backend, device):
    f = torch.randn(2, *hw)
    expected = ref_mg.multigrid_solve(f, tol=1e-6, max_cycles=6)
    u = gk.poisson_solve(f.to(device), method="multigrid", tol=1e-6, max_cycles=6, backend=backend)
    torch.testing.assert_close(u.cpu(), expected, atol=1e-5 * max(1.0, expected.abs().max().item()), rtol=0)
    assert relative_residual(u, f) < 2e-6


@pytest.mark.parametrize("backend,device", FAST_CASES)
@pytest.mark.parametrize("name,dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_half_inputs_are_solved_in_float32(name, dtype, backend, device):
    f = torch.randn(3, 9, 10).to(device, dtype)
    u = gk.poisson_solve(f, method="multigrid", backend=backend)
    assert u.dtype == dtype
    exact = gk.poisson_solve(f.double().cpu())
    assert ((u.cpu().double() - exact).norm() / exact.norm()).item() < 1e-2


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", ["white-noise", "camera"])
def test_requirement_1e6_within_10_v_cycles_at_1024(case, dtype):
    if case == "camera":
        skimage_data = pytest.importorskip("skimage.data")
        image = torch.tensor(skimage_data.camera(), dtype=torch.float64)[None, None] / 255
        f = gk.laplacian(torch.nn.functional.interpolate(image, size=(1024, 1024), mode="bilinear")[0, 0])
    else:
        f = torch.randn(1024, 1024, dtype=torch.float64)
    u, history = gk.poisson_solve(f.to(dtype), method="multigrid", tol=1e-6, max_cycles=10, return_history=True)
    assert history[-1] <= 1e-6 and len(history) - 1 <= 10, history.tolist()
    exact = gk.poisson_solve(f)
    assert ((u.double() - exact).norm() / exact.norm()).item() < 1e-5


def test_warm_start_and_fmg_need_fewer_cycles():
    f = torch.randn(2, 100, 90, dtype=torch.float64)
    _, cold = gk.poisson_solve(f, method="multigrid", tol=1e-9, max_cycles=20, return_history=True)
    guess = gk.poisson_solve(f) + 1e-6 * torch.randn_like(f)
    _, warm = gk.poisson_solve(f, method="multigrid", tol=1e-9, max_cycles=20, x0=guess, return_history=True)
    _, fmg = gk.poisson_solve(f, method="multigrid", tol=1e-9, max_cycles=20, cycle="FMG", return_history=True)
    assert len(warm) < len(cold) and len(fmg) <= len(cold)


def test_target_mean_and_history_padding():
    f = torch.randn(3, 20, 21, dtype=torch.float64)
    u, history = torch.ops.gddm.multigrid_solve(f, None, 1e-8, 15, "V", 2.5, "cpu")
    torch.testing.assert_close(u.mean((-1, -2)), torch.full((3,), 2.5, dtype=torch.float64))
    assert history.shape == (16,) and history.dtype == torch.float64
    ran = int((~history.isnan()).sum())
    assert 1 < ran < 16 and history[ran - 1] <= 1e-8 and history[ran:].isnan().all()


@pytest.mark.parametrize("backend", ["reference", *F64_BACKENDS])
def test_gradcheck_float64(backend):
    f = torch.randn(2, 5, 6, dtype=torch.float64, device=DEVICE[backend], requires_grad=True)

    def solve(t):
        return gk.poisson_solve(t, method="multigrid", tol=1e-13, max_cycles=40, backend=backend)

    assert torch.autograd.gradcheck(solve, (f,))


@pytest.mark.parametrize("backend,device", [pytest.param("reference", "cpu", id="reference"), *FAST_CASES])
def test_opcheck(backend, device):
    f = torch.randn(2, 6, 5, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.gddm.multigrid_solve.default, (f, None, 1e-5, 3, "V", 0.0, backend))
    torch.library.opcheck(torch.ops.gddm.multigrid_solve.default, (f, torch.zeros_like(f), 1e-5, 2, "FMG", 1.0, backend))


def test_compile_fullgraph():
    def solve(f):
        return torch.ops.gddm.multigrid_solve(f, None, 1e-8, 10, "V", 0.0, "auto")[0]

    f = torch.randn(2, 16, 12, dtype=torch.float64)
    torch.testing.assert_close(torch.compile(solve, fullgraph=True)(f), solve(f))


def test_reconstruct_by_multigrid_matches_dct():
    g = torch.randn(2, 2, 33, 30, dtype=torch.float64)
    u, history = gk.reconstruct(g, method="multigrid", tol=1e-11, max_cycles=30, return_history=True)
    assert history[-1] <= 1e-11
    torch.testing.assert_close(u, gk.reconstruct(g), atol=1e-9, rtol=0)


def test_non_finite_input_spoils_only_its_own_image():
    f = torch.randn(2, 12, 12, dtype=torch.float64)
    f[0, 5, 5] = math.inf
    u = gk.poisson_solve(f, method="multigrid", tol=1e-8, max_cycles=12)
    assert not u[0].isfinite().any()
    torch.testing.assert_close(u[1], gk.poisson_solve(f[1]), atol=1e-7, rtol=0)


def test_bad_arguments():
    f = torch.randn(8, 8)
    with pytest.raises(ValueError, match=r"argument `tol` must be a number > 0, got 0"):
        gk.poisson_solve(f, method="multigrid", tol=0)
    with pytest.raises(ValueError, match=r"argument `max_cycles` must be an integer >= 1"):
        gk.poisson_solve(f, method="multigrid", max_cycles=0)
    with pytest.raises(ValueError, match=r"argument `cycle` must be one of"):
        gk.poisson_solve(f, method="multigrid", cycle="W")
    with pytest.raises(ValueError, match=r"argument `x0` must match `f`"):
        gk.poisson_solve(f, method="multigrid", x0=torch.zeros(8, 9))
    with pytest.raises(TypeError, match=r"argument `x0` must have a floating dtype"):
        gk.poisson_solve(f, method="multigrid", x0=torch.zeros(8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"tol, return_history only apply to method='multigrid'"):
        gk.poisson_solve(f, tol=1e-3, return_history=True)
    with pytest.raises(ValueError, match=r"argument `method` must be one of \('dct', 'multigrid'\)"):
        gk.reconstruct(torch.randn(2, 8, 8), method="sor")


def test_empty_input():
    u, history = torch.ops.gddm.multigrid_solve(torch.empty(0, 4, 4), None, 1e-6, 3, "V", 0.0, "auto")
    assert u.shape == (0, 4, 4) and history.shape == (4,)
