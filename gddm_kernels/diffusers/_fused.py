"""What the fused schedulers share: the `domain` config entry, coefficient tables on the
sample's device, the gather of per-sample rows, noise drawn as diffusers draws it, the fused
`add_noise`, and the fallback to the parent's code.

Tables. A scheduler's coefficients depend only on the timestep (or, for DPM-Solver, the step
index), so each scheduler builds them for every timestep at once: float64 on the CPU from the
parent's own float32 schedule (alphas_cumprod, sigmas), then stored once per (device, dtype)
in the arithmetic dtype of the data (float32 for half, bfloat16 and float32 samples, float64
for float64) until the next `set_timesteps`. A step gathers its rows, (B, 11) in the order of
STEP_COEFS: a Python number or a one-element CPU tensor selects a row on the host (no device
read; the expanded rows are cached per timestep); a tensor on the device, of one or B
timesteps, is gathered with index_select on the device (no host sync: CUDA-graph capturable).

Noise. With a torch `generator` (or `variance_noise`) a step uses exactly the noise the
parent would: diffusers.utils.torch_utils.randn_tensor with the parent's shape, generator,
dtype and device, so a seed reproduces diffusers' own samples. With neither, the kernel draws
counter-based Philox noise from a seed taken from the device's default generator.
"""

import functools
import inspect
import warnings
from collections.abc import Callable

import torch
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from .. import _fused_calls
from ..diffusion import _launch
from .._diffusion_contract import DOMAIN_SCALES, DOMAINS, STEP_COEFS
from .._validation import arithmetic_dtype as _arithmetic_dtype_of

# diffusers' prediction types -> the names of gddm_kernels.diffusion (its _prediction_coefs)
PREDICTION_TYPES = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}


def init_with_domain(parent: type) -> Callable:
    """`parent.__init__` plus the keyword `domain`, registered in the config. The signature
    shown to inspect (which diffusers' from_config reads the config keys from) is the
    parent's plus `domain`, so a stock config loads and every parent option passes through."""
    parent_init = parent.__init__

    @functools.wraps(parent_init)
    def __init__(self, *args, domain: str = "image", **kwargs) -> None:
        if domain not in DOMAINS:
            raise ValueError(f"{type(self).__name__}: argument `domain` must be one of {DOMAINS}, got {domain!r}")
        self._fused_tables: dict[tuple, object] = {}
        self._fallbacks_warned: set[str] = set()
        parent_init(self, *args, **kwargs)
        self.register_to_config(domain=domain)

    signature = inspect.signature(parent_init)
    domain = inspect.Parameter("domain", inspect.Parameter.KEYWORD_ONLY, default="image", annotation=str)
    __init__.__signature__ = signature.replace(parameters=[*signature.parameters.values(), domain])
    del __init__.__wrapped__  # inspect must read __signature__, not the parent's
    return __init__


def clearing_tables(parent_method: Callable) -> Callable:
    """`parent_method` (set_timesteps) followed by dropping the tables built from the state it
    changes; the parent's signature is kept (pipelines inspect it)."""

    @functools.wraps(parent_method)
    def method(self, *args, **kwargs):
        result = parent_method(self, *args, **kwargs)
        self._fused_tables.clear()
        return result

    return method


def arithmetic_dtype(x: Tensor) -> torch.dtype:
    return _arithmetic_dtype_of(x.dtype)


def is_host_timestep(timestep: object) -> bool:
    """A timestep whose value the host knows without reading a device: a Python number or a
    one-element CPU tensor."""
    return not isinstance(timestep, Tensor) or (timestep.numel() == 1 and timestep.device.type == "cpu")


def gather_rows(table: Tensor, timestep: int | Tensor, batch: int, owner: str) -> Tensor:
    """The rows (B, n) of `table` (N, n) for `timestep`: one row for every sample (a Python
    number, a one-element tensor) or one per sample (a (B,) tensor); contiguous."""
    if is_host_timestep(timestep):
        return table[int(timestep)].expand(batch, -1).contiguous()
    if timestep.dim() > 1 or timestep.numel() not in (1, batch):
        raise ValueError(f"{owner}: argument `timestep` must be a number, a one-element tensor or a ({batch},) tensor "
                         f"of per-sample timesteps, got shape {tuple(timestep.shape)}")
    rows = table.index_select(0, timestep.reshape(-1).to(device=table.device, dtype=torch.long))
    return rows if rows.shape[0] == batch else rows.expand(batch, -1).contiguous()


