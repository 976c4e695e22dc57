"""The fused diffusers schedulers against the stock ones they subclass: whole sampling loops
over a grid of configurations (fp32 and bf16), generator reproducibility, per-sample
timesteps, add_noise, the fallback warning, save/load, the `domain` config, and the
ImportError without diffusers."""

import json
import re
import subprocess
import sys
import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

diffusers = pytest.importorskip("diffusers")

from gddm_kernels.diffusers import (FusedDDIMScheduler, FusedDDPMScheduler,  # noqa: E402
                                    FusedDPMSolverMultistepScheduler)
from gddm_kernels.reference import diffusion as reference  # noqa: E402
from gddm_kernels.reference.diffusion import DOMAIN_SCALES  # noqa: E402
from gddm_kernels.schedules import schedule_from_betas  # noqa: E402

STEPS = 12
SHAPE = (3, 2, 5, 7)  # odd sizes on purpose
PAIRS = {"ddpm": (diffusers.DDPMScheduler, FusedDDPMScheduler),
         "ddim": (diffusers.DDIMScheduler, FusedDDIMScheduler),
         "dpm": (diffusers.DPMSolverMultistepScheduler, FusedDPMSolverMultistepScheduler)}
TRAINED_BETAS = torch.linspace(2e-4, 0.03, 1000).tolist()

GRID = [
    ("ddpm", {}, {}),
    ("ddpm", {"prediction_type": "v_prediction", "beta_schedule": "scaled_linear"}, {}),
    ("ddpm", {"prediction_type": "sample", "beta_schedule": "squaredcos_cap_v2", "clip_sample_range": 0.5}, {}),
    ("ddpm", {"variance_type": "fixed_large", "clip_sample": False, "timestep_spacing": "trailing"}, {}),
    ("ddpm", {"variance_type": "fixed_small_log", "timestep_spacing": "linspace"}, {}),
    ("ddpm", {"trained_betas": TRAINED_BETAS, "steps_offset": 1}, {}),
    ("ddim", {}, {}),
    ("ddim", {"set_alpha_to_one": False, "steps_offset": 1, "clip_sample": False}, {"eta": 0.7}),
    ("ddim", {"prediction_type": "v_prediction", "timestep_spacing": "trailing"}, {"eta": 1.0}),
    ("ddim", {"prediction_type": "sample", "beta_schedule": "squaredcos_cap_v2"},
     {"eta": 0.3, "use_clipped_model_output": True}),
    ("ddim", {"clip_sample_range": 0.8, "timestep_spacing": "linspace"}, {"use_clipped_model_output": True}),
    ("ddim", {"trained_betas": TRAINED_BETAS, "rescale_betas_zero_snr": False}, {"eta": 0.5}),
    ("dpm", {}, {}),
    ("dpm", {"solver_order": 1}, {}),
    ("dpm", {"prediction_type": "v_prediction", "final_sigmas_type": "sigma_min"}, {}),
    ("dpm", {"prediction_type": "sample", "lower_order_final": False, "solver_type": "heun"}, {}),
    ("dpm", {"use_karras_sigmas": True, "timestep_spacing": "trailing"}, {}),
    ("dpm", {"beta_schedule": "scaled_linear", "timestep_spacing": "leading", "steps_offset": 1}, {}),
    ("dpm", {"trained_betas": TRAINED_BETAS, "euler_at_final": True, "final_sigmas_type": "sigma_min"}, {}),
]


def dummy_model(x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
    """A deterministic stand-in for a denoiser: a fixed function of the sample and t."""
    w = torch.as_tensor(t, dtype=torch.float32).reshape(-1, *[1] * (x.dim() - 1)) / 1000
    return (0.6 - 0.3 * w) * x + 0.1 * w - 0.05


def run_loop(scheduler, x: torch.Tensor, seed: int = 7, **step_args) -> tuple[torch.Tensor, list]:
    """A full sampling loop; returns the final sample and every step's outputs."""
    scheduler.set_timesteps(STEPS)
    generator = torch.Generator().manual_seed(seed)
    outputs = []
    for t in scheduler.timesteps:
        out = scheduler.step(dummy_model(x, t).to(x.dtype), t, x, generator=generator, **step_args)
        outputs.append(out)
        x = out.prev_sample
    return x, outputs


def start(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)).to(dtype)


