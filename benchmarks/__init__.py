"""The gddm_kernels benchmark suite: `python -m benchmarks.run` (see benchmarks/run.py)."""
