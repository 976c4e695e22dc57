"""Per-call overhead: what one call of every public op costs at the sizes people run (a tiny
image, one latent, a batch of latents), where the host's work before the kernel, not memory
traffic, is the cost.

Every public op is timed through each layer it goes through, with the same arguments:

  "public API"        the function users call (gddm_kernels.laplacian, diffusion.ddim_step, ...);
  "torch.ops.gddm"    the registered Python op the public function calls, replayed with the
                      exact arguments it received on one recorded call (recorded at the
                      dispatcher by a TorchDispatchMode, which sees only the outermost gddm op);
                      on the compiled fast path (CPU and CUDA tensors with the compiled backend
                      in force) the public function skips this layer and no row is written;
  "torch.ops.gddm_C"  the compiled kernel's op, replayed likewise with the arguments the layer
                      above handed it, where the whole op is one such call (on the fast path:
                      the C++ op the public function calls). Where the path runs
                      none (e.g. the small-image Poisson solve by matrix products) or several
                      (multigrid), no row is written and the run prints which ones it runs.

beside baselines on the same input: torch.add(x, x); F.conv2d(x, w, padding=1) with a
(C, C, 3, 3) weight (a network's plain 3x3 convolution: at 1x1x8x8 exactly the Laplacian's
work, at latent sizes C times it; on one thread of a 2-core CPU it still beat the per-channel
groups = C form there); diffusers' DDIMScheduler.step (eta 0) and DDPMScheduler.add_noise
(noise given), the peers of the reverse steps and of the noise-adds. Each row records its time
over F.conv2d's on the same input, and the steps and noise-adds also over the diffusers peer's
(`time_ratios`; 1.0 = as fast, < 1 = faster). The targets are at 1x1x8x8 (stencils and the
small Poisson solve within 2x F.conv2d, noise-adds and steps within 3x) and at 8x4x64x64 (steps
and noise-adds at most half the diffusers peer's time).

The row where a layer's one call exists but computes only part of the op (e.g. a divergence
before a solve) is left out the same way: the call must return the storage of the op's result.

Noise is given to every op that draws it (as diffusers takes it), so no row times a
generator. Timing: one thread (torch.set_num_threads(1) for the whole suite, restored
after), float32, torch.utils.benchmark.Timer.blocked_autorange: blocks of back-to-back calls,
the accelerator synchronised at the end of each block, median over blocks; each row is timed
in ROUNDS interleaved rounds and keeps its fastest (see ROUNDS). The per-call time
is therefore the throughput of a loop of calls: the host's cost where it dominates, the
kernel's where that does.
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torch.utils.benchmark as tbench
from torch.utils._python_dispatch import TorchDispatchMode
from tqdm import tqdm

import gddm_kernels as gk
import gddm_kernels.diffusion as diffusion
from gddm_kernels.schedules import linear_schedule

from .harness import Record, synchronize

SUITE = "overhead"
SHAPES = ((1, 1, 8, 8), (1, 4, 64, 64), (8, 4, 64, 64))  # tiny image, one latent, a batch of latents
TINY_ONLY = ("poisson_solve (multigrid)",)  # one cycle of multigrid is not a per-call op at latent size
DTYPE = torch.float32
MIN_RUN_TIME_S = 0.05  # per row and round: ~140 rows x ROUNDS stay under a minute or two on a 2-core CPU
# Every row of a shape is timed once per round, the rounds one after another, and keeps its
# fastest round: the machine's load drifts over seconds, and interleaving lets it hit the
# public calls and their baselines alike (their ratios are what the suite reports).
ROUNDS = 3
THREADS = 1
T, T_PREV, T_LAST = 500, 480, 520  # timesteps of the schedule's steps (a mid-trajectory step)
ATTENUATION_T, ATTENUATION_T_PREV = 0.5, 0.48
INFERENCE_STEPS = 50  # diffusers' DDIM: the step from its timesteps[1] of 50

PUBLIC, OP_LAYER, KERNEL = "public API", "torch.ops.gddm", "torch.ops.gddm_C"
LAYERS = (PUBLIC, OP_LAYER, KERNEL)
BASELINE, PEER = "baseline", "diffusers"
CONV2D, ADD = "F.conv2d", "torch.add"
DIFFUSERS_STEP, DIFFUSERS_ADD_NOISE = "DDIMScheduler.step", "DDPMScheduler.add_noise"
NOISE_ADDS = ("add_noise", "attenuation_add_noise")
STEPS = ("ddpm_step", "ddim_step", "dpm_solver_2m_step", "attenuation_step", "ReverseTrajectory.step")


def peer_of(op: str) -> str | None:
    """The diffusers call an op of ours is compared with (None: no peer)."""
    if op in NOISE_ADDS:
        return DIFFUSERS_ADD_NOISE
    if op in STEPS:
        return DIFFUSERS_STEP
    return None


@dataclass
class Inputs:
    """Everything the calls of one shape read, made once outside the timed region."""

    x: torch.Tensor  # (B, C, H, W): image, sample, right-hand side
    g: torch.Tensor  # (B, C, 2, H, W): gradient field
    m: torch.Tensor  # model output
    p: torch.Tensor  # previous x0 prediction / second model output
    z: torch.Tensor  # noise
    times: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def make(cls, shape: tuple[int, ...], device: str) -> "Inputs":
        def randn(*s: int) -> torch.Tensor:
            return torch.randn(*s, device=device, dtype=DTYPE)

        b, c, h, w = shape
        inputs = cls(randn(*shape), randn(b, c, 2, h, w), randn(*shape), randn(*shape), randn(*shape))
        for name, value in (("t", T), ("t_prev", T_PREV), ("t_last", T_LAST)):
            inputs.times[name] = torch.full((b,), value, device=device, dtype=torch.int64)
        for name, value in (("tc", ATTENUATION_T), ("tc_prev", ATTENUATION_T_PREV)):
            inputs.times[name] = torch.full((b,), value, device=device, dtype=DTYPE)
        return inputs


def public_calls(shape: tuple[int, ...], device: str) -> dict[str, Callable[[], object]]:
    """op name -> the public call of that op on inputs of `shape`."""
    i = Inputs.make(shape, device)
    x, g, m, p, z, ts = i.x, i.g, i.m, i.p, i.z, i.times
    t, t_prev, t_last, tc, tc_prev = ts["t"], ts["t_prev"], ts["t_last"], ts["tc"], ts["tc_prev"]
    schedule = linear_schedule().to(device)
    trajectory = diffusion.ReverseTrajectory("ddim", torch.stack([t, t_prev]), schedule)
    calls = {
        "gradient": lambda: gk.gradient(x),
        "divergence": lambda: gk.divergence(g),
        "laplacian": lambda: gk.laplacian(x),
        "poisson_solve": lambda: gk.poisson_solve(x),
        "reconstruct": lambda: gk.reconstruct(g),
        "poisson_solve (multigrid)": lambda: gk.poisson_solve(x, method="multigrid", max_cycles=1),
        "add_noise": lambda: diffusion.add_noise(x, t, schedule, noise=z),
        "attenuation_add_noise": lambda: diffusion.attenuation_add_noise(x, tc, noise=z),
        "ddpm_step": lambda: diffusion.ddpm_step(x, m, t, t_prev, schedule, noise=z),
        "ddim_step": lambda: diffusion.ddim_step(x, m, t, t_prev, schedule),
        "dpm_solver_2m_step": lambda: diffusion.dpm_solver_2m_step(x, m, t, t_prev, schedule, prev_x0=p,
                                                                   t_last=t_last),
        "attenuation_step": lambda: diffusion.attenuation_step(x, (m, p), tc, tc_prev, noise=z),
        "ReverseTrajectory.step": lambda: trajectory.step(0, x, m),
    }
    if tuple(shape) != SHAPES[0]:
        calls = {op: fn for op, fn in calls.items() if op not in TINY_ONLY}
    return calls


def baseline_calls(shape: tuple[int, ...], device: str) -> dict[tuple[str, str], Callable[[], object]]:
    """(op, impl) -> the baseline calls on inputs of `shape`; diffusers' only where it imports."""
    x = torch.randn(*shape, device=device, dtype=DTYPE)
    channels = shape[1]
    weight = torch.randn(channels, channels, 3, 3, device=device, dtype=DTYPE)
    calls: dict[tuple[str, str], Callable[[], object]] = {
        (CONV2D, BASELINE): lambda: F.conv2d(x, weight, padding=1),
        (ADD, BASELINE): lambda: torch.add(x, x),
    }
    try:
        import diffusers
    except ImportError:
        return calls
    m, z = torch.randn_like(x), torch.randn_like(x)
    ddim = diffusers.DDIMScheduler(num_train_timesteps=1000)
    ddim.set_timesteps(INFERENCE_STEPS)
    ddpm = diffusers.DDPMScheduler(num_train_timesteps=1000)
    t = torch.full((shape[0],), T, device=device)
    calls[(DIFFUSERS_STEP, PEER)] = lambda: ddim.step(m, ddim.timesteps[1], x, eta=0.0).prev_sample
    calls[(DIFFUSERS_ADD_NOISE, PEER)] = lambda: ddpm.add_noise(x, z, t)
    return calls