def ids(case) -> str:
    kind, config, args = case
    return kind + "-" + "-".join(f"{k}={v}" for k, v in {**config, **args}.items() if k != "trained_betas") + (
        "-trained" if "trained_betas" in config else "")


@pytest.mark.parametrize("case", GRID, ids=[ids(c) for c in GRID])
def test_loop_matches_stock_fp32(case):
    kind, config, args = case
    stock_cls, fused_cls = PAIRS[kind]
    stock, fused = stock_cls(**config), fused_cls(**config)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no fallback anywhere in the grid
        x_fused, outs_fused = run_loop(fused, start(), **args)
    x_stock, outs_stock = run_loop(stock, start(), **args)
    scale = max(1.0, x_stock.abs().max().item())
    torch.testing.assert_close(x_fused, x_stock, atol=2e-5 * scale, rtol=1e-4)
    assert type(outs_fused[0]) is type(outs_stock[0])
    if kind != "dpm":
        for a, b in zip(outs_fused, outs_stock):
            torch.testing.assert_close(a.pred_original_sample, b.pred_original_sample, atol=2e-5 * scale, rtol=1e-4)
    else:  # the solver's state follows the parent's
        assert fused.step_index == stock.step_index and fused.lower_order_nums == stock.lower_order_nums
        for a, b in zip(fused.model_outputs, stock.model_outputs):
            torch.testing.assert_close(a, b, atol=2e-5 * scale, rtol=1e-4)


BF16_GRID = [c for c in GRID if c[0] != "ddpm" and c[2].get("eta", 0) == 0]


@pytest.mark.parametrize("case", BF16_GRID, ids=[ids(c) for c in BF16_GRID])
def test_loop_bf16_is_no_worse_than_stock_bf16(case):
    """bf16 loops against the fp32 loop: the fused kernel (float32 arithmetic, one rounding)
    is at most twice as far from it as diffusers' own bf16 arithmetic."""
    kind, config, args = case
    stock_cls, fused_cls = PAIRS[kind]
    truth, _ = run_loop(stock_cls(**config), start(), **args)
    stock16, _ = run_loop(stock_cls(**config), start(torch.bfloat16), **args)
    fused16, _ = run_loop(fused_cls(**config), start(torch.bfloat16), **args)
    assert fused16.dtype == torch.bfloat16
    stock_error = (stock16.float() - truth).abs().max().item()
    fused_error = (fused16.float() - truth).abs().max().item()
    assert fused_error <= 2 * stock_error + 1e-2 * max(1.0, truth.abs().max().item()), (fused_error, stock_error)


def test_ddpm_bf16_with_generator_matches_stock_bf16():
    stock16, _ = run_loop(diffusers.DDPMScheduler(), start(torch.bfloat16))
    fused16, _ = run_loop(FusedDDPMScheduler(), start(torch.bfloat16))
    torch.testing.assert_close(fused16.float(), stock16.float(), atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("kind", ["ddpm", "ddim"])
def test_same_seed_gives_diffusers_result_and_other_seeds_differ(kind):
    stock_cls, fused_cls = PAIRS[kind]
    args = {"eta": 1.0} if kind == "ddim" else {}
    x_stock, _ = run_loop(stock_cls(), start(), seed=3, **args)
    x_fused, _ = run_loop(fused_cls(), start(), seed=3, **args)
    x_other, _ = run_loop(fused_cls(), start(), seed=4, **args)
    torch.testing.assert_close(x_fused, x_stock, atol=1e-5, rtol=1e-5)
    assert (x_other - x_stock).abs().max() > 1e-2


def test_ddim_variance_noise_is_used():
    stock, fused = diffusers.DDIMScheduler(), FusedDDIMScheduler()
    for s in (stock, fused):
        s.set_timesteps(10)
    x, noise = start(), torch.randn(SHAPE)
    t = stock.timesteps[3]
    a = stock.step(dummy_model(x, t), t, x, eta=0.8, variance_noise=noise).prev_sample
    b = fused.step(dummy_model(x, t), t, x, eta=0.8, variance_noise=noise).prev_sample
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="Cannot pass both generator and variance_noise"):
        fused.step(dummy_model(x, t), t, x, eta=0.8, variance_noise=noise, generator=torch.Generator())


