"""FusedDPMSolverMultistepScheduler: diffusers' DPMSolverMultistepScheduler (DPM-Solver++,
first and second order) with `step` and `add_noise` as one fused kernel.

At step index i, with (alpha, sigma) of the parent's sigmas (its _sigma_to_alpha_sigma_t),
lambda = log(alpha) - log(sigma), h = lambda_{i+1} - lambda_i and the domain's scale k:

    x_0    = prediction -> x_0 at i              (epsilon: (x - k sigma_i m) / alpha_i, ...)
    D      = x_0 + r (x_0 - x_0 of step i - 1)   (r = 0 first order; second order midpoint:
                                                   r = h / (2 h_0), h_0 = lambda_i - lambda_{i-1})
    x_prev = (sigma_{i+1} / sigma_i) x - alpha_{i+1} (exp(-h) - 1) D

k cancels out of h, so the domain only enters the x_0 prediction. The order of each call,
the history `model_outputs` (the x_0 predictions), `lower_order_nums` and `step_index` follow
the parent exactly; the step index is host state, so the step reads no device value (after
the first call, which locates its index like the parent unless set_begin_index was called);
all samples share it, so `timestep` is one timestep, as for the parent.
Every sigma schedule of the parent (karras, exponential, beta, lu lambdas, final_sigmas_type)
(flow sigmas too) is covered, since the coefficients are built from its sigmas and its own
alpha/sigma conversion. The SDE and non-"++" algorithm types, third-order updates,
flow_prediction, learned variances and dynamic thresholding run the parent's code (one
warning).
"""

from collections import defaultdict

import torch
from diffusers import DPMSolverMultistepScheduler
from diffusers.schedulers.scheduling_utils import SchedulerOutput
from diffusers import SchedulerMixin  # noqa: F401  (diffusers' pipeline loader looks the base class up here)
from torch import Tensor

from ._fused import (PREDICTION_TYPES, FusedSchedulerMixin, clearing_tables, coef_table,
                     init_with_domain, is_host_timestep)

FUSED_ALGORITHM = "dpmsolver++"
FUSED_ORDERS = (1, 2)


