"""The fused diffusion kernels called with coefficients already formed, by the library's own
callers (the per-call steps' coefficient tables, ReverseTrajectory, the diffusers schedulers):
straight to the compiled kernel's op (torch.ops.gddm_C.add_noise / diffusion_step) when the
compiled backend of the data's device is in force, else through the op layer
(torch.ops.gddm.add_noise / diffusion_step), which checks, picks the backend and gives
add_noise its autograd. The op layer's Python custom op costs tens of microseconds per call,
more than the kernel at sampler sizes; the callers have checked and prepared the arguments
(contiguous tensors, coefficients in the arithmetic dtype), which is all the kernel op needs.

Arguments and results as those of torch.ops.gddm.add_noise / diffusion_step.
"""

import torch
from torch import Tensor

from . import ops
from ._diffusion_contract import DOMAIN_CODES
from .dispatch import AUTO, compiled_fast_path


def add_noise(x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None, seed: Tensor | None,
              write_noise: bool, backend: str | None) -> tuple[Tensor, Tensor]:
    """(x_t, generated noise or empty); the op layer wherever x0 needs a gradient."""
    if compiled_fast_path(backend, x0) and not (x0.requires_grad and torch.is_grad_enabled()):
        return torch.ops.gddm_C.add_noise(x0, coefs, DOMAIN_CODES[domain], exact, noise, seed, write_noise)
    return ops.add_noise(x0, coefs, domain, exact, noise, seed, write_noise, backend or AUTO)


def diffusion_step(x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None, m2_uncond: Tensor | None,
                   prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float, noise: Tensor | None,
                   seed: Tensor | None, write_x0: bool, backend: str | None) -> tuple[Tensor, Tensor]:
    """(x_prev, x0 or empty); the step has no autograd on any path."""
    if compiled_fast_path(backend, x):
        return torch.ops.gddm_C.diffusion_step(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, guidance, clip, noise,
                                               seed, write_x0)
    return ops.diffusion_step(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, guidance, clip, noise, seed, write_x0,
                              backend or AUTO)