def test_without_generator_noise_is_in_kernel_and_seeded_by_torch():
    fused = FusedDDPMScheduler()
    fused.set_timesteps(10)
    x, t = start(), fused.timesteps[2]
    torch.manual_seed(11)
    a = fused.step(dummy_model(x, t), t, x).prev_sample
    torch.manual_seed(11)
    b = fused.step(dummy_model(x, t), t, x).prev_sample
    torch.manual_seed(12)
    c = fused.step(dummy_model(x, t), t, x).prev_sample
    mean = fused.step(dummy_model(x, t), 0 * t, x).prev_sample  # t = 0: no noise at all
    torch.testing.assert_close(a, b)
    assert (a - c).abs().max() > 1e-3 and torch.isfinite(mean).all()


def test_ddim_per_sample_timesteps_match_one_call_per_sample():
    stock, fused = diffusers.DDIMScheduler(prediction_type="v_prediction"), FusedDDIMScheduler(
        prediction_type="v_prediction")
    for s in (stock, fused):
        s.set_timesteps(20)
    x = start()
    t = stock.timesteps[[0, 7, 19]]
    noise = torch.randn(SHAPE)
    out = fused.step(dummy_model(x, t), t, x, eta=0.5, variance_noise=noise)
    for i in range(SHAPE[0]):
        one = stock.step(dummy_model(x[i:i + 1], t[i]), t[i], x[i:i + 1], eta=0.5, variance_noise=noise[i:i + 1])
        torch.testing.assert_close(out.prev_sample[i:i + 1], one.prev_sample, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.pred_original_sample[i:i + 1], one.pred_original_sample, atol=1e-5, rtol=1e-5)


def test_ddpm_per_sample_timesteps_match_one_call_per_sample():
    """Per-sample t (including t = 0, which gets no noise): the mean of each sample is the
    stock step's, and the noise is the full-shape draw of the generator times each std."""
    stock, fused = diffusers.DDPMScheduler(), FusedDDPMScheduler()
    for s in (stock, fused):
        s.set_timesteps(25)
    x = start()
    t = stock.timesteps[[3, 24, 10]]
    assert t[1] == 0
    out = fused.step(dummy_model(x, t), t, x, generator=torch.Generator().manual_seed(5))
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    for i in range(SHAPE[0]):
        ti = int(t[i])
        mean = stock.step(dummy_model(x[i:i + 1], ti), 0, x[i:i + 1]) if ti == 0 else None
        ref = stock.step(dummy_model(x[i:i + 1], ti), ti, x[i:i + 1], generator=torch.Generator().manual_seed(0))
        # the stock step's noise is its own draw: remove it and add this one
        own = torch.randn((1, *SHAPE[1:]), generator=torch.Generator().manual_seed(0))
        std = stock._get_variance(ti) ** 0.5 if ti > 0 else 0.0
        expected = (mean.prev_sample if mean is not None else ref.prev_sample - std * own) + std * z[i:i + 1]
        torch.testing.assert_close(out.prev_sample[i:i + 1], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["ddpm", "ddim"])
