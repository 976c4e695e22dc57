"""Runs the benchmark suite on the best device here (a GPU if visible, else the CPU), prints
the tables and writes benchmarks/results/<device>-<date>.{json,md} and one figure per suite,
<device>-<date>-<suite>.png.

    python -m benchmarks.run [--device cpu|cuda] [--quick]
"""

import argparse

import torch

from . import (bench_diffusers, bench_diffusion, bench_multigrid, bench_overhead, bench_poisson, bench_sampler,
               bench_stencils)
from .plot import plot
from .harness import add_speedups, copy_bandwidth_gbps, environment, result_name, table, write_results


SUITES = {"stencils": bench_stencils, "poisson": bench_poisson, "multigrid": bench_multigrid,
          "diffusion": bench_diffusion, "sampler": bench_sampler, "overhead": bench_overhead,
          "diffusers": bench_diffusers}
SUMMARIES = {"poisson": bench_poisson, "overhead": bench_overhead}  # suites with a summary table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        default="cuda" if torch.cuda.is_available() else "cpu",
                        help="device to benchmark (default: cuda when a GPU is visible)")
    parser.add_argument("--quick", action="store_true",
                        help="only the smallest shape of each case (a smoke run)")
    parser.add_argument("--suites", nargs="+", choices=list(SUITES), default=list(SUITES),
                        help="suites to run (default: all)")
    args = parser.parse_args()
    if args.quick:
        bench_stencils.SHAPES[args.device] = bench_stencils.SHAPES[args.device][:1]
        bench_poisson.SQUARE_SIZES[args.device] = bench_poisson.SQUARE_SIZES[args.device][:1]
        bench_poisson.BATCHED_SHAPES[args.device] = []
        bench_multigrid.SIZES[args.device] = bench_multigrid.SIZES[args.device][:1]
        bench_multigrid.CROSSOVER_SIZES = bench_multigrid.CROSSOVER_SIZES[:2]
        bench_diffusion.SHAPES[args.device] = [(2, 3, 64, 64)]
        bench_sampler.SHAPES[args.device] = bench_sampler.SHAPES[args.device][:1]
        bench_overhead.SHAPES = bench_overhead.SHAPES[:1]
        bench_diffusers.SHAPES[args.device] = bench_diffusers.SHAPES[args.device][-1:]

    env = environment(args.device)
    copy_gbps = copy_bandwidth_gbps(args.device)
    print(f"device: {env.get('gpu', env['cpu'])}, measured copy bandwidth {copy_gbps:.1f} GB/s")
    records = [r for name in args.suites for r in SUITES[name].run(args.device, copy_gbps)]
    add_speedups(records)
    print(table(records))
    summaries = [module.summary(records) for name, module in SUMMARIES.items() if name in args.suites]
    print("\n\n".join(summaries))
    path = write_results(result_name(args.device), env, copy_gbps, records, summaries)
    figures = ", ".join(str(p) for p in plot(path))
    print(f"results written to {path}, {path.with_suffix('.md')} and {figures}")


if __name__ == "__main__":
    main()
