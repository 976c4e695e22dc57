"""diffusers drop-in benchmarks: the stock diffusers schedulers against the fused subclasses of
gddm_kernels.diffusers, side by side in one process on the same inputs.

* `step` per call (DDPM, DDIM eta = 0, DPM-Solver++ second order) and `add_noise` per call,
  at a latent-sized batch (8x4x64x64) and a tiny one (1x4x16x16), where the per-call host
  overhead of the stock scheduler (a dozen small kernels, the timestep lookup) dominates.
  Both do the whole job of a call: the stock DDPM step draws its noise with torch.randn, the
  fused one inside the kernel (Philox). The schedulers are set to 50 inference steps and
  called at one of them, as a pipeline does; DPM-Solver's step index is reset before each
  call so it stays on the same second-order step.
* a whole 50-step DDPMPipeline (unconditional) with a small randomly initialised
  UNet2DModel with each stock scheduler and with its fused twin swapped in by `from_config`,
  the two runs interleaved PIPELINE_REPEATS times (medians): the end-to-end effect, where the
  U-Net dominates.

Bytes moved (the memory-bound floor of a step): DDPM and DDIM read x_t and the model output
and write x_{t-1} and the x_0 prediction (pred_original_sample); DPM-Solver++ also reads the
previous x_0; add_noise reads x_0 and the noise and writes x_t.

    python -m benchmarks.bench_diffusers [--device cpu|cuda] [--threads N]
"""

import argparse
import functools
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from tqdm import tqdm

from .harness import Record, copy_bandwidth_gbps, synchronize, table, time_ms

SUITE = "diffusers"
SHAPES = {"cpu": [(8, 4, 64, 64), (1, 4, 16, 16)], "cuda": [(8, 4, 64, 64), (1, 4, 16, 16)]}
DTYPES = (torch.float32, torch.bfloat16)
INFERENCE_STEPS = 50
STEP_INDEX = 1  # a step in the middle of nowhere special: the second of 50
# Tensors of the sample's size each call must read + write.
TRAFFIC = {"ddpm step": 4, "ddim step": 4, "dpm-solver++ step": 5, "add_noise": 3}
PIPELINE = {"batch": 2, "size": 32, "channels": 3, "block_out_channels": (16, 32), "groups": 8, "steps": 50}
PIPELINE_REPEATS = 5
STOCK, FUSED = "diffusers (stock)", "gddm_kernels.diffusers (fused)"


def _pairs():
    import diffusers

    from gddm_kernels.diffusers import FusedDDIMScheduler, FusedDDPMScheduler, FusedDPMSolverMultistepScheduler

    return {"ddpm": (diffusers.DDPMScheduler, FusedDDPMScheduler),
            "ddim": (diffusers.DDIMScheduler, FusedDDIMScheduler),
            "dpm-solver++": (diffusers.DPMSolverMultistepScheduler, FusedDPMSolverMultistepScheduler)}


def step_workload(scheduler, x: torch.Tensor, m: torch.Tensor) -> Callable[[], torch.Tensor]:
    """One step call at step STEP_INDEX of INFERENCE_STEPS, as a pipeline makes it."""
    scheduler.set_timesteps(INFERENCE_STEPS, device=x.device)
    t = scheduler.timesteps[STEP_INDEX]
    if hasattr(scheduler, "model_outputs"):  # DPM-Solver: fill the history, then stay on step 1
        scheduler.step(m, scheduler.timesteps[0], x)

        def dpm() -> torch.Tensor:
            scheduler._step_index = STEP_INDEX
            return scheduler.step(m, t, x).prev_sample

        return dpm
    return lambda: scheduler.step(m, t, x).prev_sample


def add_noise_workload(scheduler, x: torch.Tensor, noise: torch.Tensor) -> Callable[[], torch.Tensor]:
    timesteps = torch.randint(0, 1000, (x.shape[0],), generator=torch.Generator().manual_seed(0)).to(x.device)
    return lambda: scheduler.add_noise(x, noise, timesteps)