def test_tables_follow_set_timesteps(kind):
    """The cached coefficients are rebuilt when set_timesteps changes the step size."""
    stock_cls, fused_cls = PAIRS[kind]
    stock, fused = stock_cls(), fused_cls()
    x = start()
    for steps in (10, 20, 10):
        for s in (stock, fused):
            s.set_timesteps(steps)
        a = stock.step(dummy_model(x, 500), 500, x, generator=torch.Generator().manual_seed(0)).prev_sample
        b = fused.step(dummy_model(x, 500), 500, x, generator=torch.Generator().manual_seed(0)).prev_sample
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_dpm_per_sample_scalar_forms_agree():
    """DPM-Solver is driven by its step index: a number, a 0-d and a one-element tensor agree."""
    results = []
    for form in (int, torch.tensor, lambda t: torch.tensor([t])):
        s = FusedDPMSolverMultistepScheduler()
        s.set_timesteps(8)
        x = start()
        for t in s.timesteps.tolist():
            x = s.step(dummy_model(x, t), form(t), x).prev_sample
        results.append(x)
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)
    torch.testing.assert_close(results[0], results[2], rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["ddpm", "ddim", "dpm"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_add_noise_matches_stock_per_sample(kind, dtype):
    stock_cls, fused_cls = PAIRS[kind]
    stock, fused = stock_cls(), fused_cls()
    if kind == "dpm":
        for s in (stock, fused):
            s.set_timesteps(30)
        t = stock.timesteps[[0, 11, 29]]
    else:
        t = torch.tensor([999, 0, 500])
    x, noise = start(), torch.randn(SHAPE)
    truth = stock.add_noise(x, noise, t)  # fp32
    out = fused.add_noise(x.to(dtype), noise.to(dtype), t)
    assert out.dtype == dtype and out.shape == x.shape
    if dtype == torch.float32:
        torch.testing.assert_close(out, truth, atol=1e-6, rtol=1e-6)
    else:  # float32 coefficients: one bf16 rounding of the fp32 result, no worse than stock bf16
        stock16 = stock.add_noise(x.to(dtype), noise.to(dtype), t)
        fused_error = (out.float() - truth).abs().max()
        assert fused_error <= (stock16.float() - truth).abs().max() + 1e-6
        torch.testing.assert_close(out.float(), truth, atol=2e-2, rtol=1e-2)
    one = fused.add_noise(x, noise, t[1])  # one timestep for every sample
    torch.testing.assert_close(one, stock.add_noise(x, noise, t[1:2].expand(SHAPE[0])), atol=1e-6, rtol=1e-6)


def test_bf16_add_noise_adds_noise_at_small_t():
    """At t = 0 diffusers rounds g = 0.9999 to bf16 (1.0) before 1 - g, so it adds no noise;
    the fused kernel keeps the coefficients in float32 and rounds only the result."""
    x = torch.full(SHAPE, 0.5, dtype=torch.bfloat16)
    noise = torch.ones(SHAPE, dtype=torch.bfloat16)
    t = torch.zeros(SHAPE[0], dtype=torch.long)
    g = diffusers.DDPMScheduler().alphas_cumprod[0].double()
    exact = (g.sqrt() * 0.5 + (1 - g).sqrt()).item()
    out = FusedDDPMScheduler().add_noise(x, noise, t)
    assert (out == torch.tensor(exact).to(torch.bfloat16)).all()
    assert (diffusers.DDPMScheduler().add_noise(x, noise, t) == x).all()  # stock: no noise


def test_fallback_warns_once_per_instance_and_matches_stock():
    config = {"thresholding": True, "sample_max_value": 1.5}
    stock, fused = diffusers.DDIMScheduler(**config), FusedDDIMScheduler(**config)
    with pytest.warns(UserWarning, match="thresholding=True") as record:
        x_fused, _ = run_loop(fused, start())
    assert sum("thresholding" in str(w.message) for w in record) == 1
    x_stock, _ = run_loop(stock, start())
    torch.testing.assert_close(x_fused, x_stock, rtol=0, atol=0)


@pytest.mark.parametrize("kind, config, option", [
    ("ddpm", {"variance_type": "learned_range"}, "variance_type='learned_range'"),
    ("dpm", {"algorithm_type": "sde-dpmsolver++"}, "algorithm_type='sde-dpmsolver++'"),
    ("dpm", {"solver_order": 3}, "third-order"),
])
def test_fallback_names_the_option(kind, config, option):
    stock_cls, fused_cls = PAIRS[kind]
    x_in = start()
    with pytest.warns(UserWarning, match=re.escape(option)):
        if config.get("variance_type") == "learned_range":
            fused = fused_cls(**config)
            fused.set_timesteps(5)
            t = fused.timesteps[0]
            both = torch.cat([dummy_model(x_in, t), torch.zeros_like(x_in)], dim=1)
            out = fused.step(both, t, x_in, generator=torch.Generator().manual_seed(1)).prev_sample
            stock = stock_cls(**config)
            stock.set_timesteps(5)
            ref = stock.step(both, t, x_in, generator=torch.Generator().manual_seed(1)).prev_sample
            torch.testing.assert_close(out, ref, rtol=0, atol=0)
            return
        x_fused, _ = run_loop(fused_cls(**config), x_in)
    x_stock, _ = run_loop(stock_cls(**config), x_in)
    torch.testing.assert_close(x_fused, x_stock, atol=1e-5, rtol=1e-5)


def test_fallback_in_a_field_domain_raises():
    fused = FusedDDIMScheduler(thresholding=True, domain="gradient")
    fused.set_timesteps(5)
    x = start()
    with pytest.raises(NotImplementedError, match="thresholding=True.*'gradient'"):
        fused.step(dummy_model(x, fused.timesteps[0]), fused.timesteps[0], x)


@pytest.mark.parametrize("kind", ["ddpm", "ddim", "dpm"])
def test_config_round_trips_and_swaps(kind, tmp_path):
    stock_cls, fused_cls = PAIRS[kind]
    stock = stock_cls(beta_schedule="scaled_linear", prediction_type="v_prediction", steps_offset=1)
    fused = fused_cls.from_config(stock.config)
    assert fused.config.domain == "image"
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_") and k != "domain"}  # noqa: E731
    assert public(fused.config) == public(stock.config)
    fused = fused_cls.from_config(stock.config, domain="laplacian")
    fused.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert saved["domain"] == "laplacian" and saved["_class_name"] == fused_cls.__name__
    loaded = fused_cls.from_pretrained(tmp_path)
    assert type(loaded) is fused_cls and public(loaded.config) == public(fused.config)
    assert loaded.config.domain == "laplacian"
    assert loaded.domain_scale == DOMAIN_SCALES["laplacian"]
    back = stock_cls.from_config(loaded.config)  # and back to the stock class
    assert back.config.prediction_type == "v_prediction"


def test_bad_domain_is_rejected():
    with pytest.raises(ValueError, match="`domain` must be one of"):
        FusedDDPMScheduler(domain="fourier")


@pytest.mark.parametrize("domain", ["gradient", "laplacian"])
@pytest.mark.parametrize("prediction", [("epsilon", "eps"), ("v_prediction", "v"), ("sample", "x0")])
def test_domain_steps_match_the_library_reference(domain, prediction):
    """In a field domain the steps are gddm_kernels' own (k scales every noise term)."""
    k = DOMAIN_SCALES[domain]
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float32)
    schedule = schedule_from_betas(betas.double())
    x, noise = start().double(), torch.randn(SHAPE, dtype=torch.float64)
    m = dummy_model(x, 400)
    ddim = FusedDDIMScheduler(domain=domain, prediction_type=prediction[0], clip_sample=False)
    ddim.set_timesteps(10)
    t = torch.full((SHAPE[0],), 401, dtype=torch.long)
    out = ddim.step(m, t, x, eta=0.6, variance_noise=noise).prev_sample
    ref = reference.ddim_step(x, m, t, t - 100, schedule, eta=0.6, prediction_type=prediction[1], noise=noise,
                              domain_scale=k)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)  # schedules agree to float32 rounding
    ddpm = FusedDDPMScheduler(domain=domain, prediction_type=prediction[0], clip_sample=False)
    out = ddpm.step(m, t, x, generator=torch.Generator().manual_seed(2)).prev_sample
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ref = reference.ddpm_step(x, m, t, t - 1, schedule, prediction_type=prediction[1], noise=z, domain_scale=k)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    noisy = ddpm.add_noise(x, noise, t)
    g = schedule.gamma(t).reshape(-1, 1, 1, 1)
    torch.testing.assert_close(noisy, g.sqrt() * x + k * (1 - g).sqrt() * noise, atol=1e-6, rtol=1e-6)


