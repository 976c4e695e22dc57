"""The training loop: `train(config)` runs a TrainConfig on one process or, under torchrun, on
every rank (DDP), with an EMA copy of the networks and checkpoints.

    config       gddm_kernels.app.config        TrainConfig and its choices
    objective    gddm_kernels.app.objective     the networks' predictions and the loss (the maths)
    distributed  gddm_kernels.app.distributed   ranks, the process group, per-rank generators
    checkpoints  gddm_kernels.app.checkpoints   save, load, exact resume

One step: a batch of images from the rank's data stream, the objective's loss, backward
(DDP averages the gradients across ranks), gradient-norm clipping, an AdamW step, and the EMA
update ema <- d ema + (1 - d) nets with d = min(ema_decay, (1 + n) / (EMA_WARMUP + n)) after
optimiser step n (0-based).
"""

import copy
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..dispatch import use_backend
from . import data as datasets
from .checkpoints import CHECKPOINT_NAME, restore, rng_state, save_checkpoint
from .config import TrainConfig, make_schedule
from .distributed import Ranks, rank_generators, rank_seed
from .objective import DiffusionNets, Objective

EMA_WARMUP = 10  # EMA decay at optimiser step n is min(decay, (1 + n) / (EMA_WARMUP + n))


@torch.no_grad()
def ema_update(ema: nn.Module, nets: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * nets, parameters and floating buffers."""
    targets = [*ema.parameters(), *(b for b in ema.buffers() if b.is_floating_point())]
    sources = [*nets.parameters(), *(b for b in nets.buffers() if b.is_floating_point())]
    torch._foreach_lerp_(targets, sources, 1.0 - decay)


def ema_decay_at(step: int, decay: float) -> float:
    """The EMA decay used after optimiser step `step` (0-based): min(decay, (1+n)/(EMA_WARMUP+n))."""
    return min(decay, (1 + step) / (EMA_WARMUP + step))


def train(config: TrainConfig) -> dict:
    """Trains as configured (module notes; the loss: gddm_kernels.app.objective) and returns
        losses: this rank's total loss per step run by this call (floats),
        loss_parts: the same per term ("eps", "attenuation" for that process, and "sparsity",
            "poisson" when active),
        start_step, step: the first and last step + 1 of this call,
        checkpoint: the checkpoint path (None without config.out),
        nets, ema: the trained DiffusionNets and their EMA copy,
        rank, world_size, seconds (wall time of the loop).
    Under torchrun (WORLD_SIZE > 1) every rank calls it; DDP averages the gradients."""
    with use_backend(config.backend) if config.backend else nullcontext():
        ranks = Ranks(config.device)
        try:
            return _train(config, ranks)
        finally:
            ranks.close()


def _train(config: TrainConfig, ranks: Ranks) -> dict:
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
    start = restore(config, ranks, nets, ema, optimizer, stream, data_gen, noise_gen) if config.resume else 0
    runner = objective
    if ranks.distributed:
        runner = DistributedDataParallel(objective, device_ids=[device] if device.type == "cuda" else None)
    path = Path(config.out) / CHECKPOINT_NAME if config.out is not None else None

    def save(step: int) -> None:
        rng = ranks.gather(rng_state(data_gen, noise_gen, device))
        if ranks.rank == 0:
            save_checkpoint(path, config, step, nets, ema, optimizer, image_mean, rng)
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
