"""The CUDA kernels of csrc/cuda, executed on the CPU: every launcher of the emulation module
(tests/cuda_emulation.py: the same .cu sources and host launchers compiled as C++, each launch
a host loop over its real grid with CUDA's launch limits enforced) against the reference, on
launch-boundary shapes (H and W one below, at and one above the 8 x 32 block; 1xN, Nx1, 1x1),
strided inputs, every dtype, and sizes whose grid would pass CUDA's limits (more than 65535
blocks of rows or of images): the kernels cap the grid and loop over the rest."""

import pytest
import torch

import gddm_kernels  # noqa: F401  (loads gddm_kernels._C: the CPU kernels compared with)
from gddm_kernels import diffusion as fused
from gddm_kernels._multigrid import fused_stages, solve as multigrid_solve
from gddm_kernels._spectral import RECONSTRUCT_SCALE
from gddm_kernels import _diffusion_contract as contract
from gddm_kernels.reference import fused_diffusion as spec
from gddm_kernels.reference import multigrid as ref_mg
from gddm_kernels.reference import poisson as ref_poisson
from gddm_kernels.reference import random as ref_random
from gddm_kernels.reference import stencils as ref
from gddm_kernels.schedules import cosine_schedule, linear_schedule

import cuda_emulation
from conftest import assert_close_to_oracle

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
BLOCK_H, BLOCK_W = 8, 32  # the 2-d kernels' block (csrc/cuda/*_kernels.cu)
MAX_GRID_YZ = 65535
# (B0, B1, H, W): one below, at and one above the block in each dim, single rows, columns, pixels.
SHAPES = [(1, 1, 1, 1), (1, 1, 1, 33), (1, 1, 33, 1), (1, 1, BLOCK_H - 1, BLOCK_W - 1), (1, 1, BLOCK_H, BLOCK_W),
          (1, 1, BLOCK_H + 1, BLOCK_W + 1), (2, 3, 9, 31), (3, 1, 17, 64)]
LAYOUTS = ["contiguous", "column-step", "transposed"]
TALL = BLOCK_H * MAX_GRID_YZ + 9  # rows: ceil(TALL / 8) blocks would exceed gridDim.y's limit
MANY = MAX_GRID_YZ + 7  # images: one block each would exceed gridDim.z's (and .y's) limit
ACC = {torch.float64: torch.float64}  # arithmetic dtype: float32 for the others


@pytest.fixture(scope="module")
def emu():
    return cuda_emulation.load()


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return ACC.get(dtype, torch.float32)


def images(shape: tuple[int, ...], dtype: torch.dtype, layout: str, field: bool = False) -> torch.Tensor:
    """A (B0, B1, [2,] H, W) tensor of `dtype` with the given memory layout."""
    B0, B1, H, W = shape
    inner = (2,) if field else ()
    if layout == "contiguous":
        x = torch.randn(B0, B1, *inner, H, W, dtype=torch.float64)
    elif layout == "column-step":  # every other column of a wider image: s_w = 2
        x = torch.randn(B0, B1, *inner, H, 2 * W + 1, dtype=torch.float64)[..., 1::2]
    else:  # rows and columns transposed, batch dims permuted: s_w = H, s_h = 1
        x = torch.randn(B1, *inner, W, H, B0, dtype=torch.float64).movedim(-1, 0).transpose(-1, -2)
    return x.to(dtype)


def close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    """Within the dtype's tolerance, relative to the largest expected value (at least 1)."""
    atol, _ = {torch.float64: (1e-12, 0), torch.float32: (1e-5, 0), torch.float16: (2e-3, 0),
               torch.bfloat16: (1.6e-2, 0)}[dtype]
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    assert actual.dtype == dtype and actual.shape == expected.shape
    torch.testing.assert_close(actual.double(), expected.double(), atol=atol * scale, rtol=0)


# ---- the emulator's launch limits ---------------------------------------------------------------