def test_dpm_domain_scale_enters_only_the_x0_prediction():
    """x_t = alpha x_0 + k sigma eps: an exact eps model of a gradient-domain sample leads
    the solver straight to x_0, as the image-domain solver does in image units."""
    fused = FusedDPMSolverMultistepScheduler(domain="gradient", solver_order=1)
    fused.set_timesteps(5)
    x0, eps = start().double(), torch.randn(SHAPE, dtype=torch.float64)
    t = fused.timesteps[0]
    x_t = fused.add_noise(x0, eps, t.reshape(1))
    out = fused.step(eps, t, x_t)
    torch.testing.assert_close(fused.model_outputs[-1], x0, atol=1e-9, rtol=1e-9)
    assert out.prev_sample.shape == x0.shape


def test_import_error_names_the_extra():
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'diffusers' or name.startswith('diffusers.'):\n"
        "            raise ImportError('No module named diffusers (blocked)')\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n"
        "    import gddm_kernels.diffusers\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    print('imported')\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=120)
    assert 'pip install "gddm_kernels[diffusers]"' in result.stdout, result.stdout + result.stderr


class HostReads(TorchDispatchMode):
    """Counts reads of tensor values by the host (aten._local_scalar_dense: .item(), int(),
    bool(); a device sync on a GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func is torch.ops.aten._local_scalar_dense.default
        return func(*args, **(kwargs or {}))


def test_steps_do_not_read_timestep_tensors_on_the_host():
    """A (B,) timestep tensor (as a device tensor would be) is gathered, never read; the
    DPM-Solver step runs on its host step index. (diffusers' own steps read them.)"""
    x = start()
    ddim = FusedDDIMScheduler()
    ddim.set_timesteps(10)
    t = ddim.timesteps[[1, 2, 3]]
    ddim.step(dummy_model(x, t), t, x, eta=0.5)  # builds the table
    dpm = FusedDPMSolverMultistepScheduler()
    dpm.set_timesteps(10)
    dpm.step(dummy_model(x, dpm.timesteps[0]), dpm.timesteps[0], x)  # locates its step index
    with HostReads() as reads:
        ddim.step(dummy_model(x, t), t, x, eta=0.5)
        for s in dpm.timesteps[1:4]:
            x = dpm.step(dummy_model(x, s), s, x).prev_sample
        ddim.add_noise(x, torch.randn_like(x), t)
    assert reads.count == 0
    stock = diffusers.DDIMScheduler()
    stock.set_timesteps(10)
    with HostReads() as reads:
        stock.step(dummy_model(x, t[0]), t[0], x, eta=0.5)
    assert reads.count > 0  # the check can fail


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("kind", ["ddpm", "ddim", "dpm"])
def test_step_is_cuda_graph_capturable(kind):
    """With device timesteps and tables built, a step captures into a CUDA graph (no host
    sync) and its replay equals an eager step."""
    _, fused_cls = PAIRS[kind]
    scheduler = fused_cls()
    scheduler.set_timesteps(10, device="cuda")
    x = start().cuda()
    t = scheduler.timesteps[2]
    m = dummy_model(x, t)
    if kind == "dpm":
        scheduler.step(m, scheduler.timesteps[0], x)
        scheduler.step(m, scheduler.timesteps[1], x)
    noise = torch.randn_like(x)
    args = {"eta": 1.0, "variance_noise": noise} if kind == "ddim" else {}
    eager = scheduler.step(m, t, x, **args).prev_sample
    if kind == "dpm":
        scheduler._step_index -= 1
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.cuda.graph(graph):
            captured = scheduler.step(m, t, x, **args).prev_sample
    finally:
        torch.cuda.set_sync_debug_mode("default")
    graph.replay()
    if kind != "ddpm":  # the DDPM step draws fresh in-kernel noise
        torch.testing.assert_close(captured, eager, atol=1e-6, rtol=1e-6)
    assert torch.isfinite(captured).all()
