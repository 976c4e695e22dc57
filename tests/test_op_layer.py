"""The op layer: torch.library.opcheck, torch.compile without graph breaks, input errors,
backend choice (argument > use_backend > GDDM_BACKEND > automatic) and the layout folding."""

import subprocess
import sys
import warnings

import pytest
import torch

import gddm_kernels as gk
from gddm_kernels import dispatch, reference
from gddm_kernels._layout import fold_batch

from conftest import FAST_CASES

OPS = ["gradient", "divergence", "laplacian"]


def sample(op: str, *lead: int, device: str = "cpu", dtype=torch.float32) -> torch.Tensor:
    inner = (2, 6, 7) if op == "divergence" else (6, 7)
    return torch.randn(*lead, *inner, device=device, dtype=dtype)


@pytest.mark.parametrize("backend,device", [pytest.param("reference", "cpu", id="reference"), *FAST_CASES])
@pytest.mark.parametrize("op", OPS)
def test_opcheck(op, backend, device):
    x = sample(op, 2, 3, device=device).requires_grad_()
    torch.library.opcheck(getattr(torch.ops.gddm, op).default, (x, 0.5, backend))


def test_compile_fullgraph_forward_and_backward():
    def pipeline(x):
        g = gk.gradient(x, scale=2.0)
        return gk.divergence(g) + gk.laplacian(x)

    x = torch.randn(2, 3, 16, 20, requires_grad=True)
    compiled = torch.compile(pipeline, fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, pipeline(x))
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    (grad_eager,) = torch.autograd.grad(pipeline(x).square().sum(), x)
    torch.testing.assert_close(grad, grad_eager)


def test_compile_dynamic_shapes():
    compiled = torch.compile(gk.laplacian, fullgraph=True, dynamic=True)
    for shape in [(3, 8, 9), (5, 11, 4)]:
        x = torch.randn(*shape)
        torch.testing.assert_close(compiled(x), reference.laplacian(x))


# ---- bad input: clear errors from the op layer, naming the argument -------------------------

@pytest.mark.parametrize("op", OPS)
def test_rank_too_small(op):
    with pytest.raises(ValueError, match=rf"gddm\.{op}: argument `[xg]` must"):
        getattr(gk, op)(torch.randn(5))


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool, torch.complex64], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_non_floating_dtype(op, dtype):
    x = torch.zeros(2, 2, 4, 4).to(dtype)
    with pytest.raises(TypeError, match=r"must have a floating dtype.*got torch\."):
        getattr(gk, op)(x)