@pytest.mark.parametrize("grid,block,message", [
    ((1, 1, 1), (1025, 1, 1), "blockDim.x"),
    ((1, 1, 1), (32, 32, 2), "threads per block"),
    ((1, 1, 1), (1, 1, 65), "blockDim.z"),
    ((1, MAX_GRID_YZ + 1, 1), (32, 8, 1), "gridDim.y"),
    ((1, 1, MAX_GRID_YZ + 1), (32, 8, 1), "gridDim.z"),
    ((2**31, 1, 1), (256, 1, 1), "gridDim.x"),
    ((0, 1, 1), (256, 1, 1), "gridDim.x"),
])
def test_emulator_refuses_what_cuda_refuses(emu, grid, block, message):
    with pytest.raises(RuntimeError, match=message):
        emu.check_launch(list(grid), list(block))


def test_emulator_accepts_cuda_limits(emu):
    emu.check_launch([2**31 - 1, MAX_GRID_YZ, MAX_GRID_YZ], [1024, 1, 1])
    emu.check_launch([1, 1, 1], [16, 1, 64])


# ---- stencils ----------------------------------------------------------------------------------

STENCILS = {
    "gradient": (False, lambda x, s: ref.gradient(x, s)),
    "divergence": (True, lambda g, s: ref.divergence(g, s)),
    "laplacian": (False, lambda x, s: ref.laplacian(x, s)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", list(STENCILS))
def test_stencils(emu, op, dtype, shape, layout):
    field, reference = STENCILS[op]
    x = images(shape, dtype, layout, field)
    out = getattr(emu, op)(x, 0.5)
    assert_close_to_oracle(out, reference(x.double(), 0.5), dtype)
    # Same arithmetic as the C++ CPU kernels: equal to the last bit.
    assert torch.equal(out, getattr(torch.ops.gddm_C, op)(x, 0.5))


@pytest.mark.parametrize("op", list(STENCILS))
def test_stencils_beyond_grid_limits(emu, op):
    """More rows (gridDim.y) and more images (gridDim.z) than one block each could cover; the
    whole grid is emulated (about a second per launch)."""
    field, reference = STENCILS[op]
    for shape in [(1, 1, TALL, 1), (MANY, 1, 1, 2), (7, MANY // 7 + 1, 2, 1)]:
        x = images(shape, torch.float32, "contiguous", field)
        assert_close_to_oracle(getattr(emu, op)(x, 2.0), reference(x.double(), 2.0), torch.float32)


# ---- cosine-transform Poisson solve ------------------------------------------------------------

def dct_source(n: int) -> torch.Tensor:
    """csrc/poisson.h's dct_source for m = 0 .. n-1: even samples ascending, odd descending."""
    m = torch.arange(n)
    return torch.where(m < (n + 1) // 2, 2 * m, 2 * (n - 1 - m) + 1)


def reordered(v: torch.Tensor) -> torch.Tensor:
    return v[..., dct_source(v.shape[-2]), :][..., dct_source(v.shape[-1])]


@pytest.mark.parametrize("field", [False, True], ids=["image", "field"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dct_reorder(emu, dtype, shape, layout, field):
    x = images(shape, dtype, layout, field)
    out = emu.dct_reorder(x, field, 0.25)
    base = ref.divergence(x.double()) if field else x.double()
    assert_close_to_oracle(out, reordered(0.25 * base), acc_dtype(dtype))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dct_unreorder(emu, dtype, shape):
    v = torch.randn(shape, dtype=acc_dtype(dtype))
    out = emu.dct_unreorder(v, dtype)
    assert out.dtype == dtype and torch.equal(reordered(out.to(v.dtype)), v.to(dtype).to(v.dtype))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_spectral_solve_matches_cpu_column_solve(emu, dtype, shape):
    """The in-place middle step, against the CPU kernel's version on the transposed spectrum."""
    H, W = shape[-2:]
    spectrum = torch.fft.rfft2(torch.randn(shape, dtype=dtype))
    columns = spectrum.transpose(-1, -2).contiguous()
    emu.spectral_solve_(spectrum, H, W, 0.5)
    torch.ops.gddm_C.spectral_solve_columns_(columns, H, W, 0.5)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    scale = max(1.0, columns.abs().max().item())
    torch.testing.assert_close(spectrum, columns.transpose(-1, -2), atol=tol * scale, rtol=0)


# Every layout in float32, one per other dtype (the passes above cover every combination).
SOLVE_CASES = [(torch.float32, layout) for layout in LAYOUTS] + [
    (torch.float64, "contiguous"), (torch.float16, "column-step"), (torch.bfloat16, "transposed")]


@pytest.mark.parametrize("field", [False, True], ids=["poisson_solve", "reconstruct"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype,layout", SOLVE_CASES, ids=lambda c: str(c))
def test_dct_solve(emu, dtype, shape, layout, field):
    """reorder, rfft2, spectral solve, irfft2, unreorder (the GPU path) against the reference."""
    x = images(shape, dtype, layout, field)
    out = row_fft_solve(x, field, RECONSTRUCT_SCALE if field else 1.0, 0.5, emu)
    expected = ref_poisson.reconstruct(x.double(), 0.5) if field else ref_poisson.poisson_solve(x.double(), 0.5)
    close(out, expected, dtype)


def test_dct_passes_beyond_grid_limits(emu):
    """Images taller than 65535 blocks of 8 rows (the spectral solve's rows are p <= H/2, so
    twice as tall), and more images than 65535; whole grids emulated."""
    for shape in [(1, 1, TALL, 1), (MANY, 1, 1, 2)]:
        x = torch.randn(shape)
        assert_close_to_oracle(emu.dct_reorder(x, False, 1.0), reordered(x.double()), torch.float32)
        v = torch.randn(shape)
        assert torch.equal(reordered(emu.dct_unreorder(v, torch.float32)), v)
    for shape in [(1, 1, 2 * TALL, 1), (MANY, 1, 2, 1)]:
        H, W = shape[-2:]
        spectrum = torch.fft.rfft2(torch.randn(shape, dtype=torch.float64))
        columns = spectrum.transpose(-1, -2).contiguous()
        emu.spectral_solve_(spectrum, H, W, 0.0)
        torch.ops.gddm_C.spectral_solve_columns_(columns, H, W, 0.0)
        torch.testing.assert_close(spectrum, columns.transpose(-1, -2), atol=1e-9, rtol=1e-9)


# ---- multigrid ---------------------------------------------------------------------------------

MG_SHAPES = [(1, 1), (1, 33), (33, 1), (7, 31), (8, 32), (9, 33), (17, 16)]
MG_TOL = {torch.float64: 1e-12, torch.float32: 2e-5}


def mg_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    scale = max(1.0, expected.abs().max().item())
    tol = MG_TOL[expected.dtype]
    torch.testing.assert_close(actual, expected, atol=tol * scale, rtol=0)


def levels(H: int, W: int, dtype: torch.dtype) -> list[ref_mg.Level]:
    """The finest level (unit widths) and the next (unequal widths where an axis is odd)."""
    finest = ref_mg.build_hierarchy(H, W, dtype)
    return [finest] + ([finest.coarse] if finest.coarse is not None else [])


@pytest.mark.parametrize("shape", MG_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_multigrid_stages(emu, dtype, shape):
    for level in levels(*shape, dtype):
        H, W = level.shape
        u, f = torch.randn(3, H, W, dtype=dtype), torch.randn(3, H, W, dtype=dtype)
        smoothed = u.clone()
        for color in (0, 1):
            emu.mg_smooth_(smoothed, f, level.widths_y, level.widths_x, color)
        mg_close(smoothed, ref_mg.smooth(u, f, 1, level))
        mg_close(emu.mg_residual_restrict(u, f, level.widths_y, level.widths_x), ref_mg.residual_restrict(u, f, level))
        if level.coarse is not None:
            ty, tx = level.transfer_y, level.transfer_x
            e = torch.randn(3, *level.coarse.shape, dtype=dtype)
            corrected = u.clone()
            emu.mg_prolong_correct_(corrected, e, ty.lo, ty.hi, ty.weight_hi, tx.lo, tx.hi, tx.weight_hi)
            mg_close(corrected, ref_mg.prolong_correct(u, e, level))


def test_multigrid_solve(emu):
    """V-cycles with the emulated stages converge to the reference Poisson solution."""
    f = torch.randn(2, 19, 24, dtype=torch.float64)
    stages = fused_stages(emu, lambda x: ref.laplacian(x))
    u, _ = multigrid_solve(f, stages, tol=1e-10, max_cycles=60)
    torch.testing.assert_close(u, ref_poisson.poisson_solve(f), atol=1e-7, rtol=0)


def test_multigrid_beyond_grid_limits(emu):
    """Taller than 65535 blocks of rows (the restriction's coarse rows too) and more grids than
    65535, on unit-width levels; whole grids emulated."""
    for batch, H, W in [(1, 2 * TALL, 1), (MANY, 1, 2)]:
        level = ref_mg.build_hierarchy(H, W, torch.float64) if H < 64 else None
        wy, wx = torch.ones(H, dtype=torch.float64), torch.ones(W, dtype=torch.float64)
        u, f = torch.randn(batch, H, W, dtype=torch.float64), torch.randn(batch, H, W, dtype=torch.float64)
        smoothed, cpu = u.clone(), u.clone()
        emu.mg_smooth_(smoothed, f, wy, wx, 0)
        torch.ops.gddm_C.mg_smooth_(cpu, f, wy, wx, 0)
        assert torch.equal(smoothed, cpu)
        assert torch.equal(emu.mg_residual_restrict(u, f, wy, wx), torch.ops.gddm_C.mg_residual_restrict(u, f, wy, wx))
        Hc, Wc = ref_mg.coarse_shape(H, W)
        lo_y, hi_y = torch.arange(H) // 2, (torch.arange(H) // 2 + 1).clamp(max=Hc - 1)
        lo_x, hi_x = torch.arange(W) // 2, (torch.arange(W) // 2 + 1).clamp(max=Wc - 1)
        w_y, w_x = torch.rand(H, dtype=torch.float64), torch.rand(W, dtype=torch.float64)
        e = torch.randn(batch, Hc, Wc, dtype=torch.float64)
        corrected, cpu = u.clone(), u.clone()
        emu.mg_prolong_correct_(corrected, e, lo_y, hi_y, w_y, lo_x, hi_x, w_x)
        torch.ops.gddm_C.mg_prolong_correct_(cpu, e, lo_y, hi_y, w_y, lo_x, hi_x, w_x)
        assert torch.equal(corrected, cpu)
        if level is not None:
            mg_close(emu.mg_residual_restrict(u, f, wy, wx), ref_mg.residual_restrict(u, f, level))


# ---- diffusion: noise-add ----------------------------------------------------------------------


def row_fft_solve(x, field, scale, mean, kernels):
    """The CUDA backend's DCT solve (csrc/cuda/poisson_cuda.cpp dct_solve) with the given passes."""
    H, W = x.shape[-2:]
    spectrum = torch.fft.rfft2(kernels.dct_reorder(x, field, scale))
    kernels.spectral_solve_(spectrum, H, W, mean)
    return kernels.dct_unreorder(torch.fft.irfft2(spectrum, s=(H, W)), x.dtype)


DOMAINS = list(contract.DOMAINS)
NOISE_SHAPES = [(2, 1, 1, 1), (2, 1, 1, 40), (2, 1, 40, 1), (3, 2, BLOCK_H - 1, BLOCK_W + 1), (1, 3, BLOCK_H, BLOCK_W)]


def noise_coefs(batch: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.rand(batch, 2, dtype=torch.float64).to(acc_dtype(dtype))


@pytest.mark.parametrize("shape", NOISE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("exact", [False, True], ids=["paper", "exact"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_add_noise_given(emu, domain, exact, dtype, shape):
    x0 = torch.randn(shape, dtype=torch.float64).to(dtype)
    coefs = noise_coefs(shape[0], dtype)
    noise = torch.randn(contract.noise_shape(x0.shape, domain, exact), dtype=torch.float64).to(dtype)
    out, written = emu.add_noise(x0, coefs, DOMAINS.index(domain), exact, noise, None, True)
    expected, _ = spec.add_noise(x0.double(), coefs.double(), domain, exact, noise.double(), None, False)
    close(out, expected, dtype)
    assert written.numel() == 0


@pytest.mark.parametrize("shape", NOISE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("exact", [False, True], ids=["paper", "exact"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_add_noise_philox(emu, domain, exact, dtype, shape):
    """In-kernel noise: equal to the CPU kernel's to the last bit, and to the Philox stream of
    reference.random; x_t as the reference gives it with that noise."""
    x0 = torch.randn(shape, dtype=torch.float64).to(dtype)
    coefs = noise_coefs(shape[0], dtype)
    seed = torch.tensor([0x1234_5678_9ABC], dtype=torch.int64)
    code = DOMAINS.index(domain)
    out, noise = emu.add_noise(x0, coefs, code, exact, None, seed, True)
    cpu_out, cpu_noise = torch.ops.gddm_C.add_noise(x0, coefs, code, exact, None, seed, True)
    assert torch.equal(noise, cpu_noise)
    stream = ref_random.normal(int(seed), contract.noise_shape(x0.shape, domain, exact))
    noise_dtype = torch.float32 if dtype == torch.float64 else dtype  # the stream is float32
    close(noise.to(noise_dtype), stream.to(noise_dtype).double(), noise_dtype)
    expected, _ = spec.add_noise(x0.double(), coefs.double(), domain, exact, noise.double(), None, False)
    close(out, expected, dtype)
    close(cpu_out, expected, dtype)


@pytest.mark.parametrize("domain", DOMAINS)
def test_add_noise_beyond_grid_limits(emu, domain):
    """More rows than 65535 blocks cover, and more images than 65535; whole grids emulated."""
    for shape in [(1, 1, TALL, 1), (1, MANY, 1, 3), (MANY, 1, 2, 1)]:
        x0 = torch.randn(shape)
        coefs = noise_coefs(shape[0], torch.float32)
        seed = torch.tensor([7], dtype=torch.int64)
        for exact in (False, True):
            out, noise = emu.add_noise(x0, coefs, DOMAINS.index(domain), exact, None, seed, True)
            expected, _ = spec.add_noise(x0.double(), coefs.double(), domain, exact, noise.double(), None, False)
            close(out, expected, torch.float32)
            assert torch.equal(noise, torch.ops.gddm_C.add_noise(x0, coefs, DOMAINS.index(domain), exact, None, seed,
                                                                 True)[1])


# ---- diffusion: the generic step ---------------------------------------------------------------

T, T_PREV, T_LAST = torch.tensor([999, 400, 5]), torch.tensor([900, 399, -1]), torch.tensor([1000, 500, 30])
T_UNIT, T_UNIT_PREV = torch.tensor([1.0, 0.5, 0.01]), torch.tensor([0.9, 0.0, 0.005])


def sampler_tables() -> dict[str, tuple[torch.Tensor, dict]]:
    """The coefficient table of every sampler's step (gddm_kernels.diffusion's formulas) and the
    optional inputs that sampler passes."""
    lin, cos = linear_schedule(), cosine_schedule()
    T_LAST_CLAMPED = torch.minimum(T_LAST, torch.tensor(999))
    return {
        "ddpm-eps": (fused._ddpm_coefs(T, T_PREV, lin, 1.0, "eps"), {"noise": True}),
        "ddpm-x0": (fused._ddpm_coefs(T, T_PREV, cos, 0.5, "x0"), {"noise": True}),
        "ddpm-v-clip": (fused._ddpm_coefs(T, T_PREV, lin, 1.0, "v"), {"noise": True, "clip": 1.0}),
        "ddim": (fused._ddim_coefs(T, T_PREV, lin, 0.0, 1.0, "eps", None), {}),
        "ddim-eta-clip": (fused._ddim_coefs(T, T_PREV, cos, 0.5, 1.0, "eps", 1.0), {"noise": True, "clip": 1.0}),
        "dpm-first": (fused._dpm_coefs(T, T_PREV, None, lin, 1.0, "eps"), {"x0": True}),
        "dpm-second": (fused._dpm_coefs(T, T_PREV, T_LAST_CLAMPED, lin, 1.0, "v"), {"x0": True, "prev": True}),
        "attenuation": (fused._attenuation_coefs(T_UNIT, T_UNIT_PREV, 1.0, 1.0, "c"), {"noise": True, "m2": True}),
    }


SAMPLERS = list(sampler_tables())


@pytest.mark.parametrize("noise_source", ["given", "seed"])
@pytest.mark.parametrize("guided", [False, True], ids=["cond", "guided"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_diffusion_step(emu, sampler, dtype, guided, noise_source):
    coefs, uses = sampler_tables()[sampler]
    table = fused._coef_table(coefs).to(acc_dtype(dtype))
    shape = (3, 2, BLOCK_H + 1, BLOCK_W - 1)

    def tensor() -> torch.Tensor:
        return torch.randn(shape, dtype=torch.float64).to(dtype)

    x, m = tensor(), tensor()
    m_uncond = tensor() if guided else None
    m2 = tensor() if uses.get("m2") else None
    m2_uncond = tensor() if guided and m2 is not None else None
    prev = tensor() if uses.get("prev") else None
    noise = tensor() if uses.get("noise") and noise_source == "given" else None
    seed = torch.tensor([99], dtype=torch.int64) if uses.get("noise") and noise_source == "seed" else None
    clip, write_x0 = uses.get("clip", 0.0), bool(uses.get("x0"))
    args = (x, m, m_uncond, m2, m2_uncond, prev, table, 1.5, clip, noise, seed, write_x0)
    out, x0 = emu.diffusion_step(*args)

    def wide(t):
        return None if t is None else t.double()

    expected, expected_x0 = spec.diffusion_step(*(wide(t) for t in args[:6]), table.double(), 1.5, clip,
                                                wide(noise), seed, write_x0)
    # The in-kernel stream is float32 (reference.random's to float32 rounding), also for float64 data.
    close(out.to(torch.float32) if seed is not None and dtype == torch.float64 else out, expected,
          torch.float32 if seed is not None and dtype == torch.float64 else dtype)
    if write_x0:
        close(x0, expected_x0, dtype)
    else:
        assert x0.numel() == 0
    cpu_out, _ = torch.ops.gddm_C.diffusion_step(*args)
    close(out, cpu_out.double(), dtype)


def test_diffusion_step_beyond_grid_limits(emu):
    """More samples (one coefficient row each, carried on gridDim.y) than 65535; whole grid."""
    x, m = torch.randn(MANY, 3), torch.randn(MANY, 3)
    table = torch.randn(MANY, len(contract.STEP_COEFS))
    seed = torch.tensor([3], dtype=torch.int64)
    out, x0 = emu.diffusion_step(x, m, None, None, None, None, table, 0.0, 0.0, None, seed, True)
    expected, expected_x0 = spec.diffusion_step(x.double(), m.double(), None, None, None, None, table.double(), 0.0,
                                                0.0, None, seed, True)
    close(out, expected, torch.float32)
    close(x0, expected_x0, torch.float32)
