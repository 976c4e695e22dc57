"""Training checkpoints: writing one atomically, loading one, resuming a run from one.

Checkpoints (`<out>/checkpoint.pt`, rank 0 writes): the config, the step, the networks, their
EMA, the optimiser, the dataset's mean pixel value (the constant a Poisson solve cannot
recover; the sampler adds it back) and every rank's generator states. Resuming restores all of
it and replays the data stream to the saved step (the permutation in progress lives in the
stream, not the generator; the replay is checked against the saved generator state), so
training 2N steps straight and N + resume + N give identical weights and losses.

The config is stored as plain data (the TrainConfig's fields as a dict); `load_checkpoint`
turns it back into a TrainConfig.
"""

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from .config import TrainConfig
from .distributed import Ranks

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
# Config fields that must agree between a checkpoint and the run that resumes it.
RESUME_FIELDS = ("mode", "process", "dataset", "size", "channels", "batch_size", "timesteps", "schedule",
                 "base_channels", "channel_mults", "num_res_blocks", "dropout", "poisson_net", "seed")


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


def rng_state(data_gen: torch.Generator, noise_gen: torch.Generator, device: torch.device) -> dict:
    return {"data": data_gen.get_state(), "noise": noise_gen.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def save_checkpoint(path: Path, config: TrainConfig, step: int, nets: nn.Module, ema: nn.Module,
          optimizer: torch.optim.Optimizer, image_mean: float, rng: list[dict]) -> None:
    """Writes the checkpoint atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(config), "step": step,
             "nets": nets.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
             "image_mean": image_mean, "rng": rng}
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def restore(config: TrainConfig, ranks: Ranks, nets: nn.Module, ema: nn.Module,
             optimizer: torch.optim.Optimizer, stream: Iterator[Tensor], data_gen: torch.Generator,
             noise_gen: torch.Generator) -> int:
    """Loads config.resume into the run and returns its step (module notes)."""
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
