"""FusedDDPMScheduler: diffusers' DDPMScheduler with `step` and `add_noise` as one fused kernel.

The step (diffusers' maths, with the domain's noise scale k; g = alphas_cumprod[t],
g' = alphas_cumprod[prev_t] or 1, beta = 1 - g / g'):

    x_0    = clip(prediction -> x_0)          (epsilon, sample or v_prediction; clip_sample)
    x_prev = sqrt(g') beta / (1 - g) x_0 + sqrt(1 - beta) (1 - g') / (1 - g) x_t + k std z

with std = sqrt(max((1 - g') / (1 - g) beta, 1e-20)) ("fixed_small", "fixed_small_log") or
sqrt(beta) ("fixed_large"), and no noise at t = 0. prev_t is the parent's previous_timestep:
asked once per t when the table is built (diffusers 0.42: the next entry of `timesteps`
after set_timesteps, t - 1 before). Every coefficient is one row
per timestep of a table on the sample's device, so `timestep` may be a number, a one-element
tensor or a (B,) tensor of per-sample timesteps. Other variance types and dynamic
thresholding run the parent's code (one warning).
"""

import torch
from diffusers import DDPMScheduler
from diffusers.schedulers.scheduling_ddpm import DDPMSchedulerOutput
from diffusers import SchedulerMixin  # noqa: F401  (diffusers' pipeline loader looks the base class up here)
from torch import Tensor

from ..diffusion import _prediction_coefs
from ._fused import (PREDICTION_TYPES, CumprodAddNoiseMixin, clearing_tables, coef_table,
                     init_with_domain, is_host_timestep, parent_noise)

FUSED_VARIANCE_TYPES = ("fixed_small", "fixed_small_log", "fixed_large")
MIN_VARIANCE = 1e-20  # diffusers' clamp before the log variances


def parent_draws(timestep: int | Tensor) -> bool:
    """Whether the parent's step draws noise (some t > 0). A timestep on an accelerator is not
    read (no host sync): True, and its t = 0 rows have no noise term."""
    if isinstance(timestep, Tensor) and timestep.device.type != "cpu":
        return True
    return bool((torch.as_tensor(timestep) > 0).any())


class FusedDDPMScheduler(CumprodAddNoiseMixin, DDPMScheduler):
    """DDPMScheduler whose `step` and `add_noise` are single fused kernels; same config plus
    `domain` ("image", "gradient", "laplacian"). See the module notes for the maths."""

    __init__ = init_with_domain(DDPMScheduler)
    set_timesteps = clearing_tables(DDPMScheduler.set_timesteps)

    def _previous_timesteps(self) -> Tensor:
        """prev_t for every t in [0, T) (int64, CPU; -2 where the parent's lookup fails)."""
        return self._cached(("prev",), self._build_previous_timesteps)

    def _build_previous_timesteps(self) -> Tensor:
        # the parent's own rule (it changed across diffusers versions), asked once per t of the
        # chain (self.timesteps: the one set by set_timesteps, else every t); a lookup costs
        # ~20 us, so asking all T of a 50-step chain would cost a pipeline 20 ms per call
        prev = torch.full((self.config.num_train_timesteps,), -2, dtype=torch.int64)
        for t in self.timesteps.cpu().tolist():
            prev[t] = max(int(self.previous_timestep(t)), -1)  # any negative: the clean end
        return prev

    def _step_table(self) -> Tensor:
        """(T, 11) float64 coefficients of the step from each t (NaN rows: t not in the chain)."""
        T = self.config.num_train_timesteps
        prev = self._previous_timesteps()
        g_all = self.alphas_cumprod.cpu().double()
        g = g_all
        g_prev = torch.where(prev >= 0, g_all[prev.clamp(min=0)], 1.0)
        beta = 1 - g / g_prev
        k = self.domain_scale
        coefs = _prediction_coefs(g, k, PREDICTION_TYPES[self.config.prediction_type])
        if self.variance_type == "fixed_large":
            std = beta.sqrt()
        else:
            std = ((1 - g_prev) / (1 - g) * beta).clamp(min=MIN_VARIANCE).sqrt()
        t = torch.arange(T)
        coefs.update(c0=(1 - beta).sqrt() * (1 - g_prev) / (1 - g), c1=g_prev.sqrt() * beta / (1 - g),
                     c3=torch.where(t > 0, k * std, 0.0))
        table = coef_table(coefs, T)
        return torch.where((prev >= -1)[:, None], table, float("nan"))

    def _config_reasons(self) -> list[str]:
        """The options of this configuration that the fused step does not cover."""
        reasons = self._shared_config_reasons()
        if self.variance_type not in FUSED_VARIANCE_TYPES:
            reasons.append(f"variance_type={self.variance_type!r}")
        return reasons

    def _step_reasons(self, model_output: Tensor, timestep: int | Tensor, sample: Tensor) -> list[str]:
        reasons = self._call_reasons(model_output, timestep, sample, ("config", self.variance_type))
        if not reasons and is_host_timestep(timestep) and self._previous_timesteps()[int(timestep)] < -1:
            reasons.append(f"timestep {int(timestep)} outside the scheduler's timesteps")  # the parent raises
        return reasons

    def step(self, model_output: Tensor, timestep: int | Tensor, sample: Tensor,
             generator: torch.Generator | None = None, return_dict: bool = True) -> DDPMSchedulerOutput | tuple:
        """DDPMScheduler.step in one kernel; `timestep` may also be a (B,) tensor (per sample).
        Returns DDPMSchedulerOutput(prev_sample, pred_original_sample) or that tuple."""
        if self._falls_back(self._step_reasons(model_output, timestep, sample)):
            return super().step(model_output, timestep, sample, generator=generator, return_dict=return_dict)
        rows = self._rows(("step", self.variance_type), sample, self._step_table, timestep,
                          f"{type(self).__name__}.step")
        draws = parent_draws(timestep)
        noise = parent_noise(model_output, generator, None, draws)
        clip = self.config.clip_sample_range if self.config.clip_sample else None
        prev_sample, x0 = self._fused_step(sample, model_output, rows, clip=clip, noise=noise,
                                           draws_noise=draws and (noise is not None or generator is None))
        if not return_dict:
            return (prev_sample, x0)
        return DDPMSchedulerOutput(prev_sample=prev_sample, pred_original_sample=x0)
