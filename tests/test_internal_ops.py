"""The compiled kernels' own ops (torch.ops.gddm_C.*, csrc/schemas.h) check every argument they
index with, even though the public ops check first: a direct call with a bad argument is a
RuntimeError naming that argument, never an out-of-bounds access. Run on the C++ CPU ops and
on the CUDA ops' host launchers through the emulation module (tests/cuda_emulation.py)."""

import re

import pytest
import torch

import gddm_kernels  # noqa: F401  (loads gddm_kernels._C)

import cuda_emulation

F64 = dict(dtype=torch.float64)
IDX = dict(dtype=torch.int64)


def prolong_args(**override):
    """Valid mg_prolong_correct_ arguments for a (2, 5, 6) grid and its (3, 3) coarse grid,
    with `override` replacing some."""
    args = dict(u=torch.zeros(2, 5, 6, **F64), e=torch.zeros(2, 3, 3, **F64),
                lo_y=torch.tensor([0, 0, 1, 1, 2]), hi_y=torch.tensor([0, 1, 1, 2, 2]), w_y=torch.zeros(5, **F64),
                lo_x=torch.tensor([0, 0, 1, 1, 2, 2]), hi_x=torch.tensor([0, 1, 1, 2, 2, 2]), w_x=torch.zeros(6, **F64))
    args.update(override)
    return list(args.values())


def noise_args(**override):
    args = dict(x0=torch.zeros(2, 1, 4, 5), coefs=torch.zeros(2, 2), domain=0, exact=False,
                noise=torch.zeros(2, 1, 4, 5), seed=None, write_noise=False)
    args.update(override)
    return list(args.values())


def step_args(**override):
    x = torch.zeros(2, 3)
    args = dict(x=x, m=x, m_uncond=None, m2=None, m2_uncond=None, prev_x0=None, coefs=torch.zeros(2, 11),
                guidance=0.0, clip=0.0, noise=None, seed=None, write_x0=False)
    args.update(override)
    return list(args.values())


