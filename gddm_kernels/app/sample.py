"""Sampling a trained model (gddm_kernels.app.loop.train): the reverse process in the model's domain
with the fused steps, then the reconstruction of images from the sampled fields.

Reverse process. The sampler must fit the process the checkpoint was trained with
(SAMPLER_PROCESSES; by default the process's own, DEFAULT_SAMPLERS).

  process "ddpm": a subsequence of `steps` of the T training timesteps,

    tau_i = floor((T - 1) (steps - 1 - i) / (steps - 1)),  i = 0 .. steps-1   (integer maths:
            T-1 down to 0, distinct for steps <= T; tau_0 = T-1 when steps = 1), then -1,

  is walked from F_{T-1} ~ N(0, k^2 I) (k the domain's noise scale) with one fused step per
  pair (tau_i, tau_{i+1}): "ddpm" (ancestral, eq. 5/15/22), "ddim" (eta = 0: deterministic) or
  "dpm" (DPM-Solver++(2M), first order on its first step). The last step goes to t_prev = -1,
  the clean field.

  process "attenuation" (Huang et al. 2023, Alg. 2, H_t = c t): the uniform grid
  t_i = 1 - i / steps, i = 0 .. steps, is walked from F_1 ~ N(0, k^2 I) with the fused
  `attenuation_step` on the network's (c_hat, eps_hat):

    F_{t'} = F_t - c_hat s - k (sqrt(t) - sqrt(t' - sigma^2)) eps_hat + k sigma z,
    s = t - t',  sigma = eta sqrt(s t' / t);

  eta = 1 is Alg. 2 (the Brownian bridge), eta = 0 the deterministic variant. The last step
  goes to t' = 0, where F_0 = F_t - c_hat t - k sqrt(t) eps_hat (= F0 for exact predictions).

The times live on the device as a (steps + 1, B) table (int64 timesteps or float64 times), and
every step's kernel coefficients are computed from it once, before the loop
(gddm_kernels.diffusion.ReverseTrajectory): a step is one fused kernel call, and the loop has no
host sync (no .item(), no printing of tensors), so a CUDA stream runs ahead freely.

Reconstruction of images (B, C, H, W) from the sampled field, clamped to [-1, 1]:
    image mode   the sample itself ("dct" and "multigrid" do nothing; "poisson_net" is an error)
    "dct"        laplacian: poisson_solve(L); gradient: reconstruct(G) (least squares, eq. 8)
    "multigrid"  the same system solved by multigrid (tol MULTIGRID_TOL)
    "poisson_net" the trained PoissonNet (of this checkpoint, or of `poisson_checkpoint`)
A Poisson solve recovers an image only up to a constant; the solves return the image whose
mean is the training set's mean pixel value (stored in the checkpoint).
"""

import os
from contextlib import nullcontext

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..diffusion import DOMAIN_SCALES, ReverseTrajectory
from ..dispatch import use_backend
from ..poisson import poisson_solve, reconstruct
from ..schedules import Schedule
from .checkpoints import load_checkpoint, load_weights
from .config import TrainConfig, check_device, check_seed, make_schedule, resolve_device
from .images import save_grid
from .objective import DiffusionNets, autocast

SAMPLER_PROCESSES = {"ddpm": "ddpm", "ddim": "ddpm", "dpm": "ddpm", "attenuation": "attenuation"}
SAMPLERS = tuple(SAMPLER_PROCESSES)
DEFAULT_SAMPLERS = {"ddpm": "ddpm", "attenuation": "attenuation"}  # per training process
RECONSTRUCTIONS = ("dct", "multigrid", "poisson_net")
MULTIGRID_TOL = 1e-5
CLEAN = -1  # t_prev of the last step: the clean sample


def timestep_sequence(num_timesteps: int, steps: int, device: torch.device | str = "cpu") -> Tensor:
    """(steps + 1,) int64: `steps` distinct timesteps from T-1 down to 0, then -1 (module notes)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= num_timesteps:
        raise ValueError(f"gddm.sample: `steps` must be an integer in [1, T = {num_timesteps}], got {steps!r}")
    remaining = torch.arange(steps - 1, -1, -1, device=device)
    taus = (num_timesteps - 1) * remaining // (steps - 1) if steps > 1 else remaining + (num_timesteps - 1)
    return torch.cat([taus, taus.new_full((1,), CLEAN)])


def time_sequence(steps: int, device: torch.device | str = "cpu") -> Tensor:
    """(steps + 1,) float64: the attenuation sampler's uniform grid t_i = (steps - i) / steps,
    from 1 down to 0 (module notes)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"gddm.sample: `steps` must be an integer >= 1, got {steps!r}")
    return torch.arange(steps, -1, -1, dtype=torch.float64, device=device) / steps


