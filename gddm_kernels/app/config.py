"""The configuration of a training run: `TrainConfig`, checked on construction, the names it
chooses from and what each choice implies.

    MODES        "image", "gradient", "laplacian": the domain of the diffusion
                 (gddm_kernels.app.objective, "Modes"); COMPONENTS: field channels per image channel
    PROCESSES    "ddpm", "attenuation": the forward process (objective, "Processes");
                 PREDICTIONS: the U-Net's output blocks per process; T_MIN: the smallest
                 attenuation training time
    MODELS       "unet", "diffusers": the diffusion network (the built-in UNet or diffusers'
                 UNet2DModel, gddm_kernels.app.models)
    SCHEDULES    the DDPM noise schedules by name; PRECISIONS: "fp32", "bf16" (autocast)
    DEVICE_TYPES "cpu", "cuda" (`check_device` checks a request's spelling, `resolve_device`
                 also that the device exists here); MAX_SEED: the largest seed
"""

import dataclasses
import math

import torch

from ..dispatch import BACKENDS
from ..schedules import Schedule, cosine_schedule, linear_schedule

MODES = ("image", "gradient", "laplacian")
COMPONENTS = {"image": 1, "gradient": 2, "laplacian": 1}  # field channels per image channel
PROCESSES = ("ddpm", "attenuation")
# What the U-Net predicts per process, in the order of its output channel blocks; also the
# names of the regression terms of the loss.
PREDICTIONS = {"ddpm": ("eps",), "attenuation": ("attenuation", "eps")}
MODELS = ("unet", "diffusers")  # the built-in UNet; diffusers' UNet2DModel (the `diffusers` extra)
T_MIN = 1e-3  # attenuation training times t ~ U(T_MIN, 1]: as t -> 0 the noise k sqrt(t) eps vanishes
SCHEDULES = {"linear": linear_schedule, "cosine": cosine_schedule}
PRECISIONS = ("fp32", "bf16")
DEVICE_TYPES = ("cpu", "cuda")
MAX_SEED = 2**63 - 1  # seeds are 64-bit generator seeds; numpy's SeedSequence needs them >= 0


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; checked on construction (ValueError).

    Attributes:
        mode: "image" (DDPM), "gradient" (GDDM) or "laplacian" (LDDM).
        process: "ddpm" (the schedule's discrete process, an eps-predicting U-Net) or
            "attenuation" (Huang et al.'s analytic attenuation on continuous t, a U-Net
            predicting (c, eps)); gddm_kernels.app.objective, "Processes".
        dataset: "digits", "faces" or a folder of images (gddm_kernels.app.data.load_dataset).
        size: image side in pixels; a multiple of 2 ** (len(channel_mults) - 1).
        channels: 1 (grey) or 3 (RGB).
        steps: total optimiser steps (a resumed run continues up to this count).
        batch_size: images per step and rank.
        lr: AdamW learning rate (no weight decay, constant).
        grad_clip: clip the global gradient norm to this (0 = no clipping).
        ema_decay: EMA decay in [0, 1), warmed up as min(decay, (1 + n) / (10 + n)).
        timesteps: T, the number of diffusion steps (ddpm); for attenuation only the time
            range [0, T] of the network's input t T. schedule: "linear" or "cosine" (ddpm only).
        model: "unet" (the built-in UNet) or "diffusers" (diffusers' UNet2DModel of the same
            widths, needs the `diffusers` extra; the one `export` turns into a pipeline).
        base_channels, channel_mults, num_res_blocks, dropout: the U-Net (gddm_kernels.app.models).
        sparsity_weight: lambda of the guided-sparsity term (gddm_kernels.app.objective; 0 = off).
        poisson_net: also train a PoissonNet (gradient and laplacian modes, either process).
        poisson_sigma_max: largest noise level sigma of the Poisson-net inputs.
        precision: "fp32" or "bf16" (autocast of the networks' forward passes, CPU or CUDA).
        seed: seeds the initialisation and, with the rank, every generator; in [0, 2**63 - 1].
        device: "cpu", "cuda", "cuda:1", ... or None (CUDA when available; under DDP on CUDA
            the device is cuda:LOCAL_RANK).
        backend: gddm op backend for the whole run ("reference" runs every op as pure PyTorch),
            or None (automatic).
        out: folder for checkpoint.pt, or None (no checkpoint).
        resume: a checkpoint to continue from, or None.
        save_every: also write the checkpoint every this many steps (0 = only at the end).
        log_every: refresh the progress bar's loss every this many steps.
        progress: show a tqdm progress bar (rank 0 only).
    """

    mode: str = "laplacian"
    process: str = "ddpm"
    dataset: str = "digits"
    size: int = 16
    channels: int = 1
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    timesteps: int = 1000
    schedule: str = "linear"
    model: str = "unet"
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    dropout: float = 0.0
    sparsity_weight: float = 0.0
    poisson_net: bool = False
    poisson_sigma_max: float = 0.2
    precision: str = "fp32"
    seed: int = 0
    device: str | None = None
    backend: str | None = None
    out: str | None = None
    resume: str | None = None
    save_every: int = 0
    log_every: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        self.channel_mults = tuple(self.channel_mults)
        _check_choice("mode", self.mode, MODES)
        _check_choice("process", self.process, PROCESSES)
        _check_choice("schedule", self.schedule, tuple(SCHEDULES))
        _check_choice("model", self.model, MODELS)
        _check_choice("precision", self.precision, PRECISIONS)
        if self.backend is not None:
            _check_choice("backend", self.backend, tuple(BACKENDS))
        for name in ("size", "steps", "batch_size", "timesteps", "base_channels", "num_res_blocks", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"gddm.train: `{name}` must be an integer >= 1, got {value!r}")
        multiple = self.size_multiple
        if self.size % multiple:
            raise ValueError(f"gddm.train: `size` must be a multiple of {multiple} for a U-Net with "
                             f"channel_mults={self.channel_mults} (2 ** (levels - 1)), got {self.size}")
        check_seed(self.seed, "train")
        if self.device is not None:
            check_device(self.device, "train")
        for name, ok, requirement in (
            ("lr", 0 < self.lr < math.inf, "be a finite number > 0"),
            ("grad_clip", 0 <= self.grad_clip < math.inf, "be a finite number >= 0"),
            ("ema_decay", 0 <= self.ema_decay < 1, "lie in [0, 1)"),
            ("sparsity_weight", 0 <= self.sparsity_weight < math.inf, "be a finite number >= 0"),
            ("poisson_sigma_max", 0 <= self.poisson_sigma_max < math.inf, "be a finite number >= 0"),
            ("save_every", self.save_every >= 0, "be >= 0"),
            ("channels", self.channels in (1, 3), "be 1 or 3"),
            ("channel_mults", len(self.channel_mults) >= 1, "be non-empty"),
        ):
            if not ok:
                raise ValueError(f"gddm.train: `{name}` must {requirement}, got {getattr(self, name)!r}")
        if self.poisson_net and self.mode == "image":
            raise ValueError("gddm.train: `poisson_net` needs mode 'gradient' or 'laplacian' (an image-mode "
                             "model samples images directly)")
        if self.save_every and self.out is None:
            raise ValueError("gddm.train: `save_every` needs `out` (the folder for the checkpoint)")

    @property
    def size_multiple(self) -> int:
        """What the image side must be a multiple of: 2 ** (len(channel_mults) - 1)."""
        return 2 ** (len(self.channel_mults) - 1)

    @property
    def field_channels(self) -> int:
        """Channels of the field as the networks see it: C * COMPONENTS[mode]."""
        return self.channels * COMPONENTS[self.mode]

    def field_shape(self, num_samples: int) -> tuple[int, ...]:
        """Shape of `num_samples` fields of the mode's domain: (N, C, H, W), or (N, C, 2, H, W)."""
        return (num_samples, self.channels, *(2,) * (self.mode == "gradient"), self.size, self.size)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"gddm.train: unknown {name} {value!r}; choose one of {list(choices)}")


def check_seed(seed: object, op: str) -> None:
    """`seed` is an integer in [0, MAX_SEED] (ValueError naming it otherwise)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"gddm.{op}: `seed` must be an integer in [0, 2**63 - 1], got {seed!r}")


def check_device(request: object, op: str) -> torch.device:
    """The torch.device a request such as "cpu", "cuda" or "cuda:1" names, if it is spelled as
    one of DEVICE_TYPES (ValueError otherwise); whether it exists here is `resolve_device`'s."""
    try:
        device = torch.device(request)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ValueError(f"gddm.{op}: unknown device {request!r}; choose cpu, cuda or cuda:N")
    return device


def resolve_device(request: str | torch.device | None, op: str, default_index: int = 0) -> torch.device:
    """The device to run on: `request` (checked to exist here), or by default cuda:default_index
    when CUDA is available, else the CPU."""
    if request is None:
        return torch.device(f"cuda:{default_index}" if torch.cuda.is_available() else "cpu")
    device = check_device(request, op)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"gddm.{op}: device {str(request)!r} asked for, but CUDA is not available here "
                             "(torch.cuda.is_available() is False); use cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"gddm.{op}: device {str(request)!r} asked for, but this machine has {count} CUDA "
                             f"device(s), cuda:0..cuda:{count - 1}")
    return device


def make_schedule(config: TrainConfig) -> Schedule:
    """The run's noise schedule (config.schedule over config.timesteps steps), on the CPU."""
    return SCHEDULES[config.schedule](config.timesteps)