# (op, arguments, what the message must name); ops that only one library implements say which.
BAD_CALLS = [
    ("gradient", [torch.zeros(4, 5), 1.0], "4-d"),
    ("divergence", [torch.zeros(1, 1, 3, 4, 5), 1.0], "gradient-component dim"),
    ("laplacian", [torch.zeros(1, 1, 4, 5, dtype=torch.int32), 1.0], "floating-point"),
    ("dct_reorder", [torch.zeros(1, 4, 5), False, 1.0], "4-d"),
    ("spectral_solve_", [torch.zeros(1, 4, 3, dtype=torch.complex64), 4, 0, 0.0], "`H`, `W`"),
    ("spectral_solve_", [torch.zeros(1, 4, 3, dtype=torch.complex64), 4, 7, 0.0], "(..., H, W//2+1) spectrum"),
    ("dct_unreorder", [torch.zeros(1, 5, 4).mT, torch.float32], "contiguous"),
    ("dct_unreorder", [torch.zeros(1, 4, 5), torch.float64], "float64 solutions"),
    ("dct_solve", [torch.zeros(4, 5), False, 1.0, 0.0], "4-d"),
    ("spectral_solve_columns_", [torch.zeros(1, 3, 4, dtype=torch.complex64), 0, 4, 0.0], "`H`, `W`"),
    ("spectrum_rows", [torch.zeros(1, 3, 4)], "complex"),
    ("mg_smooth_", [torch.zeros(1, 4, 5, **F64), torch.zeros(1, 4, 5, **F64), torch.ones(4, **F64),
                    torch.ones(5, **F64), 2], "color"),
    ("mg_smooth_", [torch.zeros(1, 4, 5, **F64), torch.zeros(1, 4, 5, **F64), torch.ones(5, **F64),
                    torch.ones(5, **F64), 0], "`wy`"),
    ("mg_residual_restrict", [torch.zeros(1, 4, 5, **F64), torch.zeros(1, 4, 4, **F64), torch.ones(4, **F64),
                              torch.ones(5, **F64)], "`f`"),
    ("mg_prolong_correct_", prolong_args(lo_y=torch.tensor([0, 0, 1, 1, 3])), "`lo_y`"),
    ("mg_prolong_correct_", prolong_args(hi_y=torch.tensor([0, 1, 1, 2, 10**12])), "`hi_y`"),
    ("mg_prolong_correct_", prolong_args(lo_x=torch.tensor([0, 0, 1, 1, -1, 2])), "`lo_x`"),
    ("mg_prolong_correct_", prolong_args(hi_x=torch.tensor([0, 1, 1, 2, 2, 3])), "`hi_x`"),
    ("mg_prolong_correct_", prolong_args(lo_y=torch.tensor([0, 0, 1, 1])), "`lo_y`"),
    ("mg_prolong_correct_", prolong_args(e=torch.zeros(2, 0, 3, **F64)), "`lo_y`"),
    ("mg_prolong_correct_", prolong_args(e=torch.zeros(3, 3, 3, **F64)), "`e`"),
    ("add_noise", noise_args(domain=3), "domain"),
    ("add_noise", noise_args(coefs=torch.zeros(2, 3)), "coefs"),
    ("add_noise", noise_args(coefs=torch.zeros(1, 2)), "coefs"),
    ("add_noise", noise_args(noise=torch.zeros(2, 1, 4, 4)), "`noise`"),
    ("add_noise", noise_args(domain=1, noise=torch.zeros(2, 1, 4, 5)), "`noise`"),
    ("add_noise", noise_args(noise=None, seed=torch.zeros(1, dtype=torch.int32)), "`seed`"),
    ("add_noise", noise_args(noise=None, seed=torch.zeros(2, **IDX)), "`seed`"),
    ("diffusion_step", step_args(coefs=torch.zeros(2, 10)), "coefs"),
    ("diffusion_step", step_args(coefs=torch.zeros(1, 11)), "coefs"),
    ("diffusion_step", step_args(m=torch.zeros(2, 4)), "`m`"),
    ("diffusion_step", step_args(prev_x0=torch.zeros(3, 3)), "`prev_x0`"),
    ("diffusion_step", step_args(noise=torch.zeros(2, 3, dtype=torch.float64)), "`noise`"),
    ("diffusion_step", step_args(m2_uncond=torch.zeros(2, 3)), "m2_uncond"),
]

# Ops with a kernel on one device only: gddm_C's CPU ops and the CUDA ops (gddm_emu here).
CPU_ONLY = {"dct_solve", "spectral_solve_columns_", "spectrum_rows"}
CUDA_ONLY = {"dct_reorder", "spectral_solve_", "dct_unreorder"}


@pytest.fixture(scope="module")
def libraries():
    return {"gddm_C": torch.ops.gddm_C, "gddm_emu": cuda_emulation.load()}


CASES = [pytest.param(library, op, args, names, id=f"{library}-{op}-{i}")
         for library, absent in [("gddm_C", CUDA_ONLY), ("gddm_emu", CPU_ONLY)]
         for i, (op, args, names) in enumerate(BAD_CALLS) if op not in absent]


@pytest.mark.parametrize("library,op,args,names", CASES)
def test_internal_op_refuses(libraries, library, op, args, names):
    with pytest.raises(RuntimeError, match=f"gddm_C::{op}.*{re.escape(names)}"):
        getattr(libraries[library], op)(*args)


@pytest.mark.parametrize("library", ["gddm_C", "gddm_emu"], ids=["cpu", "cuda-emulated"])
def test_prolong_correct_with_valid_indices_runs(libraries, library):
    """The range check accepts the extreme valid indices (0 and size - 1)."""
    args = prolong_args(e=torch.ones(2, 3, 3, **F64))
    getattr(libraries[library], "mg_prolong_correct_")(*args)
    assert torch.equal(args[0], torch.ones(2, 5, 6, **F64))
