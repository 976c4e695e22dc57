"""Diffusion-op benchmarks: each fused noise-add and reverse step against diffusers (the
scheduler users run today: several kernels and Python per call), the package's eager
reference (reference/diffusion.py) and that reference under torch.compile.

Every implementation does the whole job of one call, noise included: ours draws it inside the
kernel, the others call torch.randn. diffusers' schedulers take one timestep for the whole
batch, so every case uses one timestep for all samples (ours would take per-sample ones at
the same cost). DPM-Solver++(2M) is timed on its second-order branch (diffusers: the
scheduler's step index is set before each call so it stays on the same step).

Bytes moved (the memory-bound floor): add_noise reads x0 and writes x_t and the noise (the
training target); DDPM and DDIM read x_t and the model output and write x_{t-1}; DPM-Solver++
also reads the previous x0 prediction and writes the new one; the attenuation step (Huang et
al. Alg. 2, eta = 1, noise included; diffusers has no such scheduler) reads x_t and both model
outputs (c, eps) and writes x_{t_prev}.
"""

from collections.abc import Callable

import torch
from tqdm import tqdm

import gddm_kernels as gk
import gddm_kernels.diffusion as fused
from gddm_kernels.reference import diffusion as spec
from gddm_kernels.schedules import linear_schedule

from .harness import Record, time_ms

SUITE = "diffusion"
SHAPES = {"cpu": [(8, 3, 256, 256), (16, 4, 128, 128)], "cuda": [(64, 3, 256, 256), (16, 4, 128, 128)]}
DTYPES = (torch.float32, torch.bfloat16)
T, T_PREV, T_LAST = 500, 480, 520
ATTENUATION_T, ATTENUATION_T_PREV = 0.5, 0.48  # continuous times of the attenuation step
INFERENCE_STEPS = 50
# Tensors of the sample's size each call must read + write.
TRAFFIC = {"add_noise": 3, "ddpm_step": 3, "ddim_step": 3, "dpm_solver_2m_step": 5, "attenuation_step": 4}


def _diffusers_workloads(op: str, x: torch.Tensor, m: torch.Tensor, prev: torch.Tensor) -> Callable | None:
    try:
        import diffusers
    except ImportError:
        return None
    t = torch.tensor(T)
    if op == "attenuation_step":
        return None
    if op == "add_noise":
        sched = diffusers.DDPMScheduler(num_train_timesteps=1000)
        ts = torch.full((x.shape[0],), T, device=x.device)
        return lambda: sched.add_noise(x, torch.randn_like(x), ts)
    if op == "ddpm_step":
        sched = diffusers.DDPMScheduler(num_train_timesteps=1000)
        return lambda: sched.step(m, t, x).prev_sample
    if op == "ddim_step":
        sched = diffusers.DDIMScheduler(num_train_timesteps=1000)
        sched.set_timesteps(INFERENCE_STEPS)
        return lambda: sched.step(m, sched.timesteps[1], x, eta=0.0).prev_sample
    sched = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000)
    sched.set_timesteps(INFERENCE_STEPS)
    sched.step(m, sched.timesteps[0], x)  # fills the model-output history: the next calls are 2M

    def dpm() -> torch.Tensor:
        sched._step_index = 1
        return sched.step(m, sched.timesteps[1], x).prev_sample

    return dpm


def implementations(op: str, x: torch.Tensor, m: torch.Tensor, prev: torch.Tensor) -> dict[str, Callable]:
    device = x.device
    schedule = linear_schedule().to(device)
    b = x.shape[0]
    t, t_prev, t_last = (torch.full((b,), v, device=device) for v in (T, T_PREV, T_LAST))
    tc, tc_prev = (torch.full((b,), v, device=device) for v in (ATTENUATION_T, ATTENUATION_T_PREV))
    fns: dict[str, Callable[..., torch.Tensor]] = {
        "add_noise": lambda impl, z, **kw: impl.add_noise(x, t, schedule, noise=z, **kw),
        "ddpm_step": lambda impl, z, **kw: impl.ddpm_step(x, m, t, t_prev, schedule, noise=z, **kw),
        "ddim_step": lambda impl, z, **kw: impl.ddim_step(x, m, t, t_prev, schedule, **kw),
        "dpm_solver_2m_step": lambda impl, z, **kw: impl.dpm_solver_2m_step(
            x, m, t, t_prev, schedule, prev_x0=prev, t_last=t_last, **kw),
        "attenuation_step": lambda impl, z, **kw: impl.attenuation_step(x, (m, prev), tc, tc_prev, noise=z, **kw),
    }
    fn = fns[op]
    impls = {f"gddm {name}": (lambda name=name: fn(fused, None, backend=name))
             for name in gk.backends(device) if name != "reference"}
    impls["reference (eager)"] = lambda: fn(spec, torch.randn_like(x))
    compiled = torch.compile(lambda z: fn(spec, z), dynamic=False)
    impls["reference (torch.compile)"] = lambda: compiled(torch.randn_like(x))
    peer = _diffusers_workloads(op, x, m, prev)
    if peer is not None:
        impls["diffusers"] = peer
    return impls


def run(device: str, copy_gbps: float) -> list[Record]:
    records = []
    cases = [(op, shape, dtype) for op in TRAFFIC for shape in SHAPES[device] for dtype in DTYPES]
    for op, shape, dtype in tqdm(cases, desc=SUITE, unit="case"):
        x, m, prev = (torch.randn(*shape, device=device, dtype=dtype) for _ in range(3))
        moved = TRAFFIC[op] * x.numel() * x.element_size()
        for impl, fn in implementations(op, x, m, prev).items():
            ms = time_ms(fn, device)
            gbps = moved / ms / 1e6
            records.append(Record(SUITE, op, "forward", "x".join(map(str, shape)), str(dtype).split(".")[-1], impl,
                                  ms, gbps, gbps / copy_gbps))
    return records
