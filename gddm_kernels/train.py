"""Training image, gradient-domain (GDDM) and Laplacian-domain (LDDM) diffusion models
(Gong, arXiv 2309.01875) with the fused ops, on one process or many (DDP under torchrun).

Modes. The mode names the domain the diffusion runs in; the image x0 (B, C, H, W) in [-1, 1]
becomes the clean field F0 = D(x0) with

    image      D = identity          F0 (B, C, H, W)      noise scale k = 1
    gradient   D = gradient          F0 (B, C, 2, H, W)   k = sqrt(2)     (GDDM, eq. 14)
    laplacian  D = laplacian         F0 (B, C, H, W)      k = sqrt(5)/2   (LDDM, eq. 21)

and the U-Net sees a field as channels, (B, C * COMPONENTS[mode], H, W) (`field_channels`).

Processes. Every mode trains one of two forward processes on its field (`process`), with one
code path: only the noising, the network's outputs and the regression targets differ
(`Objective.noised`, `DiffusionNets.predict`).

    "ddpm"         t ~ U{0, ..., T-1} per sample, g = gamma_t of the schedule,
                   (F_t, eps) = add_noise(x0, t, schedule, mode),
                   F_t = sqrt(g) F0 + k sqrt(1 - g) eps;
                   the U-Net (field_channels outputs) predicts eps_hat at the time input t.
    "attenuation"  analytic attenuation (Huang et al. 2023, "Simultaneous Image-to-Zero and
                   Zero-to-Noise", Alg. 1) with the linear attenuation H_t = c t, c = -F0:
                   t ~ U(T_MIN, 1] per sample (continuous),
                   (F_t, eps) = attenuation_add_noise(x0, t, mode),
                   F_t = F0 + H_t + k sqrt(t) eps = (1 - t) F0 + k sqrt(t) eps;
                   the U-Net has 2 * field_channels outputs, the first half c_hat (the
                   attenuation, target c = -F0), the second eps_hat; its time input is t T
                   (T = `timesteps`), so that the sinusoidal embedding spans the same range as
                   a DDPM network's integer timesteps. The schedule is not used.

In both the fused op draws eps in-kernel and returns it as the target. Objective of one step
on one rank:

    L_eps      = mean (eps_hat - eps)^2               (eq. 18 for GDDM, eq. 24 for LDDM, the
                                                       "simple" DDPM loss for images)
    L_atten    = mean (c_hat - c)^2                   (attenuation only: Huang et al.'s loss is
                                                       L_atten + L_eps)
    L_sparse   = lambda mean |sqrt(g) F0_hat| = lambda mean |F_t - k sqrt(1 - g) eps_hat|  (ddpm)
                 lambda mean |F0_hat| = lambda mean |c_hat|                             (attenuation)
    L_poisson  = mean (P(F0 + sigma z) - x0)^2,  sigma ~ U(0, sigma_max) per sample, z ~ N(0, I)
    loss       = L_eps [+ L_atten] + L_sparse + L_poisson

L_sparse is the guided-sparsity term (eqs. 25/26): the L1 norm of the predicted clean field.
For ddpm, F0_hat = (F_t - k sqrt(1 - g) eps_hat) / sqrt(g) is weighted by sqrt(g) so that its
gradient with respect to eps_hat stays bounded by lambda k per element: the bare |F0_hat| has
the factor k sqrt((1 - g) / g), 157 k at t = T-1 of the linear schedule (g ~ 4e-5), which would
let the noisiest timesteps dominate. The attenuation network predicts F0_hat = -c_hat directly,
so its gradient is bounded by lambda without a weight. L_poisson (only with `poisson_net`, for
either process: it does not depend on the diffusion) trains the Poisson network P to map a
field, made non-integrable by the added noise, to its image. Means run over every element of
the batch. Means are per rank: under DDP each rank has its own loss, and the gradients are
averaged across ranks.

Randomness. Per rank r, three generators are seeded from (seed, r, stream), so ranks draw
different but reproducible batches and noise: "data" (the CPU generator of
`gddm_kernels.data.batches`), "noise" (on the device: t, the seeds of the in-kernel noise,
the Poisson-net noise) and "torch" (the global generator: dropout). The networks are
initialised from `seed` alone, identically on every rank.

Checkpoints (`<out>/checkpoint.pt`, rank 0 writes): the config, the step, the networks, their
EMA, the optimiser, the dataset's mean pixel value (the constant a Poisson solve cannot
recover; the sampler adds it back) and every rank's generator states. Resuming restores all of
it and replays the data stream to the saved step (the permutation in progress lives in the
stream, not the generator; the replay is checked against the saved generator state), so
training 2N steps straight and N + resume + N give identical weights and losses.
"""

