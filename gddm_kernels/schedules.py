"""Noise schedules of the forward diffusion (docs/design.md, "Forward diffusion").

A schedule is the sequence beta_0 .. beta_{T-1} with

    alpha_t = 1 - beta_t,        gamma_t = prod_{s <= t} alpha_s   (diffusers: alphas_cumprod)

indexed by the integer timestep t in [0, T). Everything is computed in float64; the tables a
kernel reads are stored as float32 (rounded once from the float64 values), and `gammas64` keeps
the float64 gamma_t from which the reference derives every per-sample coefficient of a step
(those depend on pairs (t, t_prev) and are cheap to form per sample, not per element).

Timesteps are per sample: a `(B,)` integer tensor on the data's device. Gathering a coefficient
is plain indexing (`schedule.sqrt_gammas[t]`, `schedule.gamma(t)`), which never synchronises
with the host, so a step stays CUDA-graph capturable. The value t = -1 stands for the clean
sample, gamma_{-1} = 1 (the target of a step that ends the chain).

Range checks and host syncs: a timestep outside [0, T) must not pass silently (negative values
would wrap around in indexing), but checking values needs the values. `check_values` therefore
raises a ValueError eagerly for CPU tensors (no device to wait for) and otherwise uses
`torch._assert_async`, a device-side assert: no host sync, capturable and traceable by
torch.compile, at the price that a failure on a GPU surfaces at a later CUDA call and poisons
the CUDA context (as an out-of-range index would anyway).
"""

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import Tensor

MAX_BETA = 0.999  # cap of the cosine schedule (Nichol & Dhariwal 2021; diffusers' squaredcos_cap_v2)
INTEGER_DTYPES = (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
    """A discrete noise schedule of T steps. All tables have shape (T,).

    Attributes (float32, for kernels):
        betas, alphas (= 1 - betas), gammas (= cumprod(alphas), diffusers' alphas_cumprod),
        sqrt_gammas, sqrt_one_minus_gammas.
    Attributes (float64):
        gammas64: gamma_t in float64, the source of every per-sample step coefficient.
    Build one with `linear_schedule`, `cosine_schedule` or `schedule_from_betas`.
    """

    betas: Tensor
    alphas: Tensor
    gammas: Tensor
    sqrt_gammas: Tensor
    sqrt_one_minus_gammas: Tensor
    gammas64: Tensor

    @property
    def num_timesteps(self) -> int:
        """T, the number of timesteps."""
        return self.betas.shape[0]

    @property
    def device(self) -> torch.device:
        return self.betas.device

    def to(self, device: torch.device | str) -> "Schedule":
        """The same schedule with every table on `device` (dtypes unchanged)."""
        tables = {field.name: getattr(self, field.name).to(device) for field in dataclasses.fields(self)}
        return dataclasses.replace(self, **tables)

    def gamma(self, t: Tensor) -> Tensor:
        """gamma_t per sample: (B,) integer timesteps in [-1, T) -> (B,) float64, with
        gamma_{-1} = 1. Pure indexing and `where`: no host sync."""
        t = t.long()  # uint8 would index as a mask, int8/int16 not at all
        return torch.where(t >= 0, self.gammas64[t.clamp(min=0)], 1.0)

    def check_timesteps(self, t: object, batch_size: int, device: torch.device, op: str, arg: str,
                        *, allow_clean: bool = False) -> Tensor:
        """`t` is a (batch_size,) integer tensor on `device` (and on the schedule's device) with
        values in [0, T), or in [-1, T) when `allow_clean` (t = -1: the clean sample). Returns
        it as int64 (the compiled ops check the same in C++)."""
        t = check_per_sample(t, batch_size, device, op, arg, integer=True)
        if self.device != t.device:
            raise ValueError(
                f"gddm.{op}: argument `schedule` must be on the device of `{arg}` ({t.device}); "
                f"move it with schedule.to(device), got a schedule on {self.device}"
            )
        low = -1 if allow_clean else 0
        check_values((t >= low) & (t < self.num_timesteps), t, op, arg,
                     f"lie in [{low}, {self.num_timesteps})")
        return t


def check_per_sample(t: object, batch_size: int, device: torch.device, op: str, arg: str,
                     *, integer: bool) -> Tensor:
    """`t` is a (batch_size,) tensor on `device`, of an integer (discrete timesteps) or a
    floating (continuous times) dtype. Returns integer timesteps as int64 (every integer dtype
    is accepted and converted once: uint8 would index as a mask and wrap below 0)."""
    if isinstance(t, Tensor) and t.shape == (batch_size,) and t.device == device and (
            t.dtype is torch.int64 if integer else t.dtype.is_floating_point):
        return t  # the common case, accepted at once (the checks below cost microseconds)
    if not isinstance(t, Tensor):
        raise TypeError(f"gddm.{op}: argument `{arg}` must be a torch.Tensor, got {type(t).__name__}")
    if integer and t.dtype not in INTEGER_DTYPES:
        raise TypeError(f"gddm.{op}: argument `{arg}` must have an integer dtype (timesteps), got {t.dtype}")
    if not integer and not t.dtype.is_floating_point:
        raise TypeError(
            f"gddm.{op}: argument `{arg}` must have a floating dtype (continuous times), got {t.dtype}"
        )
    if t.shape != (batch_size,):
        raise ValueError(
            f"gddm.{op}: argument `{arg}` must have shape (B,) = ({batch_size},), one entry per sample, "
            f"got shape {tuple(t.shape)}"
        )
    if t.device != device:
        raise ValueError(f"gddm.{op}: argument `{arg}` must be on the data's device {device}, got {t.device}")
    return t.long() if integer and t.dtype != torch.int64 else t


def check_values(ok: Tensor, values: Tensor, op: str, arg: str, requirement: str) -> None:
    """Every entry of the boolean tensor `ok` is true, else `gddm.<op>: argument <arg> must
    <requirement>`. Eager CPU tensors raise a ValueError naming the offending `values`; device
    tensors and traced code get a `torch._assert_async` (no host sync; see the module notes)."""
    message = f"gddm.{op}: argument `{arg}` must {requirement}"
    if values.device.type == "cpu" and not torch.compiler.is_compiling():
        if not bool(ok.all()):
            raise ValueError(f"{message}, got {values[~ok].tolist()}")
    else:
        torch._assert_async(ok.all(), message)


def log_snr(g: Tensor) -> Tensor:
    """The log signal-to-noise ratio lambda = log(alpha / sigma) = (log g - log(1 - g)) / 2 of
    gamma values g (any shape); +inf for the clean g = 1."""
    return 0.5 * (torch.log(g) - torch.log1p(-g))


def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """beta_t evenly spaced from beta_start to beta_end (Ho et al. 2020; diffusers "linear")."""
    _check_num_timesteps(T, "linear_schedule")
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"gddm.linear_schedule: argument `{name}` must lie in (0, 1], got {value}")
    return schedule_from_betas(torch.linspace(beta_start, beta_end, T, dtype=torch.float64))


