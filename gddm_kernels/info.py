"""`python -m gddm_kernels.info`: what was built and which backends can run where."""

import torch

from . import __version__, _extension
from .dispatch import AUTO_PRIORITY, BACKENDS


def main() -> None:
    print(f"gddm_kernels {__version__}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"GPU: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    print(f"compiled library: {'loaded' if _extension.LOAD_ERROR is None else _extension.LOAD_ERROR}")
    for backend in BACKENDS.values():
        reason = backend.unavailable_reason()
        status = "available" if reason is None else f"unavailable: {reason}"
        print(f"  {backend.name:<10} {backend.description:<36} {status}")
    for device_type, order in AUTO_PRIORITY.items():
        print(f"automatic choice on {device_type}: {' > '.join(order)}")


if __name__ == "__main__":
    main()
