"""Sampler-loop overhead: everything `gddm_kernels.sample` does but the network, with the fused
ops against the same loop on the pure-PyTorch reference ops (the drop-in switch).

One case is a whole reverse process of STEPS steps (gddm_kernels.sample.reverse_process) and
the reconstruction of the images by the DCT solve (to_images), for each mode (image, gradient,
laplacian) and sampler (ddpm, ddim, dpm = DPM-Solver++(2M), attenuation). The network is a
stand-in whose prediction is a precomputed tensor (zero cost), so the time is the loop's own:
the fused step kernels with their in-kernel noise, the timestep tables, the reconstruction.
Two baselines run the same loop:
  "reference (eager)"   the steps swapped for the reference maths (reference/diffusion.py:
                        separate PyTorch ops, noise from torch.randn) and the reconstruction on
                        the reference backend: the loop a user would write in plain PyTorch;
  "reference backend"   the drop-in switch of train/sample (use_backend("reference")): the
                        reference implementations of the fused kernels, whose in-kernel noise
                        is the Philox specification run in PyTorch (bit-exact, slower than
                        torch.randn).
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from unittest import mock

import torch
from torch import Tensor
from tqdm import tqdm

from gddm_kernels import sample as sampling
from gddm_kernels.dispatch import AUTO, use_backend
from gddm_kernels.reference import diffusion as spec
from gddm_kernels.sample import SAMPLER_PROCESSES, reverse_process, to_images
from gddm_kernels.train import MODES, TrainConfig, make_schedule

from .harness import Record, time_ms

SUITE = "sampler"
STEPS = 50
# (samples, channels, size): the digit demo's batch and a batch of small RGB images.
SHAPES = {"cpu": [(64, 1, 16), (16, 3, 64)], "cuda": [(64, 1, 16), (64, 3, 128)]}
FUSED, EAGER, REFERENCE_BACKEND = "gddm (fused ops)", "reference (eager)", "reference backend"
STEP_FUNCTIONS = ("ddpm_step", "ddim_step", "dpm_solver_2m_step", "attenuation_step")


class StandInNets:
    """`DiffusionNets.predict` without the network: fixed outputs of the field's shape, eps ~ N(0, 1)
    (and the attenuation c = -F0 ~ N(0, 1) for the attenuation process)."""

    def __init__(self, outputs: tuple[Tensor, ...]) -> None:
        self.outputs = outputs

    def predict(self, x: Tensor, t: Tensor, precision: str) -> tuple[Tensor, ...]:
        return self.outputs


def loop(config: TrainConfig, sampler: str, samples: int, device: str) -> Callable[[], Tensor]:
    """The timed workload: reverse process + reconstruction of `samples` images."""
    schedule = make_schedule(config).to(device)
    generator = torch.Generator(device).manual_seed(0)
    field_shape = (samples, config.channels, *(2,) * (config.mode == "gradient"), config.size, config.size)
    heads = 2 if config.process == "attenuation" else 1
    nets = StandInNets(tuple(torch.randn(field_shape, device=device) for _ in range(heads)))

    def run() -> Tensor:
        field = reverse_process(nets, config, schedule, samples, STEPS, sampler, generator)
        return to_images(field, config, "dct", 0.0)

    return run


@contextmanager
def implementation(impl: str) -> Iterator[None]:
    """Runs the block on the ops of `impl` (module notes)."""
    with use_backend(AUTO if impl == FUSED else "reference"), ExitStack() as stack:
        if impl == EAGER:
            stack.enter_context(mock.patch.multiple(sampling, **{name: getattr(spec, name) for name in STEP_FUNCTIONS}))
        yield


def run(device: str, copy_gbps: float) -> list[Record]:
    records = []
    cases = [(mode, sampler, shape) for shape in SHAPES[device] for mode in MODES for sampler in SAMPLER_PROCESSES]
    for mode, sampler, (samples, channels, size) in tqdm(cases, desc=SUITE, unit="case"):
        config = TrainConfig(mode=mode, process=SAMPLER_PROCESSES[sampler], size=size, channels=channels,
                             device=device)
        workload = loop(config, sampler, samples, device)
        shape = f"{samples}x{channels}x{size}x{size}"
        for impl in (FUSED, EAGER, REFERENCE_BACKEND):
            with implementation(impl):
                ms = time_ms(workload, device)
            records.append(Record(SUITE, f"{mode} {sampler}", f"{STEPS} steps + DCT reconstruction", shape,
                                  "float32", impl, ms, None, None))
    return records
