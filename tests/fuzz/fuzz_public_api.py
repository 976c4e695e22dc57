"""A seeded random campaign over the public ops and every backend usable on CPU tensors: each
case either raises a clear error (a ValueError or TypeError whose message starts with
`gddm.<op>:` and names an argument in backticks; or the RuntimeError of a backend asked by
name for an input it cannot run, e.g. Triton for float64) or returns what the reference
returns. Any
other outcome (a crash, another exception, an unclear message, a silent difference) is
printed and counted. Run as a script (tests/test_fuzz.py runs it in a subprocess, so that a
crash fails the test instead of killing the test session).

    python tests/fuzz/fuzz_public_api.py CASES SEED
"""

import random
import re
import sys
import traceback

import torch

import gddm_kernels as gk
from gddm_kernels import diffusion
from gddm_kernels.schedules import linear_schedule

BACKENDS = ("cpu", "triton")
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool)
CLEAR = re.compile(r"gddm\.[a-z_0-9]+.*: .*`[a-z_0-9\[\]]+`|gddm\.[a-z_0-9]+: (images|exactly|at most|the |arguments)")
REFUSED = re.compile(r"gddm\.[a-z_0-9]+: backend '(cpu|triton)' cannot run on this input")
SCHEDULE = linear_schedule(50)
TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-4, torch.float16: 2e-2, torch.bfloat16: 8e-2}
# Generated noise is float32 normals (reference/random.py) from log, cos and sin, which torch
# and the C++ kernels round within an ulp of their own: float64 results agree to that.
GENERATED_NOISE_TOLERANCE = 1e-6


def random_tensor(rng: random.Random) -> torch.Tensor:
    rank = rng.choice([0, 1, 2, 3, 4, 5])
    shape = [rng.choice([0, 1, 2, 3, 5, 8]) for _ in range(rank)]
    dtype = rng.choice(DTYPES)
    x = (torch.randn(shape) * rng.choice([1.0, 1e3])).to(dtype) if dtype != torch.bool else torch.ones(shape, dtype=dtype)
    if x.dim() >= 1 and x.dtype.is_floating_point and x.numel() and rng.random() < 0.15:
        x.view(-1)[0] = rng.choice([float("nan"), float("inf")])
    if x.dim() >= 2 and rng.random() < 0.3:
        x = x.transpose(-1, -2)
    return x


def make_case(rng: random.Random):
    op = rng.choice(["gradient", "divergence", "laplacian", "poisson_solve", "reconstruct", "multigrid",
                     "add_noise", "ddim_step", "ddpm_step"])
    x = random_tensor(rng)
    if op in ("divergence", "reconstruct") and x.dim() >= 3 and rng.random() < 0.7:
        x = torch.randn(*x.shape[:-3], 2, *x.shape[-2:]).to(x.dtype if x.dtype.is_floating_point else torch.float32)
    scale = rng.choice([1.0, -2.5, 0.0])
    if op in ("gradient", "divergence", "laplacian"):
        return op, lambda backend: getattr(gk, op)(x, scale=scale, backend=backend)
    if op in ("poisson_solve", "reconstruct"):
        return op, lambda backend: getattr(gk, op)(x, mean=scale, backend=backend)
    if op == "multigrid":
        cycles = rng.choice([1, 3, 0, 10**9])
        return "poisson_solve", lambda backend: gk.poisson_solve(x, method="multigrid", max_cycles=cycles,
                                                                 backend=backend)
    batch = x.shape[0] if x.dim() else 1
    t = torch.tensor([rng.choice([0, 1, 25, 49, 50, -1]) for _ in range(max(batch, 1))][:batch],
                     dtype=rng.choice([torch.int64, torch.int32, torch.uint8, torch.float32]))
    noise = torch.randn(x.shape) if x.dtype.is_floating_point else None
    if op == "add_noise":
        domain = rng.choice(["image", "gradient", "laplacian", "spectral"])
        return op, lambda backend: diffusion.add_noise(x, t, SCHEDULE, domain, noise=noise if domain == "image" else None,
                                                       generator=torch.Generator().manual_seed(1),
                                                       backend=backend)[0]
    t_prev = t.long() - rng.choice([1, 5, 0])
    step = getattr(diffusion, op)
    kwargs = {"eta": rng.choice([0.0, 1.0, 2.0])} if op == "ddim_step" else {}
    return op, lambda backend: step(x, x, t, t_prev, SCHEDULE, noise=noise if op == "ddpm_step" or kwargs["eta"] else None,
                                    backend=backend, **kwargs)


def outcome(fn, backend: str):
    try:
        return "ok", fn(backend)
    except (ValueError, TypeError) as error:
        return "error", error
    except RuntimeError as error:
        return ("refused" if REFUSED.match(str(error)) else "other"), error
    except Exception as error:  # noqa: BLE001 (classified below as a defect)
        return "other", error


def main(cases: int, seed: int) -> int:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    defects = 0
    for case in range(cases):
        op, fn = make_case(rng)
        ref_kind, ref = outcome(fn, "reference")
        for backend in BACKENDS:
            kind, value = outcome(fn, backend)
            problem = None
            if kind == "refused":
                if ref_kind != "ok":
                    problem = f"{backend} refused ({value}) where the reference raises {ref}"
            elif kind == "other" or ref_kind == "other":
                bad = value if kind == "other" else ref
                problem = f"unexpected {type(bad).__name__}: {bad}"
            elif kind == "error" and not CLEAR.search(str(value)):
                problem = f"unclear error: {value}"
            elif kind == "error" and ref_kind == "ok":
                problem = f"{backend} refused what the reference accepts: {value}"
            elif kind == "ok" and ref_kind == "error":
                problem = f"{backend} accepted what the reference refuses ({ref})"
            elif kind == "ok":
                if value.shape != ref.shape or value.dtype != ref.dtype:
                    problem = f"shape/dtype {tuple(value.shape)} {value.dtype} vs {tuple(ref.shape)} {ref.dtype}"
                else:
                    a, b = value.double(), ref.double()
                    same_nan = torch.equal(a.isnan(), b.isnan())
                    finite = a.isfinite() & b.isfinite()
                    scale = float(b[finite].abs().max()) if finite.any() else 1.0
                    tol = max(TOLERANCE[value.dtype], GENERATED_NOISE_TOLERANCE if op == "add_noise" else 0.0)
                    close = torch.allclose(a[finite], b[finite], atol=tol * max(scale, 1.0), rtol=tol)
                    if op == "poisson_solve" and not same_nan:
                        problem = "NaN pattern differs from the reference"
                    elif not close:
                        problem = f"differs from the reference by {float((a - b)[finite].abs().max())}"
            if problem:
                defects += 1
                print(f"case {case} {op} on {backend}: {problem}")
    print(f"{cases} cases, {defects} defects")
    return 1 if defects else 0


if __name__ == "__main__":
    try:
        sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(2)
