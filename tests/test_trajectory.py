"""ReverseTrajectory (coefficients of a whole sampler loop computed once) against the step
functions it stands for: the same samples step by step, noise included, on every backend."""

import pytest
import torch

from gddm_kernels import diffusion
from gddm_kernels.schedules import linear_schedule

SHAPE = (3, 2, 9, 11)
STEPS = 6
SEED = 7


def timestep_table(steps: int, batch: int) -> torch.Tensor:
    """(steps + 1, B) decreasing timesteps ending at -1, different per sample."""
    columns = [torch.cat([torch.linspace(999 - 37 * b, 0, steps).round().long(), torch.tensor([-1])])
               for b in range(batch)]
    return torch.stack(columns, dim=1)


def time_table(steps: int, batch: int) -> torch.Tensor:
    """(steps + 1, B) decreasing float64 times from 1 (or a little less) to 0."""
    return torch.stack([torch.linspace(1.0 - 0.05 * b, 0.0, steps + 1, dtype=torch.float64)
                        for b in range(batch)], dim=1)


def step_function_loop(sampler: str, times: torch.Tensor, x: torch.Tensor, outputs: list, backend: str,
                       **options) -> list[torch.Tensor]:
    """The loop written with the per-step functions, as a user would without a trajectory."""
    schedule, generator = linear_schedule(), torch.Generator().manual_seed(SEED)
    samples, prev_x0 = [], None
    for i in range(times.shape[0] - 1):
        t, t_prev = times[i], times[i + 1]
        if sampler == "ddpm":
            x = diffusion.ddpm_step(x, outputs[i], t, t_prev, schedule, generator=generator, backend=backend,
                                    **options)
        elif sampler == "ddim":
            x = diffusion.ddim_step(x, outputs[i], t, t_prev, schedule, generator=generator, backend=backend,
                                    **options)
        elif sampler == "dpm":
            x, prev_x0 = diffusion.dpm_solver_2m_step(x, outputs[i], t, t_prev, schedule, prev_x0=prev_x0,
                                                      t_last=None if i == 0 else times[i - 1], backend=backend,
                                                      **options)
        else:
            x = diffusion.attenuation_step(x, outputs[i], t, t_prev, generator=generator, backend=backend, **options)
        samples.append(x)
    return samples


def trajectory_loop(sampler: str, times: torch.Tensor, x: torch.Tensor, outputs: list, backend: str,
                    **options) -> list[torch.Tensor]:
    guidance = {key: options.pop(key) for key in ("uncond_output", "guidance_scale") if key in options}
    schedule = None if sampler == "attenuation" else linear_schedule()
    trajectory = diffusion.ReverseTrajectory(sampler, times, schedule, **options)
    generator = torch.Generator().manual_seed(SEED)
    samples, prev_x0 = [], None
    for i in range(trajectory.steps):
        if sampler == "dpm":
            x, prev_x0 = trajectory.step(i, x, outputs[i], prev_x0=prev_x0, backend=backend, **guidance)
        else:
            x = trajectory.step(i, x, outputs[i], generator=generator, backend=backend, **guidance)
        samples.append(x)
    return samples


CASES = [("ddpm", {}), ("ddim", {"eta": 0.0}), ("ddim", {"eta": 0.6, "clip_x0": 1.5}), ("dpm", {}),
         ("dpm", {"prediction_type": "v"}), ("attenuation", {"eta": 1.0}), ("attenuation", {"eta": 0.0})]


@pytest.mark.parametrize("backend", ["reference", "cpu", pytest.param("triton", marks=pytest.mark.triton)])
@pytest.mark.parametrize("sampler,options", CASES, ids=lambda c: str(c))
def test_trajectory_matches_step_functions(sampler, options, backend):
    torch.manual_seed(0)
    times = time_table(STEPS, SHAPE[0]) if sampler == "attenuation" else timestep_table(STEPS, SHAPE[0])
    x = torch.randn(SHAPE)
    if sampler == "attenuation":
        outputs = [(torch.randn(SHAPE), torch.randn(SHAPE)) for _ in range(STEPS)]
    else:
        outputs = [torch.randn(SHAPE) for _ in range(STEPS)]
    expected = step_function_loop(sampler, times, x, outputs, backend, **options)
    actual = trajectory_loop(sampler, times, x, outputs, backend, **options)
    for step, (a, e) in enumerate(zip(actual, expected, strict=True)):
        torch.testing.assert_close(a, e, rtol=1e-6, atol=1e-6, msg=f"step {step}")


def test_trajectory_with_guidance():
    torch.manual_seed(1)
    times = timestep_table(STEPS, SHAPE[0])
    x = torch.randn(SHAPE)
    outputs, unconds = [torch.randn(SHAPE) for _ in range(STEPS)], [torch.randn(SHAPE) for _ in range(STEPS)]
    schedule = linear_schedule()
    trajectory = diffusion.ReverseTrajectory("ddim", times, schedule)
    y = x
    for i in range(STEPS):
        x = trajectory.step(i, x, outputs[i], uncond_output=unconds[i], guidance_scale=3.0)
        y = diffusion.ddim_step(y, outputs[i], times[i], times[i + 1], schedule, uncond_output=unconds[i],
                                guidance_scale=3.0)
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)


def test_trajectory_bad_input():
    schedule = linear_schedule()
    times = timestep_table(STEPS, 2)
    with pytest.raises(ValueError, match="unknown|sampler"):
        diffusion.ReverseTrajectory("euler", times, schedule)
    with pytest.raises(ValueError, match="decrease strictly"):
        diffusion.ReverseTrajectory("ddim", times.flip(0).clamp(min=0), schedule)
    with pytest.raises(ValueError, match=r"\(steps \+ 1, B\)"):
        diffusion.ReverseTrajectory("ddim", times[:1], schedule)
    with pytest.raises(TypeError, match="needs a `schedule`"):
        diffusion.ReverseTrajectory("ddpm", times)
    with pytest.raises(ValueError, match="takes no `schedule`"):
        diffusion.ReverseTrajectory("attenuation", time_table(STEPS, 2), schedule)
    with pytest.raises(TypeError, match="floating"):
        diffusion.ReverseTrajectory("attenuation", times)
    with pytest.raises(ValueError, match="eta"):
        diffusion.ReverseTrajectory("ddim", times, schedule, eta=1.5)
    dpm = diffusion.ReverseTrajectory("dpm", times, schedule)
    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match="prev_x0"):
        dpm.step(1, x, torch.randn_like(x))
    with pytest.raises(ValueError, match="prev_x0"):
        dpm.step(0, x, torch.randn_like(x), prev_x0=x)
    with pytest.raises(ValueError, match=r"`i` must lie in \[0, 6\)"):
        dpm.step(STEPS, x, torch.randn_like(x))
    with pytest.raises(ValueError, match="B = 2"):
        dpm.step(0, torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4))
