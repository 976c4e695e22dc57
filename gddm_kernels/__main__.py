"""`python -m gddm_kernels train|sample|export`: the application's command line, gddm_kernels.app.cli
(imported only when run, so that importing the kernel library never loads the application)."""

import sys

if __name__ == "__main__":
    from .app.cli import main

    sys.exit(main())
