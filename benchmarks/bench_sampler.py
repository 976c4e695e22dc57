"""Sampler-loop overhead: everything `gddm_kernels.app.sample` does but the network, with the fused
ops against the same loop in plain PyTorch and on the reference backend.

One case is a whole reverse process of STEPS steps and the reconstruction of the images by the
DCT solve (to_images), for each mode (image, gradient, laplacian) and sampler (ddpm, ddim,
dpm = DPM-Solver++(2M), attenuation; eta = 0). The network is a stand-in whose prediction is a
precomputed tensor (zero cost), so the time is the loop's own.

  "gddm (fused ops)"    gddm_kernels.app.sample.reverse_process: the coefficients of every step
                        computed once (ReverseTrajectory), one fused kernel per step with its
                        noise drawn inside, the fused DCT solve;
  "reference (eager)"   the loop a user would write in plain PyTorch: the same walk over the
                        same times with the reference maths per step (reference/diffusion.py:
                        the coefficients from the schedule on every call, separate PyTorch
                        ops, noise from torch.randn) and the reconstruction on the reference
                        backend;
  "reference backend"   the drop-in switch of train/sample (use_backend("reference")) on
                        reverse_process itself: the reference implementations of the fused
                        kernels, whose in-kernel noise is the Philox specification run in
                        PyTorch (bit-exact, slower than torch.randn);
  "gddm (fused ops, CUDA graph)"   (CUDA only) the fused steps and the reconstruction
                        captured once in a CUDA graph (the trajectory made beforehand), its
                        replay timed: the capture fails if any step syncs with the host. A
                        failed capture is listed in NOTES instead of a row.
"""

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm import tqdm

from gddm_kernels.app.config import MODES, TrainConfig, make_schedule
from gddm_kernels.app.sample import SAMPLER_PROCESSES, reverse_process, sampler_times, to_images
from gddm_kernels.diffusion import DOMAIN_SCALES, ReverseTrajectory
from gddm_kernels.dispatch import AUTO, use_backend
from gddm_kernels.reference import diffusion as spec
from gddm_kernels.schedules import Schedule

from .harness import Record, time_ms

SUITE = "sampler"
STEPS = 50
# (samples, channels, size): the digit demo's batch and a batch of small RGB images.
SHAPES = {"cpu": [(64, 1, 16), (16, 3, 64)], "cuda": [(64, 1, 16), (64, 3, 128)]}
FUSED, EAGER, REFERENCE_BACKEND = "gddm (fused ops)", "reference (eager)", "reference backend"
GRAPH = "gddm (fused ops, CUDA graph)"
NOTES: list[str] = []  # failed CUDA-graph captures, for the caller to report


class StandInNets:
    """`DiffusionNets.predict` without the network: fixed outputs of the field's shape, eps ~ N(0, 1)
    (and the attenuation c = -F0 ~ N(0, 1) for the attenuation process)."""

    def __init__(self, outputs: tuple[Tensor, ...]) -> None:
        self.outputs = outputs

    def predict(self, x: Tensor, t: Tensor, precision: str) -> tuple[Tensor, ...]:
        return self.outputs


def eager_reverse_process(nets: StandInNets, config: TrainConfig, schedule: Schedule, samples: int, sampler: str,
                          generator: torch.Generator) -> Tensor:
    """reverse_process's walk (same times, eta = 0, no clipping) with the reference steps."""
    k = DOMAIN_SCALES[config.mode]
    device = schedule.device
    times = sampler_times(sampler, schedule, STEPS, device)[:, None].expand(-1, samples).contiguous()
    x = k * torch.randn(config.field_shape(samples), generator=generator, device=device)
    prev_x0 = t_last = None
    for i in range(STEPS):
        t, t_prev = times[i], times[i + 1]
        outputs = nets.predict(x, t, config.precision)
        if sampler == "attenuation":
            x = spec.attenuation_step(x, outputs, t, t_prev, eta=0.0, generator=generator, domain_scale=k)
        elif sampler == "ddpm":
            x = spec.ddpm_step(x, outputs[0], t, t_prev, schedule, generator=generator, domain_scale=k)
        elif sampler == "ddim":
            x = spec.ddim_step(x, outputs[0], t, t_prev, schedule, generator=generator, domain_scale=k)
        else:
            x, prev_x0 = spec.dpm_solver_2m_step(x, outputs[0], t, t_prev, schedule, prev_x0=prev_x0, t_last=t_last,
                                                 domain_scale=k)
            t_last = t
    return x


