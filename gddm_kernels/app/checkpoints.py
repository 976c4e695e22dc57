"""Training checkpoints: writing one atomically, loading one, resuming a run from one.

Checkpoints (`<out>/checkpoint.pt`, rank 0 writes): the config, the step, the networks, their
EMA, the optimiser, the dataset's mean pixel value (the constant a Poisson solve cannot
recover; the sampler adds it back) and every rank's generator states. Resuming restores all of
it and replays the data stream to the saved step (the permutation in progress lives in the
stream, not the generator; the replay is checked against the saved generator state), so
training 2N steps straight and N + resume + N give identical weights and losses.

Loading is safe: a checkpoint is read with `torch.load(weights_only=True)`, whose unpickler
rebuilds only tensors and plain containers, so a crafted file cannot run code. The config is
stored as plain data (the TrainConfig's fields as a dict of str, int, float, bool, None and a
tuple of ints), the weights and generator states as tensors. The config's `model` names the
kind of diffusion network the weights belong to ("unet", or "diffusers": a UNet2DModel under
"model.unet."), so `sample` and `export` rebuild that kind; a checkpoint of a version before
`model` existed holds the built-in UNet (LEGACY_DEFAULTS). Whatever is not a checkpoint of
this version (another file, a truncated or corrupt one, one whose config has other fields)
raises `CheckpointError`, one line that says what is wrong, before any of it is used.
"""

import dataclasses
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from .config import TrainConfig
from .distributed import Ranks

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
CHECKPOINT_KEYS = ("format", "config", "step", "nets", "ema", "optimizer", "image_mean", "rng")
RNG_KEYS = ("data", "noise", "torch", "cuda")
# Config fields a checkpoint may lack because older versions did not have them, with the value
# that reproduces what those versions did.
LEGACY_DEFAULTS = {"process": "ddpm", "model": "unet"}
# Config fields that must agree between a checkpoint and the run that resumes it.
RESUME_FIELDS = ("mode", "process", "dataset", "size", "channels", "batch_size", "timesteps", "schedule",
                 "model", "base_channels", "channel_mults", "num_res_blocks", "dropout", "poisson_net", "seed")


class CheckpointError(ValueError):
    """A file that is not a usable gddm_kernels training checkpoint: not one at all, truncated or
    corrupt, written by another version, or holding weights its config does not describe."""


def _first_line(error: BaseException) -> str:
    """`Type: the first sentence of the message` (torch.load goes on with advice that does not
    apply here, such as loading with weights_only=False)."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first.split('. ')[0]}".rstrip(": ")


def _one_line(error: BaseException, limit: int = 400) -> str:
    """The whole message on one line, at most `limit` characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint written by `train`, with its config as a TrainConfig under "config".

    Raises FileNotFoundError if there is no such file and CheckpointError if it is not a
    checkpoint of this version (module notes); nothing in the file runs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gddm: checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001: whatever fails to load is not a usable checkpoint
        raise CheckpointError(f"gddm: cannot load {str(path)!r}: not a gddm_kernels checkpoint, or truncated "
                              f"or corrupt ({_first_line(error)})") from error
    _check_contents(checkpoint, str(path))
    checkpoint["config"] = _config(checkpoint["config"], str(path))
    return checkpoint


def _check_contents(checkpoint: object, name: str) -> None:
    """The parts of a loaded checkpoint have the types `save_checkpoint` writes."""
    if not isinstance(checkpoint, dict) or "format" not in checkpoint:
        raise CheckpointError(f"gddm: {name!r} is not a gddm_kernels training checkpoint")
    if checkpoint["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"gddm: {name!r} is a checkpoint of format {checkpoint['format']!r}, written by "
                              f"another version of gddm_kernels; this version reads format {CHECKPOINT_FORMAT}")
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"gddm: checkpoint {name!r} lacks {missing}")

    def tensors(value: object) -> bool:
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in value.items())

    rng = checkpoint["rng"]
    for key, ok in (
        ("config", isinstance(checkpoint["config"], dict) and all(isinstance(k, str) for k in checkpoint["config"])),
        ("step", isinstance(checkpoint["step"], int) and not isinstance(checkpoint["step"], bool)
         and checkpoint["step"] >= 0),
        ("nets", tensors(checkpoint["nets"])),
        ("ema", tensors(checkpoint["ema"])),
        ("optimizer", isinstance(checkpoint["optimizer"], dict)),
        ("image_mean", isinstance(checkpoint["image_mean"], float)),
        ("rng", isinstance(rng, list) and len(rng) >= 1 and all(
            isinstance(state, dict) and set(state) == set(RNG_KEYS)
            and all(isinstance(state[k], Tensor) and state[k].dtype == torch.uint8 for k in ("data", "noise", "torch"))
            and (state["cuda"] is None or isinstance(state["cuda"], Tensor)) for state in rng)),
    ):
        if not ok:
            raise CheckpointError(f"gddm: checkpoint {name!r} is corrupt: its {key!r} entry is not what "
                                  "gddm_kernels writes")


def _config(saved: dict, name: str) -> TrainConfig:
    """The TrainConfig of a checkpoint's config dict; CheckpointError naming the fields if they
    are not this version's (LEGACY_DEFAULTS fill the fields older versions lacked)."""
    fields = [field.name for field in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(saved) - set(fields))
    missing = [field for field in fields if field not in saved and field not in LEGACY_DEFAULTS]
    if unknown or missing:
        problems = [f"unknown config keys {unknown}"] * bool(unknown) + [f"missing config keys {missing}"] * bool(missing)
        raise CheckpointError(f"gddm: checkpoint {name!r} was written by another version of gddm_kernels: "
                              f"{' and '.join(problems)}")
    try:
        return TrainConfig(**{**LEGACY_DEFAULTS, **saved})
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"gddm: checkpoint {name!r} holds an invalid config ({_first_line(error)})") from error


def load_weights(module: nn.Module | torch.optim.Optimizer, state: dict, what: str, source: str) -> None:
    """module.load_state_dict(state); CheckpointError if the saved `what` (of `source`, e.g.
    "checkpoint 'run/checkpoint.pt'") does not fit it."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"gddm: the {what} in {source} do not fit the networks its config describes "
                              f"({_one_line(error)})") from error


def rng_state(data_gen: torch.Generator, noise_gen: torch.Generator, device: torch.device) -> dict:
    return {"data": data_gen.get_state(), "noise": noise_gen.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def save_checkpoint(path: Path, config: TrainConfig, step: int, nets: nn.Module, ema: nn.Module,
                    optimizer: torch.optim.Optimizer, image_mean: float, rng: list[dict]) -> None:
    """Writes the checkpoint atomically: a temporary file of its own in the same folder (named
    for this process and a random suffix, so that runs sharing the folder never write to one
    file), then a rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(config), "step": step,
             "nets": nets.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
             "image_mean": image_mean, "rng": rng}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:  # "x": fails rather than share an existing file
            torch.save(state, file)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


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
    source = f"checkpoint {config.resume!r}"
    load_weights(nets, checkpoint["nets"], "weights", source)
    load_weights(ema, checkpoint["ema"], "EMA weights", source)
    load_weights(optimizer, checkpoint["optimizer"], "optimiser state", source)
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
