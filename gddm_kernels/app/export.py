"""Export of a trained checkpoint as a diffusers pipeline folder: `export(checkpoint, out)` writes
a `gddm_kernels.diffusers.GradientDomainPipeline` (save_pretrained: safetensors weights and
JSON configs) that `GradientDomainPipeline.from_pretrained(out)` loads and samples from.

    unet            the checkpoint's UNet2DModel (EMA weights by default, as `sample` uses)
    scheduler       FusedDDPMScheduler ("ddpm") or FusedDDIMScheduler ("ddim") with
                    domain = the training mode and the training schedule's betas: diffusers'
                    named beta_schedule when it gives exactly those betas (the cosine schedule,
                    "squaredcos_cap_v2"), else `trained_betas` (the linear schedule: diffusers'
                    float32 linspace differs from the float64 one in the last bit);
                    num_train_timesteps = T, epsilon prediction, no clipping (the app's
                    sampler does not clip by default), timestep_spacing "trailing" (the
                    chain starts at the last training timestep, as the app's sampler does)
    reconstruction  "dct" or "multigrid", and image_mean, the checkpoint's training-set mean

What the pipeline cannot express is refused (ValueError), before anything is written: a
checkpoint of the built-in UNet (only a `model="diffusers"` run holds a UNet2DModel) and the
attenuation process (the pipeline's schedulers run the DDPM process). A Poisson network in
the checkpoint is not exported: the pipeline reconstructs by a Poisson solve.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..schedules import Schedule
from .config import TrainConfig, make_schedule
from .models.unet2d import import_diffusers
from .sample import RECONSTRUCTIONS, as_checkpoint, load_nets

EXPORT_SCHEDULERS = ("ddpm", "ddim")
# The reconstructions a pipeline offers: the app's Poisson solves (not its Poisson network).
EXPORT_RECONSTRUCTIONS = tuple(name for name in RECONSTRUCTIONS if name != "poisson_net")
# diffusers' beta_schedule names of the app's schedules, used when they give the same betas.
DIFFUSERS_BETA_SCHEDULES = {"cosine": "squaredcos_cap_v2"}
TIMESTEP_SPACING = "trailing"

if TYPE_CHECKING:  # diffusers is imported only when an export runs
    from ..diffusers import FusedDDIMScheduler, FusedDDPMScheduler, GradientDomainPipeline


def check_exportable(config: TrainConfig, source: str) -> None:
    """ValueError unless a GradientDomainPipeline can express the run of `config` (module notes)."""
    if config.model != "diffusers":
        raise ValueError(f"gddm.export: {source} holds the built-in U-Net (model {config.model!r}), which cannot "
                         "become a diffusers UNet2DModel; train with --model diffusers (TrainConfig(model="
                         "'diffusers')) to export a pipeline")
    if config.process != "ddpm":
        raise ValueError(f"gddm.export: {source} was trained with process {config.process!r}, which "
                         "GradientDomainPipeline's DDPM/DDIM schedulers cannot sample; only process 'ddpm' exports")


def fused_scheduler(name: str, config: TrainConfig, schedule: Schedule) -> "FusedDDPMScheduler | FusedDDIMScheduler":
    """FusedDDPMScheduler ("ddpm") or FusedDDIMScheduler ("ddim") in config.mode's domain whose
    betas equal `schedule`'s (module notes)."""
    from ..diffusers import FusedDDIMScheduler, FusedDDPMScheduler

    cls = {"ddpm": FusedDDPMScheduler, "ddim": FusedDDIMScheduler}[name]
    common = dict(num_train_timesteps=schedule.num_timesteps, prediction_type="epsilon", clip_sample=False,
                  timestep_spacing=TIMESTEP_SPACING, domain=config.mode)
    if config.schedule in DIFFUSERS_BETA_SCHEDULES:
        scheduler = cls(beta_schedule=DIFFUSERS_BETA_SCHEDULES[config.schedule], **common)
        if torch.equal(scheduler.betas, schedule.betas):
            return scheduler
    return cls(trained_betas=schedule.betas.tolist(), **common)


def export(checkpoint: str | os.PathLike | dict, out: str | os.PathLike, scheduler: str = "ddpm",
           reconstruction: str = "dct", use_ema: bool = True) -> "GradientDomainPipeline":
    """Writes the checkpoint's model as a GradientDomainPipeline folder `out` and returns the
    pipeline (module notes).

    Args:
        checkpoint: a checkpoint of `train` with config.model "diffusers" and process "ddpm"
            (a path, or one loaded with `gddm_kernels.app.checkpoints.load_checkpoint`).
        out: the folder to write (created; files of the same names are replaced).
        scheduler: "ddpm" (FusedDDPMScheduler) or "ddim" (FusedDDIMScheduler).
        reconstruction: the pipeline's field -> image solve, "dct" or "multigrid".
        use_ema: export the EMA weights (else the raw ones).
    Raises:
        ValueError: a run the pipeline cannot express (module notes) or an unknown choice;
        DiffusersMissingError: diffusers cannot be imported.
    """
    if scheduler not in EXPORT_SCHEDULERS:
        raise ValueError(f"gddm.export: unknown scheduler {scheduler!r}; choose one of {list(EXPORT_SCHEDULERS)}")
    if reconstruction not in EXPORT_RECONSTRUCTIONS:
        raise ValueError(f"gddm.export: unknown reconstruction {reconstruction!r}; choose one of "
                         f"{list(EXPORT_RECONSTRUCTIONS)}")
    source = "the checkpoint" if isinstance(checkpoint, dict) else f"checkpoint {str(checkpoint)!r}"
    checkpoint = as_checkpoint(checkpoint)
    config: TrainConfig = checkpoint["config"]
    check_exportable(config, source)
    import_diffusers("export")
    from ..diffusers import GradientDomainPipeline

    unet = load_nets(checkpoint, use_ema, torch.device("cpu")).model.unet
    pipeline = GradientDomainPipeline(unet=unet, scheduler=fused_scheduler(scheduler, config, make_schedule(config)),
                                      reconstruction=reconstruction, image_mean=checkpoint["image_mean"])
    pipeline.save_pretrained(Path(out))
    return pipeline
