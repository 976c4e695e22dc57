"""Launches every CUDA kernel of gddm_kernels._C once, on small CUDA tensors: the driver that
compute-sanitizer (memcheck, racecheck, initcheck, synccheck) runs in scripts/gpu_check.sh.

The kernels are reached through the public API with backend=BACKEND (forward and backward of
the stencils, both DCT paths, multigrid, every diffusion op with given and in-kernel noise),
so the driver follows the ops' schemas as they change. The profiler (CPU events only: no
CUPTI under the sanitizer) records which torch.ops.gddm_C ops ran; the driver fails if an op
with a CUDA kernel was never launched.

    python scripts/gpu/launch_all_kernels.py          # launch everything (needs a GPU)
    python scripts/gpu/launch_all_kernels.py --list   # the ops with a CUDA kernel (no GPU needed)
"""

import argparse
import sys

from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's gddm_kernels

NAMESPACE = "gddm_C"
# Odd sizes, so partial tiles and the edges of every kernel are covered.
IMAGE = (2, 3, 17, 33)
DCT_IMAGE = (2, 1, 40, 52)
MULTIGRID_IMAGE = (1, 1, 37, 45)
BACKEND = "cuda"  # "cpu" with --device cpu: the same calls on the C++ kernels (a check without a GPU)


def kernel_ops(dispatch_key: str = "CUDA") -> list[str]:
    """Names of the gddm_C ops with a kernel for dispatch_key (no CUDA ones in a CPU-only build)."""
    names = [n for n in torch._C._dispatch_get_all_op_names() if n.startswith(f"{NAMESPACE}::")]
    return sorted(n.split("::", 1)[1] for n in names if torch._C._dispatch_has_kernel_for_dispatch_key(n, dispatch_key))


def _ops_seen(profile: torch.profiler.profile) -> set[str]:
    """The gddm_C ops the dispatcher ran while `profile` recorded (its events are named ns::op)."""
    prefix = f"{NAMESPACE}::"
    return {e.name[len(prefix):] for e in profile.events() if e.name.startswith(prefix)}


def _stencils(gk, device: torch.device) -> None:
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        x = torch.randn(IMAGE, device=device, dtype=dtype, requires_grad=True)
        g = gk.gradient(x, backend=BACKEND)
        lap = gk.laplacian(x, backend=BACKEND)
        div = gk.divergence(g, backend=BACKEND)
        torch.autograd.grad((g.square().sum() + lap.square().sum() + div.square().sum()), x)
        gk.gradient(x.detach().transpose(-1, -2), backend=BACKEND)  # strided input


def _poisson(gk, device: torch.device) -> None:
    f = torch.randn(DCT_IMAGE, device=device)
    gk.poisson_solve(f, backend=BACKEND)
    gk.reconstruct(torch.randn(*DCT_IMAGE[:-2], 2, *DCT_IMAGE[-2:], device=device), backend=BACKEND)
    gk.poisson_solve(f.double(), backend=BACKEND)
    m = torch.randn(MULTIGRID_IMAGE, device=device)
    gk.poisson_solve(m, method="multigrid", tol=1e-6, max_cycles=2, backend=BACKEND)
    gk.poisson_solve(m, method="multigrid", cycle="FMG", max_cycles=1, backend=BACKEND)


def _diffusion(device: torch.device) -> None:
    from gddm_kernels import diffusion
    from gddm_kernels.schedules import linear_schedule

    schedule = linear_schedule().to(device)
    generator = torch.Generator(device).manual_seed(0)
    b = IMAGE[0]
    t, t_prev, t_last = (torch.full((b,), v, device=device) for v in (500, 480, 520))
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(IMAGE, device=device, dtype=dtype)
        for domain in ("image", "gradient", "laplacian"):
            diffusion.add_noise(x, t, schedule, domain, generator=generator, backend=BACKEND)
            diffusion.add_noise(x, t, schedule, domain, noise_model="exact", generator=generator, backend=BACKEND)
        diffusion.add_noise(x, t, schedule, noise=torch.randn_like(x), backend=BACKEND)
        m, u = torch.randn_like(x), torch.randn_like(x)
        diffusion.ddpm_step(x, m, t, t_prev, schedule, generator=generator, backend=BACKEND)
        diffusion.ddpm_step(x, m, t, t_prev, schedule, noise=torch.randn_like(x), clip_x0=1.0, backend=BACKEND)
        diffusion.ddim_step(x, m, t, t_prev, schedule, eta=0.5, uncond_output=u, guidance_scale=3.0,
                            generator=generator, backend=BACKEND)
        x_prev, x0 = diffusion.dpm_solver_2m_step(x, m, t, t_prev, schedule, backend=BACKEND)
        diffusion.dpm_solver_2m_step(x_prev, m, t_prev, t_prev - 20, schedule, prev_x0=x0, t_last=t, backend=BACKEND)
        tc, tc_prev = torch.full((b,), 0.5, device=device), torch.full((b,), 0.48, device=device)
        diffusion.attenuation_step(x, (m, u), tc, tc_prev, eta=1.0, generator=generator, backend=BACKEND)
        diffusion.attenuation_add_noise(x, tc, "gradient", generator=generator, backend=BACKEND)


def launch_all(device: torch.device) -> set[str]:
    """Runs every case on `device`; returns the gddm_C ops that ran."""
    import gddm_kernels as gk

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        _stencils(gk, device)
        _poisson(gk, device)
        _diffusion(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return _ops_seen(profile)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print the ops with a CUDA kernel and exit")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: the same calls on the C++ kernels, to check the driver without a GPU")
    args = parser.parse_args()
    import gddm_kernels  # noqa: F401  (loads gddm_kernels._C, registering the ops)

    expected = kernel_ops("CUDA")
    if args.list:
        print("\n".join(expected) if expected else "(no gddm_C op has a CUDA kernel in this build)")
        return 0
    if args.device == "cpu":
        global BACKEND
        BACKEND = "cpu"
        seen = launch_all(torch.device("cpu"))
        cpu_ops = kernel_ops("CPU")
        print(f"launch_all_kernels (cpu): launched {len(seen & set(cpu_ops))}/{len(cpu_ops)} ops with a CPU kernel: "
              f"{', '.join(sorted(seen))}")
        return 0
    if not torch.cuda.is_available():
        print("launch_all_kernels: no CUDA GPU visible", file=sys.stderr)
        return 2
    if not expected:
        print("launch_all_kernels: this build has no CUDA kernels (built with GDDM_SKIP_CUDA=1 or without nvcc?)",
              file=sys.stderr)
        return 2
    seen = launch_all(torch.device("cuda"))
    missing = [op for op in expected if op not in seen]
    print(f"launch_all_kernels: launched {len(expected) - len(missing)}/{len(expected)} CUDA ops")
    if missing:
        print(f"launch_all_kernels: never launched: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