def cosine_schedule(T: int = 1000, s: float = 0.008) -> Schedule:
    """The cosine schedule of Nichol & Dhariwal 2021 (eq. 17), diffusers' "squaredcos_cap_v2":

        gamma(u) = cos^2((u + s) / (1 + s) * pi / 2),   u = t / T,
        beta_t = min(1 - gamma((t + 1) / T) / gamma(t / T), MAX_BETA).
    """
    _check_num_timesteps(T, "cosine_schedule")
    if not s > 0.0:
        raise ValueError(f"gddm.cosine_schedule: argument `s` must be positive, got {s}")
    u = torch.arange(T + 1, dtype=torch.float64) / T
    gamma = torch.cos((u + s) / (1 + s) * (math.pi / 2)) ** 2
    return schedule_from_betas((1 - gamma[1:] / gamma[:-1]).clamp(max=MAX_BETA))


def schedule_from_betas(betas: Tensor | Sequence[float]) -> Schedule:
    """A schedule from given betas, shape (T,), each in (0, 1] (beta = 1 gives the zero
    terminal SNR gamma = 0). Computed in float64 on the CPU; move it with `.to(device)`."""
    betas64 = torch.as_tensor(betas, dtype=torch.float64, device="cpu")
    if betas64.dim() != 1 or betas64.numel() == 0:
        raise ValueError(
            f"gddm.schedule_from_betas: argument `betas` must have shape (T,) with T >= 1, "
            f"got shape {tuple(betas64.shape)}"
        )
    valid = (betas64 > 0) & (betas64 <= 1)
    if not bool(valid.all()):
        raise ValueError(
            f"gddm.schedule_from_betas: argument `betas` must lie in (0, 1], got {betas64[~valid].tolist()}"
        )
    alphas64 = 1 - betas64
    gammas64 = torch.cumprod(alphas64, dim=0)
    return Schedule(
        betas=betas64.float(),
        alphas=alphas64.float(),
        gammas=gammas64.float(),
        sqrt_gammas=gammas64.sqrt().float(),
        sqrt_one_minus_gammas=(1 - gammas64).sqrt().float(),
        gammas64=gammas64,
    )


def _check_num_timesteps(T: object, op: str) -> None:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"gddm.{op}: argument `T` must be a positive int, got {T!r}")