def coef_table(coefs: dict[str, Tensor], rows: int) -> Tensor:
    """Named float64 coefficients, each (rows,) (missing ones 0), as a (rows, 11) table in the
    order of STEP_COEFS."""
    zero = torch.zeros(rows, dtype=torch.float64)
    return torch.stack([coefs[name].expand(rows) if name in coefs else zero for name in STEP_COEFS], dim=-1)


def parent_noise(model_output: Tensor, generator: torch.Generator | list | None, variance_noise: Tensor | None,
                 draws: bool, dtype: torch.dtype | None = None) -> Tensor | None:
    """The noise the parent's step uses when it `draws`: `variance_noise`, or randn_tensor of
    model_output's shape from `generator` (in `dtype`, default model_output's); None when the
    parent draws nothing or there is neither (then the kernel draws Philox noise)."""
    if not draws:
        return None
    if variance_noise is not None:
        return variance_noise
    if generator is not None:
        return randn_tensor(model_output.shape, generator=generator, device=model_output.device,
                            dtype=dtype or model_output.dtype)
    return None


class FusedSchedulerMixin:
    """Shared machinery of the fused schedulers (first base; the diffusers scheduler second)."""

    @property
    def domain_scale(self) -> float:
        """k of the configured domain: x_t = sqrt(g) x_0 + k sqrt(1 - g) eps."""
        return DOMAIN_SCALES[self.config.domain]

    def _cached(self, key: tuple, build: Callable[[], object]) -> object:
        """`build()`, computed once per key until the next set_timesteps."""
        if key not in self._fused_tables:
            self._fused_tables[key] = build()
        return self._fused_tables[key]

    def _table(self, key: tuple, like: Tensor, build: Callable[[], Tensor]) -> Tensor:
        """`build()` (float64, CPU) in like's arithmetic dtype on like's device, once per key
        until the next set_timesteps."""
        dtype = arithmetic_dtype(like)
        return self._cached((*key, like.device, dtype),
                            lambda: build().to(device=like.device, dtype=dtype).contiguous())

    def _rows(self, key: tuple, like: Tensor, build: Callable[[], Tensor], timestep: int | Tensor,
              owner: str) -> Tensor:
        """The (B, n) rows of table `key` (see `_table`) for `timestep`, B = like.shape[0]; the
        rows of a host timestep are cached too (a pipeline calls each timestep's step alike)."""
        batch = like.shape[0]
        if is_host_timestep(timestep):
            index = int(timestep)
            return self._cached((*key, "rows", index, batch, like.device, like.dtype == torch.float64),
                                lambda: gather_rows(self._table(key, like, build), index, batch, owner))
        return gather_rows(self._table(key, like, build), timestep, batch, owner)

    def _falls_back(self, reasons: list[str]) -> bool:
        """True when the fused kernel does not cover this call (`reasons` names the options):
        the caller then runs the parent's code, after one warning per instance and option. In
        a gradient or Laplacian domain there is no parent code to run (it knows no domain), so
        that raises instead of giving a wrong answer."""
        if not reasons:
            return False
        parent = next(c for c in type(self).__mro__ if c.__module__.startswith("diffusers.")).__name__
        if self.config.domain != "image":
            raise NotImplementedError(f"{type(self).__name__}: {'; '.join(reasons)} is not covered by the fused kernel, "
                                      f"and diffusers' {parent} cannot run in the {self.config.domain!r} domain")
        for reason in reasons:
            if reason not in self._fallbacks_warned:
                self._fallbacks_warned.add(reason)
                warnings.warn(f"{type(self).__name__}: {reason} is not covered by the fused kernel; such calls run "
                              f"diffusers' {parent} code", UserWarning, stacklevel=3)
        return True

    def _shared_config_reasons(self) -> list[str]:
        """The options of a configuration that no fused step covers: thresholding, and a
        prediction type the kernel has no coefficients for."""
        reasons = ["thresholding=True"] if self.config.thresholding else []
        if self.config.prediction_type not in PREDICTION_TYPES:
            reasons.append(f"prediction_type={self.config.prediction_type!r}")
        return reasons

    def _call_reasons(self, model_output: Tensor, timestep: int | Tensor | None, sample: Tensor,
                      config_key: tuple) -> list[str]:
        """Why the fused step cannot take this call: the configuration's reasons (its
        `_config_reasons`, cached under `config_key` until set_timesteps), a model output not
        of the sample's shape, a host timestep outside [0, num_train_timesteps)."""
        reasons = list(self._cached(config_key, self._config_reasons))
        if model_output.shape != sample.shape or not sample.is_floating_point():
            reasons.append("a model_output not of the sample's shape")
        if timestep is not None and is_host_timestep(timestep) and not (
                0 <= int(timestep) < self.config.num_train_timesteps):
            reasons.append(f"timestep {int(timestep)} outside [0, num_train_timesteps)")
        return reasons

    def _fused_step(self, sample: Tensor, model_output: Tensor, rows: Tensor, *, clip: float | None = None,
                    noise: Tensor | None = None, draws_noise: bool = False,
                    prev_x0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One fused diffusion_step with per-sample rows (B, 11): (x_prev, x0)."""
        if noise is not None and tuple(noise.shape) != tuple(sample.shape):
            raise ValueError(f"{type(self).__name__}: the step noise must have the sample's shape "
                             f"{tuple(sample.shape)}, got {tuple(noise.shape)}")
        return _launch(f"{type(self).__name__}.step", sample, model_output, rows, prev_x0=prev_x0, clip_x0=clip,
                       noise=None if noise is None else noise.to(device=sample.device, dtype=sample.dtype),
                       draws_noise=draws_noise, write_x0=True)

    def _add_noise_reasons(self, original_samples: Tensor, noise: Tensor, timesteps: Tensor) -> list[str]:
        reasons = []
        if not (isinstance(original_samples, Tensor) and original_samples.is_floating_point()
                and original_samples.dim() >= 1):
            reasons.append("add_noise of a non-floating or 0-d `original_samples`")
        elif not isinstance(noise, Tensor) or tuple(noise.shape) != tuple(original_samples.shape):
            reasons.append("add_noise with `noise` not of the samples' shape (broadcasting)")
        elif isinstance(timesteps, Tensor) and timesteps.numel() not in (1, original_samples.shape[0]):
            reasons.append("add_noise with neither one nor B timesteps")
        return reasons

    def _fused_add_noise(self, original_samples: Tensor, noise: Tensor, timesteps: int | Tensor, key: tuple,
                         build: Callable[[], Tensor]) -> Tensor:
        """x_t = a x_0 + s eps with per-sample (a, s) rows of the table `key` (N, 2), one kernel
        (the fused add_noise in the image domain: a field is flattened per sample). The
        result has original_samples' dtype; the coefficients are float32 (float64 for float64)."""
        x0 = original_samples.contiguous()
        batch = x0.shape[0]
        coefs = self._rows(key, x0, build, timesteps, f"{type(self).__name__}.add_noise")
        flat = (batch, 1, -1)  # (B, 1, N): the image-domain kernel is elementwise per sample
        x_t, _ = _fused_calls.add_noise(x0.reshape(flat), coefs, "image", False,
                                        noise.to(device=x0.device, dtype=x0.dtype).contiguous().reshape(flat), None,
                                        False, None)
        return x_t.reshape(x0.shape)


class CumprodAddNoiseMixin(FusedSchedulerMixin):
    """The forward process of DDPM and DDIM: x_t = sqrt(g_t) x_0 + k sqrt(1 - g_t) eps,
    g = alphas_cumprod."""

    def _shared_config_reasons(self) -> list[str]:
        """As the base's, plus clip_sample with a range the clamp cannot take."""
        reasons = super()._shared_config_reasons()
        if self.config.clip_sample and not self.config.clip_sample_range > 0:
            reasons.append(f"clip_sample_range={self.config.clip_sample_range}")
        return reasons

    def _add_noise_table(self) -> Tensor:
        g = self.alphas_cumprod.cpu().double()
        return torch.stack([g.sqrt(), self.domain_scale * (1 - g).sqrt()], dim=1)

    def add_noise(self, original_samples: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """The parent's add_noise in one kernel: sqrt(g_t) x_0 + k sqrt(1 - g_t) noise, with
        float32 coefficients for half and bfloat16 samples; timesteps: one or B (per sample)."""
        if self._falls_back(self._add_noise_reasons(original_samples, noise, timesteps)):
            return super().add_noise(original_samples, noise, timesteps)
        return self._fused_add_noise(original_samples, noise, timesteps, ("add_noise",), self._add_noise_table)