def _storage(output: object) -> int | None:
    """Where a call's (first) output tensor lives: tells the whole op's result from a part's."""
    out = output[0] if isinstance(output, (tuple, list)) else output
    return out.untyped_storage().data_ptr() if isinstance(out, torch.Tensor) else None


@dataclass
class Call:
    """One recorded op call: the op packet (torch.ops.<ns>.<name>) and its arguments."""

    op: object
    args: tuple
    kwargs: dict
    output: object = None

    @property
    def output_storage(self) -> int | None:
        return _storage(self.output)

    @property
    def name(self) -> str:
        return f"torch.ops.{self.op._qualified_op_name.replace('::', '.')}"

    def replay(self) -> object:
        return self.op(*self.args, **self.kwargs)


class _OuterGddmOps(TorchDispatchMode):
    """Records the outermost torch.ops.gddm.* calls (the mode is off inside each call)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.namespace == "gddm":
            self.calls.append(Call(func.overloadpacket, args, kwargs, out))
        return out


@contextmanager
def _recording_kernel_ops() -> Iterator[list[Call]]:
    """Records every torch.ops.gddm_C.* call looked up by attribute while active (the way the
    compiled backend calls its kernels)."""
    calls: list[Call] = []
    namespace = torch.ops.gddm_C
    names = [n.split("::", 1)[1] for n in torch._C._dispatch_get_all_op_names() if n.startswith("gddm_C::")]
    originals = {name: getattr(namespace, name) for name in names}

    class Recorder:
        """Records the calls of one op; every other attribute (its overloads, which the
        dispatcher looks up when C++ code calls the op under a Python mode) is the op's."""

        def __init__(self, op: object) -> None:
            self.op = op

        def __call__(self, *args, **kwargs):
            out = self.op(*args, **kwargs)
            calls.append(Call(self.op, args, kwargs, out))
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self.op, name)

    recorder = Recorder

    try:
        for name, op in originals.items():
            setattr(namespace, name, recorder(op))
        yield calls
    finally:
        for name, op in originals.items():
            setattr(namespace, name, op)


