"""The DCT Poisson solve and reconstruction: every backend against the reference, scipy's
DCT as an independent oracle, the accuracy contract, autograd, opcheck, compile, errors."""

import math

import numpy as np
import pytest
import scipy.fft
import torch

import gddm_kernels as gk
from gddm_kernels import reference

from conftest import FAST_CASES, HAS_CUDA, supports

SHAPES = [(1, 1), (1, 9), (9, 1), (2, 2), (37, 53), (64, 64), (257, 255)]  # CPU: the first four by direct sums
# Norm-relative error of a solve against the float64 reference, per dtype. Float32 solves of
# white-noise right-hand sides are limited by the conditioning (~(size/pi)^2) times the FFT's
# rounding; half types by the output rounding.
SOLVE_TOLERANCE = {torch.float64: 1e-12, torch.float32: 5e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}
INTERPRETER_MAX_PIXELS = 64 * 64
BACKENDS_F64 = ["reference", "cpu"] + (["cuda"] if HAS_CUDA else [])
DEVICE = {"reference": "cpu", "cpu": "cpu", "cuda": "cuda"}


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.cpu().double(), expected.cpu().double()
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-300)).item()


def centred(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean((-1, -2), keepdim=True)


def natural_image(size: int) -> torch.Tensor:
    """scikit-image's bundled camera photograph, resized to size x size, in [0, 1]."""
    skimage_data = pytest.importorskip("skimage.data")
    img = torch.tensor(skimage_data.camera(), dtype=torch.float64)[None, None] / 255
    return torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear")[0, 0]


def scipy_solve(f: np.ndarray) -> np.ndarray:
    """Independent oracle: scipy's DCT-II (2x our unnormalised X), the same eigenvalues."""
    H, W = f.shape
    X = scipy.fft.dctn(f, type=2)
    lam = 0.25 * (2 * np.cos(np.pi * np.arange(H) / H)[:, None] - 2 + 2 * np.cos(np.pi * np.arange(W) / W)[None] - 2)
    lam[0, 0] = 1.0
    Y = X / lam
    Y[0, 0] = 0.0
    return scipy.fft.idctn(Y, type=2)


@pytest.mark.parametrize("hw", [(1, 1), (1, 7), (7, 1), (16, 16), (37, 53), (128, 96)], ids=str)
def test_reference_matches_scipy(hw):
    f = torch.randn(*hw, dtype=torch.float64)
    expected = torch.from_numpy(scipy_solve(f.numpy()))
    torch.testing.assert_close(reference.poisson_solve(f), expected, atol=1e-11, rtol=1e-11)


@pytest.mark.parametrize("backend", BACKENDS_F64[1:])
@pytest.mark.parametrize("hw", [(37, 53), (256, 256), (1021, 1023), (1024, 1024)], ids=str)
def test_fast_solve_matches_scipy_float64(hw, backend):
    """Two float64 solvers of a white-noise right-hand side agree to eps * condition number."""
    f = torch.randn(*hw, dtype=torch.float64)
    u = gk.poisson_solve(f.to(DEVICE[backend]), backend=backend)
    assert relative_error(u, torch.from_numpy(scipy_solve(f.numpy()))) < 1e-10


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=str)
@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (1, 7), (9, 17), (129, 256), (3, 2, 33, 64)], ids=str)
def test_cpu_spectrum_transposition(shape, dtype):
    """gddm_C.spectrum_rows (the CPU pipeline's strip transposition) is a plain transpose."""
    spectrum_t = torch.randn(*shape, dtype=dtype)
    rows = torch.ops.gddm_C.spectrum_rows(spectrum_t)
    assert rows.is_contiguous()
    torch.testing.assert_close(rows, spectrum_t.mT, rtol=0, atol=0)


CPU_SOLVE_SHAPES = [(1, 1), (2, 1), (1, 2), (2, 2), (3, 4), (4, 3), (32, 31), (33, 2), (37, 53),
                    (64, 63), (600, 500)]
CPU_SOLVE_PATHS = ["dct_solve", "dct_solve_fft", "dct_solve_direct"]


@pytest.mark.parametrize("path,hw", [(path, hw) for path in CPU_SOLVE_PATHS for hw in CPU_SOLVE_SHAPES
                                     if path != "dct_solve_direct" or hw[0] * hw[1] <= 64 * 64], ids=str)
