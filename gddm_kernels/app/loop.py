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

A run whose loss or weights become non-finite (NaN or Inf: a learning rate far too high, say)
stops with NonFiniteLossError. The losses are checked at every log interval and before every
checkpoint, the weights before every checkpoint, so a checkpoint never holds a diverged state:
the last good one stays on disk.
"""

import copy
import math
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


class NonFiniteLossError(RuntimeError):
    """Training produced a non-finite loss or non-finite weights; the run stopped without
    writing them to its checkpoint (module notes)."""


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

    saved: list[int] = []  # the steps this call checkpointed

    def save(step: int) -> None:
        if ranks.any(not _finite(nets, ema)):
            _stop(f"the weights became non-finite after step {step}", path, saved)
        rng = ranks.gather(rng_state(data_gen, noise_gen, device))
        if ranks.rank == 0:
            save_checkpoint(path, config, step, nets, ema, optimizer, image_mean, rng)
        ranks.barrier()
        saved.append(step)

    bar = tqdm(total=config.steps, initial=start, disable=not config.progress or ranks.rank != 0,
               desc=f"train {config.mode} {config.process}", dynamic_ncols=True)
    pending: list[dict[str, Tensor]] = []
    history: dict[str, list[float]] = {}
    began = time.perf_counter()
    try:
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
            saving = path is not None and (last or (config.save_every and (step + 1) % config.save_every == 0))
            if (step + 1) % config.log_every == 0 or last or saving:  # one host sync per log interval
                first = step + 1 - len(pending)
                flushed = _flush(pending)
                bad = next((i for i, value in enumerate(flushed["loss"]) if not math.isfinite(value)), None)
                if ranks.any(bad is not None):
                    where = f"at step {first + bad + 1}" if bad is not None else f"on another rank by step {step + 1}"
                    _stop(f"the loss became non-finite {where}", path, saved)
                for name, values in flushed.items():
                    history.setdefault(name, []).extend(values)
                bar.set_postfix(loss=f"{history['loss'][-1]:.4f}")
            bar.update(1)
            if saving:
                save(step + 1)
    finally:
        bar.close()
    seconds = time.perf_counter() - began
    losses = history.pop("loss", [])
    return {"losses": losses, "loss_parts": history, "start_step": start, "step": config.steps,
            "checkpoint": str(path) if path is not None else None, "nets": nets, "ema": ema,
            "rank": ranks.rank, "world_size": ranks.world_size, "seconds": seconds}


def _finite(*modules: nn.Module) -> bool:
    """Whether every parameter and floating buffer of `modules` is finite (one host sync)."""
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    return bool(torch.stack([t.isfinite().all() for t in tensors]).all())


def _stop(problem: str, path: Path | None, saved: list[int]) -> None:
    """Raises NonFiniteLossError for `problem`, saying which checkpoint is left."""
    if path is None:
        kept = "no checkpoint is written (no `out`)"
    elif saved:
        kept = f"the last good checkpoint, step {saved[-1]}, stays in {str(path)!r}"
    elif path.exists():
        kept = f"{str(path)!r} is left as it was"
    else:
        kept = "no checkpoint was written"
    raise NonFiniteLossError(f"gddm.train: {problem}; stopped ({kept}). A lower learning rate (`lr`) or "
                             "gradient clipping (`grad_clip`) may help")


def _flush(pending: list[dict[str, Tensor]]) -> dict[str, list[float]]:
    """Moves the recorded per-step loss tensors to the host (one sync) and empties `pending`."""
    names = pending[0].keys()
    values = {name: torch.stack([entry[name] for entry in pending]).tolist() for name in names}
    pending.clear()
    return values