def layer_calls(fn: Callable[[], object]) -> tuple[dict[str, Call], list[str]]:
    """Runs fn once, recording the calls it makes: {layer: the call of that layer} for the
    torch.ops.gddm and torch.ops.gddm_C layers where fn's whole work is one call of the layer
    (exactly one call, whose output is the storage of fn's result), and a note for each layer
    where it is not."""
    outer = _OuterGddmOps()
    with ExitStack() as stack:
        kernels = stack.enter_context(_recording_kernel_ops())
        stack.enter_context(outer)
        result = _storage(fn())
    found, notes = {}, []
    for layer, calls in ((OP_LAYER, outer.calls), (KERNEL, kernels)):
        names = ", ".join(dict.fromkeys(c.name for c in calls)) or "none"
        if len(calls) != 1:
            notes.append(f"no {layer} row: the call runs {len(calls)} {layer} ops ({names})")
        elif calls[0].output_storage != result:
            notes.append(f"no {layer} row: its one op ({names}) computes only part of the result")
        else:
            found[layer] = calls[0]
    return found, notes


def per_call_ms(fn: Callable[[], object], device: str) -> float:
    """Median per-call wall time of back-to-back calls of fn, in milliseconds (module notes)."""
    fn()  # warm-up (caches, allocator)
    synchronize(device)
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=THREADS)
    return timer.blocked_autorange(min_run_time=MIN_RUN_TIME_S).median * 1e3