class FusedDPMSolverMultistepScheduler(FusedSchedulerMixin, DPMSolverMultistepScheduler):
    """DPMSolverMultistepScheduler whose `step` and `add_noise` are single fused kernels; same
    config plus `domain` ("image", "gradient", "laplacian"). See the module notes."""

    __init__ = init_with_domain(DPMSolverMultistepScheduler)
    set_timesteps = clearing_tables(DPMSolverMultistepScheduler.set_timesteps)

    def _alpha_sigma(self) -> tuple[Tensor, Tensor]:
        """(alpha, sigma) at every sigma index, float64 from the parent's float32 sigmas."""
        return self._sigma_to_alpha_sigma_t(self.sigmas.cpu().double())

    def _step_table(self) -> Tensor:
        """(2 N, 11) float64: row 2 i + order - 1 is the order-1 or order-2 update at step i."""
        alpha, sigma = self._alpha_sigma()
        n = alpha.shape[0] - 1
        lam = alpha.log() - sigma.log()
        h = lam[1:] - lam[:-1]
        alpha_s, sigma_s = alpha[:-1], sigma[:-1]
        k = self.domain_scale
        prediction = PREDICTION_TYPES[self.config.prediction_type]
        if prediction == "eps":
            coefs = {"a0": 1 / alpha_s, "a1": -k * sigma_s / alpha_s}
        elif prediction == "x0":
            coefs = {"a1": torch.ones(n, dtype=torch.float64)}
        else:
            coefs = {"a0": alpha_s, "a1": -k * sigma_s}
        coefs.update(c0=sigma[1:] / sigma_s, c1=-alpha[1:] * torch.expm1(-h))
        first = coef_table(coefs, n)
        h_last = torch.cat([torch.full((1,), float("nan"), dtype=torch.float64), lam[1:n] - lam[:n - 1]])
        r0 = h_last / h  # the parent's r0: D1 = (m0 - m1) / r0
        if self.config.solver_type == "midpoint":
            coefs["r"] = 0.5 / r0
        else:  # heun: alpha_{i+1} ((exp(-h) - 1) / h + 1) D1 = c1 r (m0 - m1)
            coefs["r"] = alpha[1:] * (torch.expm1(-h) / h + 1) / (r0 * coefs["c1"])
        second = coef_table(coefs, n)
        return torch.stack([first, second], dim=1).reshape(2 * n, -1)

    def _order(self) -> int:
        """The order of the update the parent's step would take now (its own rule)."""
        last = self.step_index == len(self.timesteps) - 1
        few = self.config.lower_order_final and len(self.timesteps) < 15
        lower_order_final = last and (self.config.euler_at_final or few or self.config.final_sigmas_type == "zero")
        lower_order_second = self.step_index == len(self.timesteps) - 2 and few
        if self.config.solver_order == 1 or self.lower_order_nums < 1 or lower_order_final:
            return 1
        if self.config.solver_order == 2 or self.lower_order_nums < 2 or lower_order_second:
            return 2
        return 3

    def _config_reasons(self) -> list[str]:
        """The options of this configuration that the fused step does not cover."""
        reasons = self._shared_config_reasons()
        if self.config.algorithm_type != FUSED_ALGORITHM:
            reasons.append(f"algorithm_type={self.config.algorithm_type!r}")
        if self.config.variance_type is not None:
            reasons.append(f"variance_type={self.config.variance_type!r}")
        return reasons

    def _step_reasons(self, model_output: Tensor, sample: Tensor, order: int) -> list[str]:
        reasons = self._call_reasons(model_output, None, sample, ("config",))
        if order not in FUSED_ORDERS:
            reasons.append(f"a third-order update (solver_order={self.config.solver_order})")
        return reasons

    def step(self, model_output: Tensor, timestep: int | Tensor, sample: Tensor,
             generator: torch.Generator | None = None, variance_noise: Tensor | None = None,
             return_dict: bool = True) -> SchedulerOutput | tuple:
        """DPMSolverMultistepScheduler.step in one kernel (state updated as the parent does).
        Returns SchedulerOutput(prev_sample) or (prev_sample,)."""
        if self.num_inference_steps is None:  # the parent raises
            return super().step(model_output, timestep, sample, generator, variance_noise, return_dict)
        if self.step_index is None:
            self._init_step_index(timestep)
        order = self._order()
        if self._falls_back(self._step_reasons(model_output, sample, order)):
            return super().step(model_output, timestep, sample, generator, variance_noise, return_dict)
        rows = self._rows(("step",), sample, self._step_table, 2 * self.step_index + order - 1,
                          f"{type(self).__name__}.step")
        prev_sample, x0 = self._fused_step(sample, model_output, rows,
                                           prev_x0=self.model_outputs[-1] if order == 2 else None)
        for i in range(self.config.solver_order - 1):
            self.model_outputs[i] = self.model_outputs[i + 1]
        self.model_outputs[-1] = x0
        if self.lower_order_nums < self.config.solver_order:
            self.lower_order_nums += 1
        self._step_index += 1
        if not return_dict:
            return (prev_sample,)
        return SchedulerOutput(prev_sample=prev_sample)

    # ---- forward process ----------------------------------------------------------------------

    def _add_noise_table(self) -> Tensor:
        """(N + 1, 2) float64: (alpha, k sigma) at every sigma index."""
        alpha, sigma = self._alpha_sigma()
        return torch.stack([alpha, self.domain_scale * sigma], dim=1)

    def _add_noise_table_by_timestep(self) -> Tensor:
        """(T + 1, 2) float64: the rows of the parent's index_for_timestep(t) for t in [0, T),
        then the row of a timestep outside the schedule (the last index)."""
        positions = defaultdict(list)
        for i, t in enumerate(self.timesteps.cpu().tolist()):
            positions[t].append(i)
        last = len(self.timesteps) - 1
        index = [(found[1] if len(found) > 1 else found[0]) if (found := positions.get(t)) else last
                 for t in range(self.config.num_train_timesteps)]
        return self._add_noise_table()[torch.tensor([*index, last])]

    def add_noise(self, original_samples: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """DPMSolverMultistepScheduler.add_noise in one kernel: alpha_i x_0 + k sigma_i noise at
        the parent's sigma index i of each timestep, float32 coefficients for half and bfloat16
        samples; timesteps: one or B (per sample)."""
        if self._falls_back(self._add_noise_reasons(original_samples, noise, timesteps)):
            return super().add_noise(original_samples, noise, timesteps)
        if self.begin_index is not None:  # the parent's rule: every sample at the current index
            index = self.step_index if self.step_index is not None else self.begin_index
            return self._fused_add_noise(original_samples, noise, index, ("add_noise",), self._add_noise_table)
        T = self.config.num_train_timesteps
        if is_host_timestep(timesteps):
            index = int(timesteps) if 0 <= int(timesteps) < T else T
        else:
            index = timesteps.to(original_samples.device).long()
            index = torch.where((index >= 0) & (index < T), index, T)
        return self._fused_add_noise(original_samples, noise, index, ("add_noise_by_timestep",),
                                     self._add_noise_table_by_timestep)