def test_cpu_fused_solve_matches_scipy(path, hw):
    """gddm_C::dct_solve against scipy, and each of its paths forced (direct cosine sums up to
    64x64, their cost being O(H W (H + W))): the FFT pipeline on the transposed spectrum,
    chunked over the batch, with even and odd H and W: the self-mirrored rows 0 and H/2 and the
    mirrored pairs all go through their own code; 600x500 images make chunks of one image."""
    f = torch.randn(3, 2, *hw, dtype=torch.float64)
    u = getattr(torch.ops.gddm_C, path)(f, False, 1.0, 0.0)
    for image, solved in zip(f.flatten(0, 1), u.flatten(0, 1)):
        assert relative_error(solved, torch.from_numpy(scipy_solve(image.numpy()))) < 1e-11


@pytest.mark.parametrize("path", CPU_SOLVE_PATHS[1:])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (9, 1), (33, 5)], ids=str)
def test_cpu_solve_paths_reconstruct_with_a_mean(hw, dtype, path):
    """Each forced path of the CPU solve on gradient fields (the divergence fused into its first
    pass), with a mean, in every dtype, on a strided view."""
    g = torch.randn(2, 2, 2, hw[1], hw[0], dtype=torch.float64).to(dtype).mT
    u = getattr(torch.ops.gddm_C, path)(g, True, 0.25, 1.5)
    assert u.dtype == dtype and u.shape == (2, 2, *hw)
    assert relative_error(u, reference.reconstruct(g.double(), 1.5)) < SOLVE_TOLERANCE[dtype]


@pytest.mark.parametrize("backend,device", FAST_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("hw", SHAPES, ids=str)
def test_solve_and_reconstruct_match_reference(hw, dtype, backend, device):
    if not supports(backend, dtype):
        pytest.skip(f"{backend} does not support {dtype}")
    if backend == "triton" and device == "cpu" and hw[0] * hw[1] > INTERPRETER_MAX_PIXELS:
        pytest.skip("too slow for the Triton interpreter; runs on the GPU")
    f = torch.randn(2, 3, *hw, dtype=torch.float64)
    g = torch.randn(2, 3, 2, *hw, dtype=torch.float64)
    for mean in (0.0, 1.5):
        u = gk.poisson_solve(f.to(device, dtype), mean=mean, backend=backend)
        assert u.dtype == dtype and u.shape == f.shape
        assert relative_error(u, reference.poisson_solve(f.to(dtype).double(), mean)) < SOLVE_TOLERANCE[dtype]
        r = gk.reconstruct(g.to(device, dtype), mean=mean, backend=backend)
        assert relative_error(r, reference.reconstruct(g.to(dtype).double(), mean)) < SOLVE_TOLERANCE[dtype]


@pytest.mark.parametrize("backend,device", FAST_CASES)
@pytest.mark.parametrize("lead", [(), (4,), (2, 3), (2, 1, 3)], ids=str)
def test_leading_dims_and_layouts(lead, backend, device):
    base = torch.randn(*lead, 13, 22, dtype=torch.float32, device=device)
    inputs = [base, base[..., ::2], base.transpose(-1, -2)]
    if lead:
        inputs.append(base.movedim(0, -3).contiguous().movedim(-3, 0))
    for f in inputs:
        expected = reference.poisson_solve(f.cpu().double())
        assert relative_error(gk.poisson_solve(f, backend=backend), expected) < SOLVE_TOLERANCE[torch.float32]
    g = torch.randn(2, 15, 11, *lead, device=device).movedim((0, 1, 2), (-3, -2, -1))  # channels-last-like
    expected = reference.reconstruct(g.cpu().double())
    assert relative_error(gk.reconstruct(g, backend=backend), expected) < SOLVE_TOLERANCE[torch.float32]


@pytest.mark.parametrize("backend", BACKENDS_F64)
@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (37, 53), (97, 89), (1024, 1024)], ids=str)
def test_contract_float64_roundtrip(hw, backend):
    if backend == "reference" and hw[0] > 256:
        pytest.skip("the O(N^3) reference is checked against scipy up to 128x96")
    x = torch.randn(2, *hw, dtype=torch.float64, device=DEVICE[backend])
    u = gk.poisson_solve(gk.laplacian(x), backend=backend)
    assert (u - centred(x)).norm() <= 1e-12 * max(centred(x).norm().item(), 1.0)
    r = gk.reconstruct(gk.gradient(x), backend=backend)
    assert (r - centred(x)).norm() <= 1e-12 * max(centred(x).norm().item(), 1.0)


