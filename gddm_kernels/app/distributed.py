"""Where a training process stands in a torch.distributed job, and its generators.

Processes. Under torchrun (WORLD_SIZE > 1 in the environment) every rank trains on its own
batches and noise, and DistributedDataParallel averages the gradients; a single process is
the world of one. `Ranks` initialises the process group (nccl on CUDA, gloo on CPU).

Randomness. Per rank r, three generators are seeded from (seed, r, stream), so ranks draw
different but reproducible batches and noise: "data" (the CPU generator of
`gddm_kernels.app.data.batches`), "noise" (on the device: t, the seeds of the in-kernel noise,
the Poisson-net noise) and "torch" (the global generator: dropout). The networks are
initialised from `seed` alone, identically on every rank.
"""

import os

import numpy as np
import torch
import torch.distributed as dist

from .config import resolve_device

RNG_STREAMS = ("data", "noise", "torch")


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


class Ranks:
    """This process's place in a torch.distributed job (WORLD_SIZE > 1 in the environment,
    as torchrun sets it), or a single process. Initialises the process group (nccl on CUDA,
    gloo on CPU) unless the caller already did, and then also destroys it at `close`."""

    def __init__(self, device_request: str | None) -> None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = resolve_device(device_request, "train", local_rank)
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

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank (on every rank)."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()