def sampler_times(sampler: str, schedule: Schedule, steps: int, device: torch.device | str = "cpu") -> Tensor:
    """(steps + 1,) times a sampler walks: `time_sequence` for "attenuation", else
    `timestep_sequence` of the schedule (checks `steps`)."""
    if SAMPLER_PROCESSES[sampler] == "attenuation":
        return time_sequence(steps, device)
    return timestep_sequence(schedule.num_timesteps, steps, device)


def check_sampler(sampler: str, config: TrainConfig) -> None:
    """`sampler` is known (SAMPLERS) and fits the process `config` was trained with."""
    if sampler not in SAMPLERS:
        raise ValueError(f"gddm.sample: unknown sampler {sampler!r}; choose one of {list(SAMPLERS)}")
    needed = SAMPLER_PROCESSES[sampler]
    if needed != config.process:
        fitting = [name for name, process in SAMPLER_PROCESSES.items() if process == config.process]
        raise ValueError(f"gddm.sample: sampler {sampler!r} needs a checkpoint trained with process {needed!r}, "
                         f"this one was trained with process {config.process!r}; choose a sampler of "
                         f"{fitting} (or leave `sampler` unset)")


@torch.no_grad()
def reverse_process(nets: DiffusionNets, config: TrainConfig, schedule: Schedule, num_samples: int, steps: int,
                    sampler: str, generator: torch.Generator, *, eta: float = 0.0, clip_x0: float | None = None,
                    progress: bool = False) -> Tensor:
    """Samples fields of the model's domain: (N, C, H, W), or (N, C, 2, H, W) for gradients.
    `schedule` sets the device (and the timesteps of the ddpm-process samplers; the attenuation
    sampler does not read it); `generator` lives on the device and draws the start and every
    step's noise. `nets.predict(x, t, precision)` gives the model's outputs (module notes)."""
    check_sampler(sampler, config)
    device = schedule.device
    k = DOMAIN_SCALES[config.mode]
    per_sample = sampler_times(sampler, schedule, steps, device)[:, None].expand(-1, num_samples).contiguous()
    attenuation = sampler == "attenuation"
    trajectory = ReverseTrajectory(sampler, per_sample, None if attenuation else schedule, eta=eta, clip_x0=clip_x0,
                                   domain_scale=k)
    x = k * torch.randn(config.field_shape(num_samples), generator=generator, device=device)
    prev_x0 = None
    for i in tqdm(range(steps), desc=f"sample {sampler}", disable=not progress, dynamic_ncols=True):
        outputs = nets.predict(x, per_sample[i], config.precision)  # (eps,) or (c, eps)
        if sampler == "dpm":
            x, prev_x0 = trajectory.step(i, x, outputs[0], prev_x0=prev_x0)
        else:
            x = trajectory.step(i, x, outputs if attenuation else outputs[0], generator=generator)
    return x


@torch.no_grad()
def to_images(field: Tensor, config: TrainConfig, reconstruction: str, image_mean: float,
              poisson_net: torch.nn.Module | None = None) -> Tensor:
    """Images (N, C, H, W) in [-1, 1] from sampled fields of config.mode (module notes)."""
    if config.mode == "image":
        images = field
    elif reconstruction == "poisson_net":
        with autocast(field.device, config.precision):
            images = poisson_net(field).float()
    elif config.mode == "laplacian":
        images = poisson_solve(field, method=reconstruction, mean=image_mean,
                               **({"tol": MULTIGRID_TOL} if reconstruction == "multigrid" else {}))
    else:
        images = reconstruct(field, method=reconstruction, mean=image_mean,
                             **({"tol": MULTIGRID_TOL} if reconstruction == "multigrid" else {}))
    return images.clamp(-1.0, 1.0)


def _poisson_net(checkpoint: dict, poisson_checkpoint: str | os.PathLike | dict | None, use_ema: bool,
                 device: torch.device) -> torch.nn.Module:
    """The PoissonNet to reconstruct `checkpoint`'s samples with, checked to fit them."""
    config = checkpoint["config"]
    source = checkpoint if poisson_checkpoint is None else as_checkpoint(poisson_checkpoint)
    other = source["config"]
    if config.mode == "image":
        raise ValueError("gddm.sample: reconstruction 'poisson_net' does not apply to an image-mode checkpoint "
                         "(its samples are images already)")
    if other.mode != config.mode:
        raise ValueError(f"gddm.sample: the Poisson network comes from a {other.mode!r}-mode checkpoint, but the "
                         f"samples are {config.mode!r} fields; use a Poisson network trained in mode {config.mode!r}")
    if (other.size, other.channels) != (config.size, config.channels):
        raise ValueError(f"gddm.sample: the Poisson network was trained on {other.channels}x{other.size}x{other.size} "
                         f"images, the model samples {config.channels}x{config.size}x{config.size}")
    if not other.poisson_net:
        raise ValueError("gddm.sample: reconstruction 'poisson_net' needs a checkpoint trained with poisson_net=True "
                         "(--poisson-net)")
    return load_nets(source, use_ema, device).poisson_net