import copy
import dataclasses
import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import data as datasets
from .diffusion import add_noise, attenuation_add_noise
from .dispatch import BACKENDS, use_backend
from .models import PoissonNet, UNet
from .diffusion import DOMAIN_SCALES
from .schedules import Schedule, cosine_schedule, linear_schedule
from .stencils import gradient, laplacian

MODES = ("image", "gradient", "laplacian")
COMPONENTS = {"image": 1, "gradient": 2, "laplacian": 1}  # field channels per image channel
PROCESSES = ("ddpm", "attenuation")
# What the U-Net predicts per process, in the order of its output channel blocks; also the
# names of the regression terms of the loss.
PREDICTIONS = {"ddpm": ("eps",), "attenuation": ("attenuation", "eps")}
T_MIN = 1e-3  # attenuation training times t ~ U(T_MIN, 1]: as t -> 0 the noise k sqrt(t) eps vanishes
SCHEDULES = {"linear": linear_schedule, "cosine": cosine_schedule}
PRECISIONS = ("fp32", "bf16")
RNG_STREAMS = ("data", "noise", "torch")
CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
EMA_WARMUP = 10  # EMA decay at optimiser step n is min(decay, (1 + n) / (EMA_WARMUP + n))
# Config fields that must agree between a checkpoint and the run that resumes it.
RESUME_FIELDS = ("mode", "process", "dataset", "size", "channels", "batch_size", "timesteps", "schedule",
                 "base_channels", "channel_mults", "num_res_blocks", "dropout", "poisson_net", "seed")


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; checked on construction (ValueError).

    Attributes:
        mode: "image" (DDPM), "gradient" (GDDM) or "laplacian" (LDDM).
        process: "ddpm" (the schedule's discrete process, an eps-predicting U-Net) or
            "attenuation" (Huang et al.'s analytic attenuation on continuous t, a U-Net
            predicting (c, eps)); module notes.
        dataset: "digits", "faces" or a folder of images (gddm_kernels.data.load_dataset).
        size: image side in pixels; a multiple of 2 ** (len(channel_mults) - 1).
        channels: 1 (grey) or 3 (RGB).
        steps: total optimiser steps (a resumed run continues up to this count).
        batch_size: images per step and rank.
        lr: AdamW learning rate (no weight decay, constant).
        grad_clip: clip the global gradient norm to this (0 = no clipping).
        ema_decay: EMA decay in [0, 1), warmed up as min(decay, (1 + n) / (10 + n)).
        timesteps: T, the number of diffusion steps (ddpm); for attenuation only the time
            range [0, T] of the network's input t T. schedule: "linear" or "cosine" (ddpm only).
        base_channels, channel_mults, num_res_blocks, dropout: the U-Net (gddm_kernels.models).
        sparsity_weight: lambda of the guided-sparsity term (module notes; 0 = off).
        poisson_net: also train a PoissonNet (gradient and laplacian modes, either process).
        poisson_sigma_max: largest noise level sigma of the Poisson-net inputs.
        precision: "fp32" or "bf16" (autocast of the networks' forward passes, CPU or CUDA).
        seed: seeds the initialisation and, with the rank, every generator.
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
        for name, ok, requirement in (
            ("lr", self.lr > 0, "be > 0"),
            ("grad_clip", self.grad_clip >= 0, "be >= 0"),
            ("ema_decay", 0 <= self.ema_decay < 1, "lie in [0, 1)"),
            ("sparsity_weight", self.sparsity_weight >= 0, "be >= 0"),
            ("poisson_sigma_max", self.poisson_sigma_max >= 0, "be >= 0"),
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


# ---- fields and networks ------------------------------------------------------------------------

def clean_field(x0: Tensor, mode: str) -> Tensor:
    """F0 = D(x0) for images (B, C, H, W): the image, its gradient (B, C, 2, H, W) or Laplacian."""
    if mode == "gradient":
        return gradient(x0)
    if mode == "laplacian":
        return laplacian(x0)
    return x0


def as_channels(field: Tensor) -> Tensor:
    """A field (B, C, H, W) or (B, C, 2, H, W) as network input (B, C * components, H, W);
    gradient component k of image channel c becomes channel 2c + k."""
    return field.flatten(1, -3)


def make_schedule(config: TrainConfig) -> Schedule:
    """The run's noise schedule (config.schedule over config.timesteps steps), on the CPU."""
    return SCHEDULES[config.schedule](config.timesteps)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast of the networks' forward passes when precision == "bf16"."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


class DiffusionNets(nn.Module):
    """The networks of a run: `model`, the U-Net on (B, field_channels, H, W) with one block of
    field_channels outputs per entry of PREDICTIONS[config.process] (eps; or c, then eps), and
    `poisson_net`, the field -> image PoissonNet (None unless config.poisson_net)."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.predictions = PREDICTIONS[config.process]
        self.time_scale = float(config.timesteps) if config.process == "attenuation" else None
        width = dict(base_channels=config.base_channels, channel_mults=config.channel_mults)
        self.model = UNet(config.field_channels, len(self.predictions) * config.field_channels,
                          num_res_blocks=config.num_res_blocks, dropout=config.dropout, **width)
        self.poisson_net = PoissonNet(config.field_channels, config.channels, **width) if config.poisson_net else None

    def network_time(self, t: Tensor) -> Tensor:
        """The U-Net's time input for t (B,): a ddpm timestep as it is, an attenuation time t in
        (0, 1] as t T, so that both span the embedding's range [0, T] (module notes)."""
        return t if self.time_scale is None else t * self.time_scale

    def predict(self, field: Tensor, t: Tensor, precision: str) -> tuple[Tensor, ...]:
        """The predictions named by PREDICTIONS[process] for a noisy field (B, C, [2,] H, W) at
        times t (B,), each float32 of the field's shape: (eps_hat,) or (c_hat, eps_hat)."""
        with autocast(field.device, precision):
            out = self.model(as_channels(field), self.network_time(t))
        return out.float().view(field.shape[0], len(self.predictions), *field.shape[1:]).unbind(1)


class Objective(nn.Module):
    """The training loss of the module notes; `forward(x0, generator) -> (loss, parts)` with
    x0 (B, C, H, W) on the device, parts the detached terms. One module, so DDP wraps it."""

    def __init__(self, nets: DiffusionNets, schedule: Schedule, config: TrainConfig) -> None:
        super().__init__()
        self.nets, self.schedule, self.config = nets, schedule, config
        self.scale = DOMAIN_SCALES[config.mode]

    def forward(self, x0: Tensor, generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        config, batch = self.config, x0.shape[0]
        t, noisy, targets = self.noised(x0, generator)
        predictions = dict(zip(self.nets.predictions, self.nets.predict(noisy, t, config.precision), strict=True))
        parts = {name: (predictions[name] - target).square().mean() for name, target in targets.items()}
        if config.sparsity_weight:
            parts["sparsity"] = config.sparsity_weight * self.sparse_field(noisy, t, predictions).abs().mean()
        if self.nets.poisson_net is not None:
            field = as_channels(clean_field(x0, config.mode))
            sigma = config.poisson_sigma_max * torch.rand(batch, 1, 1, 1, generator=generator, device=x0.device)
            noise = torch.randn(field.shape, generator=generator, device=x0.device)
            with autocast(x0.device, config.precision):
                image = self.nets.poisson_net(field + sigma * noise)
            parts["poisson"] = (image.float() - x0).square().mean()
        loss = sum(parts.values())
        return loss, {name: value.detach() for name, value in parts.items()}

    def noised(self, x0: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """One draw of the process for images x0 (B, C, H, W): (t (B,), F_t, targets), the targets
        named like PREDICTIONS[process] (module notes, "Processes")."""
        config, batch = self.config, x0.shape[0]
        if config.process == "attenuation":
            t = 1 - (1 - T_MIN) * torch.rand(batch, generator=generator, device=x0.device)
            noisy, eps = attenuation_add_noise(x0, t, config.mode, generator=generator)
            return t, noisy, {"attenuation": -clean_field(x0, config.mode), "eps": eps}
        t = torch.randint(0, config.timesteps, (batch,), generator=generator, device=x0.device)
        noisy, eps = add_noise(x0, t, self.schedule, config.mode, generator=generator)
        return t, noisy, {"eps": eps}

    def sparse_field(self, noisy: Tensor, t: Tensor, predictions: dict[str, Tensor]) -> Tensor:
        """The predicted clean field as the sparsity term weighs it (module notes):
        sqrt(g) F0_hat = F_t - k sqrt(1 - g) eps_hat (ddpm), F0_hat = -c_hat (attenuation)."""
        if self.config.process == "attenuation":
            return -predictions["attenuation"]
        residual_scale = (self.scale * (1 - self.schedule.gamma(t)).sqrt()).float()
        return noisy - residual_scale.view(-1, *[1] * (noisy.dim() - 1)) * predictions["eps"]


# ---- EMA, ranks, generators ---------------------------------------------------------------------

@torch.no_grad()
def ema_update(ema: nn.Module, nets: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * nets, parameters and floating buffers."""
    targets = [*ema.parameters(), *(b for b in ema.buffers() if b.is_floating_point())]
    sources = [*nets.parameters(), *(b for b in nets.buffers() if b.is_floating_point())]
    torch._foreach_lerp_(targets, sources, 1.0 - decay)


def ema_decay_at(step: int, decay: float) -> float:
    """The EMA decay used after optimiser step `step` (0-based): min(decay, (1+n)/(EMA_WARMUP+n))."""
    return min(decay, (1 + step) / (EMA_WARMUP + step))


def rank_seed(seed: int, rank: int, stream: str) -> int:
    """A 63-bit seed for generator `stream` (RNG_STREAMS) of `rank`: numpy's SeedSequence of
    (seed, rank, stream index), so streams and ranks are statistically independent."""
    words = np.random.SeedSequence([seed, rank, RNG_STREAMS.index(stream)]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def rank_generators(seed: int, rank: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """(data generator on the CPU, noise generator on `device`) of a rank (module notes)."""
    data = torch.Generator().manual_seed(rank_seed(seed, rank, "data"))
    noise = torch.Generator(device).manual_seed(rank_seed(seed, rank, "noise"))
    return data, noise


class _Ranks:
    """This process's place in a torch.distributed job (WORLD_SIZE > 1 in the environment,
    as torchrun sets it), or a single process. Initialises the process group (nccl on CUDA,
    gloo on CPU) unless the caller already did, and then also destroys it at `close`."""

    def __init__(self, device_request: str | None) -> None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(device_request or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.owns_group = world > 1 and not dist.is_initialized()
        if self.owns_group:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.distributed = dist.is_initialized() and dist.get_world_size() > 1
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1

    def gather(self, obj: object) -> list[object]:
        """Every rank's `obj`, in rank order (on every rank)."""
        if not self.distributed:
            return [obj]
        gathered: list[object] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


# ---- checkpoints --------------------------------------------------------------------------------

def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint written by `train`, with its config as a TrainConfig under "config"."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gddm: checkpoint {str(path)!r} does not exist")
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"gddm: {str(path)!r} is not a gddm_kernels training checkpoint (format {CHECKPOINT_FORMAT})")
    checkpoint["config"] = TrainConfig(**checkpoint["config"])
    return checkpoint


def _rng_state(data_gen: torch.Generator, noise_gen: torch.Generator, device: torch.device) -> dict:
    return {"data": data_gen.get_state(), "noise": noise_gen.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _save(path: Path, config: TrainConfig, step: int, nets: nn.Module, ema: nn.Module,
          optimizer: torch.optim.Optimizer, image_mean: float, rng: list[dict]) -> None:
    """Writes the checkpoint atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(config), "step": step,
             "nets": nets.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
             "image_mean": image_mean, "rng": rng}
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _restore(config: TrainConfig, ranks: _Ranks, nets: nn.Module, ema: nn.Module,
             optimizer: torch.optim.Optimizer, stream: Iterator[Tensor], data_gen: torch.Generator,
             noise_gen: torch.Generator) -> int:
    """Loads config.resume into the run and returns its step (module notes, "Checkpoints")."""
    checkpoint = load_checkpoint(config.resume)
    saved = checkpoint["config"]
    differing = [f"{name}: {getattr(saved, name)!r} != {getattr(config, name)!r}"
                 for name in RESUME_FIELDS if getattr(saved, name) != getattr(config, name)]
    if differing:
        raise ValueError(f"gddm.train: cannot resume {config.resume!r}, its config differs: {'; '.join(differing)}")
    if len(checkpoint["rng"]) != ranks.world_size:
        raise ValueError(f"gddm.train: {config.resume!r} was written by {len(checkpoint['rng'])} processes; "
                         f"resume it with as many, got {ranks.world_size}")
    step = checkpoint["step"]
    if step > config.steps:
        raise ValueError(f"gddm.train: {config.resume!r} is at step {step}, beyond `steps` = {config.steps}")
    nets.load_state_dict(checkpoint["nets"])
    ema.load_state_dict(checkpoint["ema"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    rng = checkpoint["rng"][ranks.rank]
    for _ in range(step):
        next(stream)
    if not torch.equal(data_gen.get_state(), rng["data"]):
        raise ValueError(f"gddm.train: replaying the data stream of {config.resume!r} does not reproduce its "
                         "generator state (has the dataset changed?)")
    noise_gen.set_state(rng["noise"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and ranks.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], ranks.device)
    return step


# ---- the training loop --------------------------------------------------------------------------

def train(config: TrainConfig) -> dict:
    """Trains as configured (module notes) and returns
        losses: this rank's total loss per step run by this call (floats),
        loss_parts: the same per term ("eps", "attenuation" for that process, and "sparsity",
            "poisson" when active),
        start_step, step: the first and last step + 1 of this call,
        checkpoint: the checkpoint path (None without config.out),
        nets, ema: the trained DiffusionNets and their EMA copy,
        rank, world_size, seconds (wall time of the loop).
    Under torchrun (WORLD_SIZE > 1) every rank calls it; DDP averages the gradients."""
    with use_backend(config.backend) if config.backend else nullcontext():
        ranks = _Ranks(config.device)
        try:
            return _train(config, ranks)
        finally:
            ranks.close()


def _train(config: TrainConfig, ranks: _Ranks) -> dict:
    device = ranks.device
    images = datasets.load_dataset(config.dataset, config.size, config.channels)
    image_mean = float(images.mean())
    torch.manual_seed(config.seed)
    nets = DiffusionNets(config).to(device)
    ema = copy.deepcopy(nets).requires_grad_(False)
    objective = Objective(nets, make_schedule(config).to(device), config)
    optimizer = torch.optim.AdamW(nets.parameters(), lr=config.lr, weight_decay=0.0)
    data_gen, noise_gen = rank_generators(config.seed, ranks.rank, device)
    torch.manual_seed(rank_seed(config.seed, ranks.rank, "torch"))
    stream = datasets.batches(images, config.batch_size, data_gen)
    start = _restore(config, ranks, nets, ema, optimizer, stream, data_gen, noise_gen) if config.resume else 0
    runner = objective
    if ranks.distributed:
        runner = DistributedDataParallel(objective, device_ids=[device] if device.type == "cuda" else None)
    path = Path(config.out) / CHECKPOINT_NAME if config.out is not None else None

    def save(step: int) -> None:
        rng = ranks.gather(_rng_state(data_gen, noise_gen, device))
        if ranks.rank == 0:
            _save(path, config, step, nets, ema, optimizer, image_mean, rng)
        ranks.barrier()

    bar = tqdm(total=config.steps, initial=start, disable=not config.progress or ranks.rank != 0,
               desc=f"train {config.mode} {config.process}", dynamic_ncols=True)
    pending: list[dict[str, Tensor]] = []
    history: dict[str, list[float]] = {}
    began = time.perf_counter()
    for step in range(start, config.steps):
        x0 = next(stream).to(device, non_blocking=True)
        loss, parts = runner(x0, noise_gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(nets.parameters(), config.grad_clip)
        optimizer.step()
        ema_update(ema, nets, ema_decay_at(step, config.ema_decay))
        pending.append({"loss": loss.detach(), **parts})
        last = step + 1 == config.steps
        if (step + 1) % config.log_every == 0 or last:  # one host sync per log interval
            for name, values in _flush(pending).items():
                history.setdefault(name, []).extend(values)
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}")
        bar.update(1)
        if path is not None and (last or (config.save_every and (step + 1) % config.save_every == 0)):
            save(step + 1)
    bar.close()
    seconds = time.perf_counter() - began
    losses = history.pop("loss", [])
    return {"losses": losses, "loss_parts": history, "start_step": start, "step": config.steps,
            "checkpoint": str(path) if path is not None else None, "nets": nets, "ema": ema,
            "rank": ranks.rank, "world_size": ranks.world_size, "seconds": seconds}


def _flush(pending: list[dict[str, Tensor]]) -> dict[str, list[float]]:
    """Moves the recorded per-step loss tensors to the host (one sync) and empties `pending`."""
    names = pending[0].keys()
    values = {name: torch.stack([entry[name] for entry in pending]).tolist() for name in names}
    pending.clear()
    return values