def fused_reverse_process(nets: StandInNets, config: TrainConfig, schedule: Schedule, samples: int, sampler: str,
                          generator: torch.Generator) -> Tensor:
    return reverse_process(nets, config, schedule, samples, STEPS, sampler, generator)


def loop(impl: str, config: TrainConfig, sampler: str, samples: int, device: str) -> Callable[[], Tensor]:
    """The timed workload of `impl` (module notes): reverse process + reconstruction."""
    schedule = make_schedule(config).to(device)
    generator = torch.Generator(device).manual_seed(0)
    heads = 2 if config.process == "attenuation" else 1
    nets = StandInNets(tuple(torch.randn(config.field_shape(samples), device=device) for _ in range(heads)))
    process = eager_reverse_process if impl == EAGER else fused_reverse_process

    def run() -> Tensor:
        with use_backend(AUTO if impl == FUSED else "reference"):
            field = process(nets, config, schedule, samples, sampler, generator)
            return to_images(field, config, "dct", 0.0)

    return run


def prepared_steps(config: TrainConfig, sampler: str, samples: int, device: str,
                   generator: torch.Generator) -> Callable[[], Tensor]:
    """reverse_process's STEPS steps and the reconstruction, with the trajectory (whose
    construction checks the times on the host) and the start noise made beforehand, as a
    sampler serving many batches would."""
    schedule = make_schedule(config).to(device)
    attenuation = config.process == "attenuation"
    nets = StandInNets(tuple(torch.randn(config.field_shape(samples), device=device)
                             for _ in range(2 if attenuation else 1)))
    k = DOMAIN_SCALES[config.mode]
    times = sampler_times(sampler, schedule, STEPS, device)[:, None].expand(-1, samples).contiguous()
    trajectory = ReverseTrajectory(sampler, times, None if attenuation else schedule, domain_scale=k)
    start = k * torch.randn(config.field_shape(samples), generator=generator, device=device)

    def steps() -> Tensor:
        x, prev_x0 = start, None
        with use_backend(AUTO):
            for i in range(STEPS):
                outputs = nets.predict(x, times[i], config.precision)
                if sampler == "dpm":
                    x, prev_x0 = trajectory.step(i, x, outputs[0], prev_x0=prev_x0)
                else:
                    x = trajectory.step(i, x, outputs if attenuation else outputs[0], generator=generator)
            return to_images(x, config, "dct", 0.0)

    return steps


def graph_loop(config: TrainConfig, sampler: str, samples: int) -> Callable[[], None]:
    """prepared_steps captured in a CUDA graph, warmed up outside it (cuFFT plans, kernel
    loading, autotuning); returns the graph's replay."""
    generator = torch.Generator("cuda").manual_seed(0)
    steps = prepared_steps(config, sampler, samples, "cuda", generator)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        steps()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(generator)
    with torch.cuda.graph(graph):
        steps()
    return graph.replay


def run(device: str, copy_gbps: float) -> list[Record]:
    records = []
    cases = [(mode, sampler, shape) for shape in SHAPES[device] for mode in MODES for sampler in SAMPLER_PROCESSES]
    for mode, sampler, (samples, channels, size) in tqdm(cases, desc=SUITE, unit="case"):
        config = TrainConfig(mode=mode, process=SAMPLER_PROCESSES[sampler], size=size, channels=channels,
                             device=device)
        shape = f"{samples}x{channels}x{size}x{size}"
        for impl in (FUSED, EAGER, REFERENCE_BACKEND):
            ms = time_ms(loop(impl, config, sampler, samples, device), device)
            records.append(Record(SUITE, f"{mode} {sampler}", f"{STEPS} steps + DCT reconstruction", shape,
                                  "float32", impl, ms, None, None))
        if device == "cuda":
            try:
                replay = graph_loop(config, sampler, samples)
            except RuntimeError as exc:
                NOTES.append(f"sampler {mode} {sampler} {shape}: CUDA graph capture failed: {exc}".splitlines()[0])
                continue
            records.append(Record(SUITE, f"{mode} {sampler}", f"{STEPS} steps + DCT reconstruction", shape,
                                  "float32", GRAPH, time_ms(replay, device), None, None))
    return records