def as_checkpoint(checkpoint: str | os.PathLike | dict) -> dict:
    """A checkpoint given as a path (loaded) or as an already loaded dict."""
    return checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)


def load_nets(checkpoint: dict, use_ema: bool, device: torch.device) -> DiffusionNets:
    """The checkpoint's DiffusionNets (EMA or raw weights) on `device`, in eval mode."""
    nets = DiffusionNets(checkpoint["config"])
    load_weights(nets, checkpoint["ema" if use_ema else "nets"], "EMA weights" if use_ema else "weights",
                 "the checkpoint")
    return nets.to(device).eval()


def sample(checkpoint: str | os.PathLike | dict, num_samples: int = 64, steps: int = 250, sampler: str | None = None,
           reconstruction: str = "dct", *, eta: float = 0.0, clip_x0: float | None = None, seed: int = 0,
           device: str | torch.device | None = None, use_ema: bool = True, size: int | None = None,
           poisson_checkpoint: str | os.PathLike | dict | None = None, backend: str | None = None,
           out: str | os.PathLike | None = None, nrow: int = 8, scale: int = 1, progress: bool = False) -> Tensor:
    """Draws `num_samples` images from a checkpoint of `gddm_kernels.app.loop.train` (module notes).

    Args:
        checkpoint: a checkpoint path, or one loaded with `gddm_kernels.app.checkpoints.load_checkpoint`.
        num_samples: N, drawn as one batch.
        steps: reverse steps: 1 .. T for the ddpm process (a subsequence of the training
            timesteps), any integer >= 1 for the attenuation process (a uniform grid on [0, 1]).
        sampler: for a ddpm-process checkpoint "ddpm", "ddim" (with `eta`) or "dpm"
            (DPM-Solver++(2M)); for an attenuation-process checkpoint "attenuation" (with
            `eta`); None: the process's default (DEFAULT_SAMPLERS).
        reconstruction: "dct", "multigrid" or "poisson_net".
        eta: noise level in [0, 1] of "ddim" (0: deterministic, 1: the DDPM posterior
            variance) and "attenuation" (0: deterministic, 1: Huang et al.'s Alg. 2).
        clip_x0: clamp each step's x0 prediction (for "attenuation": x0 = -c) to
            [-clip_x0, clip_x0] in the field's units (None: no clamp).
        seed: seeds the device generator of the start noise and the step noise; in [0, 2**63 - 1].
        device: "cpu", "cuda" or "cuda:N"; default CUDA when available, else CPU.
        use_ema: sample with the EMA weights (else the raw ones).
        size: the image side the caller expects; must equal the checkpoint's (None: no check).
        poisson_checkpoint: take the PoissonNet from this checkpoint (same mode, size, channels).
        backend: gddm op backend for everything (e.g. "reference"), or None (automatic).
        out: also write a PNG grid there (nrow images per row, enlarged `scale` times).
        progress: show a tqdm bar over the steps.
    Returns:
        images (N, C, H, W) in [-1, 1], float32, on the device.
    """
    if reconstruction not in RECONSTRUCTIONS:
        raise ValueError(f"gddm.sample: unknown reconstruction {reconstruction!r}; choose one of {list(RECONSTRUCTIONS)}")
    if poisson_checkpoint is not None and reconstruction != "poisson_net":
        raise ValueError("gddm.sample: `poisson_checkpoint` only applies to reconstruction='poisson_net'")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"gddm.sample: `num_samples` must be an integer >= 1, got {num_samples!r}")
    check_seed(seed, "sample")
    if device is not None:
        check_device(device, "sample")
    checkpoint = as_checkpoint(checkpoint)
    config: TrainConfig = checkpoint["config"]
    sampler = DEFAULT_SAMPLERS[config.process] if sampler is None else sampler
    check_sampler(sampler, config)
    if size is not None and size != config.size:
        raise ValueError(f"gddm.sample: the checkpoint was trained on {config.size}x{config.size} images, got "
                         f"size={size}")
    device = resolve_device(device, "sample")
    schedule = make_schedule(config)
    sampler_times(sampler, schedule, steps)  # checks `steps` before any work
    with use_backend(backend) if backend else nullcontext():
        nets = load_nets(checkpoint, use_ema, device)
        poisson_net = _poisson_net(checkpoint, poisson_checkpoint, use_ema, device) \
            if reconstruction == "poisson_net" else None
        generator = torch.Generator(device).manual_seed(seed)
        field = reverse_process(nets, config, schedule.to(device), num_samples, steps, sampler, generator,
                                eta=eta, clip_x0=clip_x0, progress=progress)
        images = to_images(field, config, reconstruction, checkpoint["image_mean"], poisson_net)
    if out is not None:
        save_grid(images, out, nrow=nrow, scale=scale)
    return images