def _shape_name(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _peer_key(peer: str) -> str:
    """The key of a diffusers peer in `time_ratios`."""
    return f"{PEER} {peer}"


def _add_ratios(records: list[Record]) -> None:
    """time_ratios: time / F.conv2d's time on the same input, and / the diffusers peer's."""
    times = {(r.op, r.shape): r.time_ms for r in records if r.impl in (BASELINE, PEER)}
    for r in records:
        ratios = {}
        if (conv := times.get((CONV2D, r.shape))) and r.op != CONV2D:
            ratios[CONV2D] = r.time_ms / conv
        if (peer := peer_of(r.op)) and (peer_ms := times.get((peer, r.shape))):
            ratios[_peer_key(peer)] = r.time_ms / peer_ms
        r.time_ratios = ratios or None


def _record(op: str, mode: str, shape: tuple[int, ...], impl: str, ms: float) -> Record:
    return Record(SUITE, op, mode, _shape_name(shape), str(DTYPE).split(".")[-1], impl, ms, None, None)


def run(device: str, copy_gbps: float) -> list[Record]:
    records = []
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        for shape in tqdm(SHAPES, desc=SUITE, unit="shape"):
            baselines = baseline_calls(shape, device)
            if (DIFFUSERS_STEP, PEER) not in baselines:
                tqdm.write(f"{SUITE} {_shape_name(shape)}: peer missing: diffusers does not import, "
                           "no diffusers rows or ratios")
            timed = [(op, op, impl, fn) for (op, impl), fn in baselines.items()]
            for op, fn in public_calls(shape, device).items():
                timed.append((op, op, PUBLIC, fn))
                found, notes = layer_calls(fn)
                for note in notes:
                    tqdm.write(f"{SUITE} {op} {_shape_name(shape)}: {note}")
                timed += [(op, call.name, layer, call.replay) for layer, call in found.items()]
            best = [min(ms) for ms in zip(*([per_call_ms(fn, device) for *_, fn in timed] for _ in range(ROUNDS)))]
            records += [_record(op, mode, shape, impl, ms) for (op, mode, impl, _), ms in zip(timed, best)]
    finally:
        torch.set_num_threads(threads)
    _add_ratios(records)
    return records


def summary(records: list[Record]) -> str:
    """Markdown, one row per (op, shape): per-call microseconds through each layer, the
    baselines' on the same input, and the public call's time over F.conv2d's and over the
    diffusers peer's (1.00x = as fast, below 1 = faster)."""
    rows = [r for r in records if r.suite == SUITE]
    us = {(r.op, r.shape, r.impl): 1e3 * r.time_ms for r in rows}

    def cell(op: str | None, shape: str, impl: str) -> str:
        return f"{us[(op, shape, impl)]:.1f}" if (op, shape, impl) in us else "-"

    head = ("| op | shape | " + " | ".join(f"{layer} (us)" for layer in LAYERS)
            + f" | {CONV2D} (us) | {ADD} (us) | public / {CONV2D} | diffusers peer (us) | public / peer |")
    lines = [head, "|" + "---|" * (len(LAYERS) + 7)]
    for r in rows:
        if r.impl != PUBLIC:
            continue
        ratios, peer = r.time_ratios or {}, peer_of(r.op)
        to_conv = f"{ratios[CONV2D]:.2f}x" if CONV2D in ratios else "-"
        to_peer = f"{ratios[_peer_key(peer)]:.2f}x" if peer and _peer_key(peer) in ratios else "-"
        lines.append(f"| {r.op} | {r.shape} | " + " | ".join(cell(r.op, r.shape, layer) for layer in LAYERS)
                     + f" | {cell(CONV2D, r.shape, BASELINE)} | {cell(ADD, r.shape, BASELINE)} | {to_conv}"
                     + f" | {cell(peer, r.shape, PEER)} | {to_peer} |")
    return "\n".join(lines)