def per_call_records(device: str, copy_gbps: float) -> list[Record]:
    records = []
    pairs = _pairs()
    cases = [(op, shape, dtype) for op in TRAFFIC for shape in SHAPES[device] for dtype in DTYPES]
    for op, shape, dtype in tqdm(cases, desc=f"{SUITE} per call", unit="case"):
        x, m = (torch.randn(*shape, device=device, dtype=dtype) for _ in range(2))
        stock_cls, fused_cls = pairs["ddpm" if op == "add_noise" else op.split(" ")[0]]
        moved = TRAFFIC[op] * x.numel() * x.element_size()
        for impl, cls in ((STOCK, stock_cls), (FUSED, fused_cls)):
            scheduler = cls()
            fn = add_noise_workload(scheduler, x, m) if op == "add_noise" else step_workload(scheduler, x, m)
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)  # a fallback would time the stock code
                ms = time_ms(fn, device)
            gbps = moved / ms / 1e6
            records.append(Record(SUITE, op, "per call", "x".join(map(str, shape)), str(dtype).split(".")[-1], impl,
                                  ms, gbps, gbps / copy_gbps))
    return records


def pipeline_records(device: str) -> list[Record]:
    import diffusers

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=PIPELINE["size"], in_channels=PIPELINE["channels"],
                                 out_channels=PIPELINE["channels"], layers_per_block=1,
                                 block_out_channels=PIPELINE["block_out_channels"], norm_num_groups=PIPELINE["groups"],
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D")).to(device).eval()
    shape = f"{PIPELINE['batch']}x{PIPELINE['channels']}x{PIPELINE['size']}x{PIPELINE['size']}"
    records = []
    for name, (stock_cls, fused_cls) in tqdm(_pairs().items(), desc=f"{SUITE} pipeline", unit="scheduler"):
        runs = {}
        for impl, cls in ((STOCK, stock_cls), (FUSED, fused_cls)):
            pipe = diffusers.DDPMPipeline(unet=unet, scheduler=cls())
            pipe.set_progress_bar_config(disable=True)
            runs[impl] = functools.partial(pipe, batch_size=PIPELINE["batch"], num_inference_steps=PIPELINE["steps"],
                                           output_type="pt")
        for impl, ms in _interleaved_medians(runs, device).items():
            records.append(Record(SUITE, f"{name} {PIPELINE['steps']}-step pipeline", "end to end", shape, "float32",
                                  impl, ms, None, None))
    return records


def _interleaved_medians(runs: dict[str, Callable[[], object]], device: str) -> dict[str, float]:
    """Median wall time (ms) of each run over PIPELINE_REPEATS rounds that call every run once
    in turn: a whole pipeline takes long enough for the machine's load to drift between two
    back-to-back timings, and interleaving lets the drift hit every run alike."""
    times: dict[str, list[float]] = {impl: [] for impl in runs}
    for fn in runs.values():
        fn()  # warm-up
    for _ in range(PIPELINE_REPEATS):
        for impl, fn in runs.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[impl].append(1e3 * (time.perf_counter() - start))
    return {impl: statistics.median(t) for impl, t in times.items()}


def run(device: str, copy_gbps: float) -> list[Record]:
    return per_call_records(device, copy_gbps) + pipeline_records(device)


def ratios(records: list[Record]) -> str:
    """stock time / fused time per (op, shape, dtype): > 1 means the fused scheduler is faster."""
    stock = {(r.op, r.shape, r.dtype): r.time_ms for r in records if r.impl == STOCK}
    lines = ["| op | shape | dtype | stock (ms) | fused (ms) | stock / fused |", "|---|---|---|---|---|---|"]
    for r in records:
        if r.impl == FUSED and (r.op, r.shape, r.dtype) in stock:
            base = stock[(r.op, r.shape, r.dtype)]
            lines.append(f"| {r.op} | {r.shape} | {r.dtype} | {base:.3f} | {r.time_ms:.3f} | {base / r.time_ms:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU intra-op threads (default: torch's; 1 is steadier on a shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    records = run(args.device, copy_bandwidth_gbps(args.device))
    print(table(records))
    print()
    print(ratios(records))


if __name__ == "__main__":
    main()
