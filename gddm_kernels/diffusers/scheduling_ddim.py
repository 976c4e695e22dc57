"""FusedDDIMScheduler: diffusers' DDIMScheduler with `step` and `add_noise` as one fused kernel.

The step (diffusers' maths, with the domain's noise scale k; prev_t = t - T // num_inference_steps,
g = alphas_cumprod[t], g' = alphas_cumprod[prev_t] or final_alpha_cumprod when prev_t < 0):

    x_0    = clip(prediction -> x_0)                  (epsilon, sample or v_prediction)
    eps    = prediction -> eps  (from the clipped x_0 with use_clipped_model_output)
    sigma  = eta sqrt((1 - g') / (1 - g) (1 - g / g'))
    x_prev = sqrt(g') x_0 + k sqrt(1 - g' - sigma^2) eps + k sigma z

Coefficients are one row per timestep of a table on the sample's device (one table per eta
and use_clipped_model_output), so `timestep` may be a number, a one-element tensor or a (B,)
tensor of per-sample timesteps. Dynamic thresholding runs the parent's code (one warning).
"""

import torch
from diffusers import DDIMScheduler
from diffusers.schedulers.scheduling_ddim import DDIMSchedulerOutput
from diffusers import SchedulerMixin  # noqa: F401  (diffusers' pipeline loader looks the base class up here)
from torch import Tensor

from ..diffusion import _prediction_coefs
from ._fused import (PREDICTION_TYPES, CumprodAddNoiseMixin, clearing_tables, coef_table,
                     init_with_domain, is_host_timestep, parent_noise)


class FusedDDIMScheduler(CumprodAddNoiseMixin, DDIMScheduler):
    """DDIMScheduler whose `step` and `add_noise` are single fused kernels; same config plus
    `domain` ("image", "gradient", "laplacian"). See the module notes for the maths."""

    __init__ = init_with_domain(DDIMScheduler)
    set_timesteps = clearing_tables(DDIMScheduler.set_timesteps)

    def _step_table(self, eta: float, use_clipped_model_output: bool) -> Tensor:
        """(T, 11) float64 coefficients of the step from each t."""
        T = self.config.num_train_timesteps
        t = torch.arange(T)
        prev = t - T // self.num_inference_steps
        g = self.alphas_cumprod.cpu().double()
        g_prev = torch.where(prev >= 0, g[prev.clamp(min=0)], float(self.final_alpha_cumprod))
        sigma = eta * ((1 - g_prev) / (1 - g) * (1 - g / g_prev)).sqrt()
        k = self.domain_scale
        coefs = _prediction_coefs(g, k, PREDICTION_TYPES[self.config.prediction_type])
        if use_clipped_model_output:  # eps re-derived from the clipped x_0
            coefs.update(e0=1 / (k * (1 - g).sqrt()), e1=torch.zeros_like(g), e2=-g.sqrt() / (k * (1 - g).sqrt()))
        coefs.update(c1=g_prev.sqrt(), c2=k * (1 - g_prev - sigma**2).sqrt(), c3=k * sigma)
        return coef_table(coefs, T)

    def _config_reasons(self) -> list[str]:
        """The options of this configuration that the fused step does not cover."""
        reasons = self._shared_config_reasons()
        if self.num_inference_steps is None:
            reasons.append("a step before set_timesteps")  # the parent raises
        return reasons

    def _step_reasons(self, model_output: Tensor, timestep: int | Tensor, sample: Tensor) -> list[str]:
        return self._call_reasons(model_output, timestep, sample, ("config",))

    def step(self, model_output: Tensor, timestep: int | Tensor, sample: Tensor, eta: float = 0.0,
             use_clipped_model_output: bool = False, generator: torch.Generator | None = None,
             variance_noise: Tensor | None = None, return_dict: bool = True) -> DDIMSchedulerOutput | tuple:
        """DDIMScheduler.step in one kernel; `timestep` may also be a (B,) tensor (per sample).
        Returns DDIMSchedulerOutput(prev_sample, pred_original_sample) or that tuple."""
        if self._falls_back(self._step_reasons(model_output, timestep, sample)):
            return super().step(model_output, timestep, sample, eta=eta,
                                use_clipped_model_output=use_clipped_model_output, generator=generator,
                                variance_noise=variance_noise, return_dict=return_dict)
        if eta > 0 and variance_noise is not None and generator is not None:
            raise ValueError("Cannot pass both generator and variance_noise. Please make sure that either `generator` "
                             "or `variance_noise` stays `None`.")
        eta = float(eta)
        clipped = bool(use_clipped_model_output)
        rows = self._rows(("step", eta, clipped), sample, lambda: self._step_table(eta, clipped), timestep,
                          f"{type(self).__name__}.step")
        noise = parent_noise(model_output, generator, variance_noise, eta > 0)
        clip = self.config.clip_sample_range if self.config.clip_sample else None
        prev_sample, x0 = self._fused_step(sample, model_output, rows, clip=clip, noise=noise, draws_noise=eta > 0)
        if not return_dict:
            return (prev_sample, x0)
        return DDIMSchedulerOutput(prev_sample=prev_sample, pred_original_sample=x0)