@pytest.mark.parametrize("op", OPS)
def test_not_a_tensor(op):
    with pytest.raises(TypeError, match="must be a torch.Tensor, got list"):
        getattr(gk, op)([[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("shape", [(3, 4, 4), (1, 4, 4), (4, 4)], ids=str)
def test_divergence_needs_two_components(shape):
    with pytest.raises(ValueError, match=r"gradient field of shape \(\.\.\., 2, H, W\)"):
        gk.divergence(torch.randn(*shape))


def test_errors_also_under_compile():
    with pytest.raises(Exception, match="component dim -3 of size 2"):
        torch.compile(gk.divergence, fullgraph=True)(torch.randn(3, 4, 4))


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'fastest'"):
        gk.gradient(torch.randn(4, 4), backend="fastest")
    with pytest.raises(ValueError, match="unknown backend"):
        with gk.use_backend("gpu"):
            pass


def test_explicit_backend_that_cannot_run_raises_with_reasons():
    with pytest.raises(RuntimeError, match="backend 'cuda' cannot run on this input.*cpu tensors"):
        gk.laplacian(torch.randn(4, 4), backend="cuda")
    with pytest.raises(RuntimeError, match="does not support torch.float64"):
        gk.laplacian(torch.randn(4, 4, dtype=torch.float64), backend="triton")


def test_nan_propagates():
    x = torch.randn(5, 5)
    x[2, 2] = float("nan")
    for op in OPS[::2]:
        out = getattr(gk, op)(x)
        assert out.isnan().any() and not out.isnan().all()


# ---- backend choice --------------------------------------------------------------------------

def test_backends_lists_what_is_built():
    names = gk.backends()
    assert names[0] == "reference"
    assert "cpu" in names and "triton" in names
    if torch.version.cuda is not None:  # the package is built with CUDA wherever torch has it
        assert "cuda" in names
    assert set(gk.backends("cpu")) <= set(names) and "cuda" not in gk.backends("cpu")


def test_backend_precedence(monkeypatch):
    x = torch.randn(4, 4)
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    implementation = {name: backend.implementation for name, backend in dispatch.BACKENDS.items()}
    assert dispatch.select("gradient", "auto", x) is implementation["cpu"]
    monkeypatch.setenv(dispatch.ENV_VAR, "reference")
    assert dispatch.select("gradient", "auto", x) is implementation["reference"]
    with gk.use_backend("triton"):
        assert dispatch.select("gradient", "auto", x) is implementation["triton"]
        assert dispatch.select("gradient", "cpu", x) is implementation["cpu"]
    monkeypatch.setenv(dispatch.ENV_VAR, "nonsense")
    with pytest.raises(ValueError, match="GDDM_BACKEND='nonsense'"):
        gk.gradient(x)


def test_context_manager_reaches_backward():
    x = torch.randn(4, 4, requires_grad=True)
    with gk.use_backend("triton"):
        gk.laplacian(x).sum().backward()
    torch.testing.assert_close(x.grad, reference.laplacian(torch.ones(4, 4)))


def test_auto_falls_back_to_reference_with_one_warning(monkeypatch):
    monkeypatch.setattr(dispatch._extension, "LOAD_ERROR", "simulated missing build")
    monkeypatch.setattr(dispatch, "_warned_fallback", False)
    dispatch.Backend.unavailable_reason.cache_clear()
    try:
        x = torch.randn(3, 5, 5)
        with pytest.warns(RuntimeWarning, match="using the reference.*simulated missing build"):
            out = gk.laplacian(x)
        torch.testing.assert_close(out, reference.laplacian(x))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gk.laplacian(x)  # the second call is silent
        with pytest.raises(RuntimeError, match="backend 'cpu' cannot run"):
            gk.laplacian(x, backend="cpu")
    finally:
        dispatch.Backend.unavailable_reason.cache_clear()


def test_package_imports_without_compiled_library():
    code = (
        "import sys, warnings; sys.modules['gddm_kernels._C'] = None\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always'); import gddm_kernels as gk\n"
        "print(len(w), gk.backends())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split(None, 1) == ["1", "['reference', 'triton']\n"]


# ---- layout folding --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.randn(4, 3, 8, 9),
        lambda: torch.randn(4, 3, 8, 9).to(memory_format=torch.channels_last),
        lambda: torch.randn(4, 3, 8, 18)[..., ::2],
        lambda: torch.randn(1, 8, 9).expand(5, 8, 9),
        lambda: torch.randn(3, 4, 5, 8, 9).permute(2, 0, 1, 3, 4),
        lambda: torch.randn(8, 9),
    ],
    ids=["contiguous", "channels-last", "strided", "expanded", "permuted-3-lead", "no-lead"],
)
def test_fold_batch_is_a_view_of_two_batch_dims(make):
    x = make()
    folded = fold_batch(x, 2)
    assert folded.dim() == 4
    assert folded.data_ptr() == x.data_ptr()  # no copy
    torch.testing.assert_close(folded.reshape(x.shape), x)


def test_fold_batch_copies_only_three_unmergeable_dims():
    x = torch.randn(2, 3, 4, 5, 6).permute(2, 0, 1, 3, 4)[:, :, 1:]  # 3 leading dims, no merge
    folded = fold_batch(x, 2)
    assert folded.shape == (1, 4 * 2 * 2, 5, 6)
    torch.testing.assert_close(folded.reshape(x.shape), x)
    torch.testing.assert_close(gk.gradient(x), reference.gradient(x))