@pytest.mark.parametrize("backend,device", FAST_CASES)
@pytest.mark.parametrize("size", [1, 2, 17, 64, 128], ids=str)
def test_contract_float32_roundtrip_random(size, backend, device):
    x = torch.randn(3, size, size, device=device)
    u = gk.poisson_solve(gk.laplacian(x, backend=backend), backend=backend)
    assert (u - centred(x)).norm() <= 1e-5 * max(centred(x).norm().item(), 1e-30)


@pytest.mark.parametrize("size", [256, 1024])
def test_contract_float32_roundtrip_natural_image(size):
    """At 1024^2 a white-noise image's float32 Laplacian alone carries ~3e-5 relative error
    after an exact solve (conditioning ~(N/pi)^2); natural images meet 1e-5 in float32."""
    x = natural_image(size).float()
    u = gk.poisson_solve(gk.laplacian(x))
    assert relative_error(u, centred(x)) < 1e-5
    assert relative_error(gk.reconstruct(gk.gradient(x)), centred(x)) < 1e-5


def test_non_integrable_field_gets_least_squares_answer():
    g = torch.randn(2, 2, 31, 29, dtype=torch.float64)
    u = gk.reconstruct(g)
    residual = gk.divergence(gk.gradient(u) - g)  # normal equations of argmin ||grad u - g||
    assert residual.abs().max() < 1e-10
    assert u.mean((-1, -2)).abs().max() < 1e-12
    worse = u + 1e-3 * torch.randn_like(u)
    assert (gk.gradient(worse) - g).square().sum() > (gk.gradient(u) - g).square().sum()


def test_solution_satisfies_poisson_equation_and_mean():
    f = torch.randn(3, 40, 50, dtype=torch.float64)
    u = gk.poisson_solve(f, mean=-2.0)
    torch.testing.assert_close(gk.laplacian(u), centred(f), atol=1e-11, rtol=0)
    torch.testing.assert_close(u.mean((-1, -2)), torch.full((3,), -2.0, dtype=torch.float64))


@pytest.mark.parametrize("backend", BACKENDS_F64)
def test_gradcheck_float64(backend):
    device = DEVICE[backend]
    f = torch.randn(2, 5, 6, dtype=torch.float64, device=device, requires_grad=True)
    g = torch.randn(2, 2, 5, 6, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gk.poisson_solve(t, mean=0.3, backend=backend), (f,))
    assert torch.autograd.gradcheck(lambda t: gk.reconstruct(t, backend=backend), (g,))
    assert torch.autograd.gradgradcheck(lambda t: gk.poisson_solve(t, backend=backend), (f,))


@pytest.mark.parametrize("backend,device", [pytest.param("reference", "cpu", id="reference"), *FAST_CASES])
def test_opcheck(backend, device):
    f = torch.randn(2, 6, 7, device=device, requires_grad=True)
    g = torch.randn(2, 2, 6, 7, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.gddm.poisson_solve.default, (f, 0.5, backend))
    torch.library.opcheck(torch.ops.gddm.reconstruct.default, (g, 0.0, backend))


def test_compile_fullgraph():
    def roundtrip(x):
        return gk.reconstruct(gk.gradient(x)) + gk.poisson_solve(gk.laplacian(x))

    x = torch.randn(2, 12, 10, requires_grad=True)
    out = torch.compile(roundtrip, fullgraph=True)(x)
    torch.testing.assert_close(out, 2 * centred(x), atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert x.grad is not None


def test_nan_propagates_to_its_own_image_only():
    f = torch.randn(2, 8, 8)
    f[0, 3, 3] = math.nan
    u = gk.poisson_solve(f)
    assert u[0].isnan().all() and u[1].isfinite().all()


def test_empty_input():
    assert gk.poisson_solve(torch.empty(0, 5, 5)).shape == (0, 5, 5)
    assert gk.reconstruct(torch.empty(3, 2, 0, 5)).shape == (3, 0, 5)


def test_bad_input():
    with pytest.raises(ValueError, match=r"gddm\.poisson_solve: argument `f` must have shape"):
        gk.poisson_solve(torch.randn(5))
    with pytest.raises(TypeError, match=r"gddm\.poisson_solve: argument `f` must have a floating dtype"):
        gk.poisson_solve(torch.ones(4, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"gddm\.reconstruct: argument `g` must be a gradient field"):
        gk.reconstruct(torch.randn(3, 4, 4))
    with pytest.raises(ValueError, match=r"argument `method` must be one of"):
        gk.poisson_solve(torch.randn(4, 4), method="jacobi")
