"""The Triton fused step follows the specification on non-finite model outputs: a term whose
coefficient is exactly 0 contributes exactly 0, so an infinite model output that the step's
formula does not use (its coefficient is 0 in the kernel's table) leaves the result finite and
equal to the schedule-level reference step (gddm_kernels.reference.diffusion)."""

import pytest
import torch

import gddm_kernels.diffusion as fused
from gddm_kernels.reference import diffusion as spec
from gddm_kernels.schedules import linear_schedule

pytestmark = pytest.mark.triton

SHAPE = (2, 3, 8, 8)


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    sample, model_output, noise = torch.randn(SHAPE), torch.randn(SHAPE), torch.randn(SHAPE)
    model_output[0, 1, 2, 3] = float("inf")
    model_output[1, 0, 5, 5] = -float("inf")
    return sample, model_output, noise, (torch.tensor([600, 300]), torch.tensor([580, 250]))


def _check(fast: torch.Tensor, reference: torch.Tensor) -> None:
    assert bool(reference.isfinite().all())
    assert bool(fast.isfinite().all()), f"{int((~fast.isfinite()).sum())} non-finite outputs"
    torch.testing.assert_close(fast, reference, atol=2e-5, rtol=2e-5)


def test_ddim_with_clipping_ignores_the_unused_model_output():
    """DDIM with clip_x0 re-derives eps from the clamped x0: the model output's coefficient in eps
    is 0, and an infinite output is clamped away in x0."""
    sample, model_output, _, (t, t_prev) = _inputs()
    schedule = linear_schedule()
    fast = fused.ddim_step(sample, model_output, t, t_prev, schedule, clip_x0=1.0, backend="triton")
    _check(fast, spec.ddim_step(sample, model_output, t, t_prev, schedule, clip_x0=1.0))


def test_ddpm_x0_prediction_ignores_eps():
    """DDPM with x0 prediction never uses eps (its coefficient c2 is 0), which is infinite where
    the model output is."""
    sample, model_output, noise, (t, t_prev) = _inputs()
    schedule = linear_schedule()
    kwargs = dict(prediction_type="x0", clip_x0=1.0, noise=noise)
    fast = fused.ddpm_step(sample, model_output, t, t_prev, schedule, backend="triton", **kwargs)
    _check(fast, spec.ddpm_step(sample, model_output, t, t_prev, schedule, **kwargs))


def test_infinite_output_with_a_nonzero_coefficient_still_propagates():
    """Only exact zeros are skipped: DDPM with eps prediction uses the infinite output."""
    sample, model_output, noise, (t, t_prev) = _inputs()
    fast = fused.ddpm_step(sample, model_output, t, t_prev, linear_schedule(), noise=noise, backend="triton")
    assert not bool(fast[0, 1, 2, 3].isfinite())
    assert bool(fast[0, 0].isfinite().all())
