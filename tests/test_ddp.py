"""Multi-process training: 2 CPU processes with gloo (torch.multiprocessing.spawn), 3 steps.

Each rank draws its own batches and noise (different losses, different saved generator
states), DDP keeps the parameters identical across ranks, and a second run reproduces the
first exactly."""

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from gddm_kernels.app.checkpoints import load_checkpoint
from gddm_kernels.app.config import TrainConfig
from gddm_kernels.app.loop import train

WORLD_SIZE = 2
CONFIG = dict(mode="gradient", dataset="digits", size=8, steps=3, batch_size=4, base_channels=8,
              channel_mults=(1, 2), timesteps=50, poisson_net=True, sparsity_weight=0.1, device="cpu",
              progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE))
    torch.set_num_threads(1)
    result = train(TrainConfig(**CONFIG, out=folder))
    torch.save({"losses": result["losses"], "nets": result["nets"].state_dict(), "ema": result["ema"].state_dict(),
                "world_size": result["world_size"]}, Path(folder) / f"rank{rank}.pt")


def _run(folder: Path) -> list[dict]:
    mp.spawn(_worker, args=(_free_port(), str(folder)), nprocs=WORLD_SIZE, join=True)
    return [torch.load(folder / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_two_cpu_processes(tmp_path):
    first, second = _run(tmp_path / "first"), _run(tmp_path / "second")
    rank0, rank1 = first
    assert rank0["world_size"] == rank1["world_size"] == WORLD_SIZE
    # own batches and noise per rank: the same weights give different losses from the first step
    assert rank0["losses"][0] != rank1["losses"][0]
    rng = load_checkpoint(tmp_path / "first" / "checkpoint.pt")["rng"]
    assert len(rng) == WORLD_SIZE
    assert not torch.equal(rng[0]["noise"], rng[1]["noise"]) and not torch.equal(rng[0]["data"], rng[1]["data"])
    # gradients averaged: identical parameters (and EMA) on every rank
    assert _same(rank0["nets"], rank1["nets"]) and _same(rank0["ema"], rank1["ema"])
    # reproducible: the second run repeats the first
    for a, b in zip(first, second):
        assert a["losses"] == b["losses"] and _same(a["nets"], b["nets"])
