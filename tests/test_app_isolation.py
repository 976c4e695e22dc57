"""The kernel library does not depend on the application: `import gddm_kernels` (and running
an op) works without the `train` extra's packages and loads nothing of gddm_kernels.app."""

import json
import subprocess
import sys

APP_PACKAGES = ("tqdm", "PIL", "sklearn", "skimage")  # the `train` extra's import names

# Runs in a fresh interpreter: makes the application's packages unimportable (as if the
# `train` extra were not installed) and records every attempt to import them. torch is
# imported first (torch.hub tries tqdm itself, and falls back without it); the attempts after
# that are gddm_kernels' own.
PROBE = """
import importlib.abc, importlib.machinery, json, sys
BLOCKED = set(sys.argv[1].split(","))
attempts = []
class Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # Found (importlib.util.find_spec, as torch._dynamo uses it, still answers), but importing
    # fails as if the package were not installed, and is recorded.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, self)
        return None
    def create_module(self, spec):
        attempts.append(spec.name)
        raise ModuleNotFoundError(f"No module named {spec.name!r} (blocked by the test)", name=spec.name)
    def exec_module(self, module):
        raise AssertionError("unreachable")
for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
sys.meta_path.insert(0, Block())
import torch
attempts.clear()
import gddm_kernels as gk
from gddm_kernels import diffusion, schedules  # noqa: F401
x = torch.arange(12.0).view(3, 4)
assert torch.allclose(gk.divergence(gk.gradient(x)), 4 * gk.laplacian(x))
print(json.dumps({"attempts": attempts,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
                  "app": sorted(m for m in sys.modules if m.startswith("gddm_kernels.app"))}))
"""


def test_import_gddm_kernels_needs_nothing_of_the_application():
    result = subprocess.run([sys.executable, "-c", PROBE, ",".join(APP_PACKAGES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"attempts": [], "loaded": [], "app": []}


def test_the_probe_sees_an_application_import():
    """The probe itself can fail: importing the application is seen as blocked attempts."""
    probe = PROBE.replace("from gddm_kernels import diffusion", "import gddm_kernels.app.cli; from gddm_kernels import diffusion")
    result = subprocess.run([sys.executable, "-c", probe, ",".join(APP_PACKAGES)], capture_output=True, text=True)
    assert result.returncode != 0 and "blocked by the test" in result.stderr
