"""Trainer, sampler, PNG grids and the command line on tiny models (8x8 digits, a few steps),
for both processes (ddpm and Huang et al.'s analytic attenuation)."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from torch import nn

from gddm_kernels.app.checkpoints import load_checkpoint
from gddm_kernels.app.cli import main
from gddm_kernels.app.config import MODES, PROCESSES, TrainConfig, make_schedule
from gddm_kernels.app.distributed import rank_generators
from gddm_kernels.app.images import grid_size, save_grid
from gddm_kernels.app.loop import train
from gddm_kernels.app.objective import DiffusionNets, clean_field
from gddm_kernels.app.sample import (DEFAULT_SAMPLERS, RECONSTRUCTIONS, SAMPLER_PROCESSES, SAMPLERS, load_nets,
                                     reverse_process, sample, time_sequence, timestep_sequence)
from gddm_kernels.reference.diffusion import DOMAIN_SCALES

SIZE = 8
TINY = dict(dataset="digits", size=SIZE, batch_size=4, base_channels=8, channel_mults=(1, 2), timesteps=50,
            progress=False)
SAMPLE_ARGS = dict(num_samples=3, steps=4, device="cpu")
DDPM_SAMPLERS = [name for name in SAMPLERS if SAMPLER_PROCESSES[name] == "ddpm"]


def tiny(mode: str = "laplacian", steps: int = 3, **overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, "mode": mode, "steps": steps, "device": "cpu", **overrides})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """A tiny trained checkpoint per mode; the field modes also carry a Poisson network."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {mode: train(tiny(mode, poisson_net=mode != "image", out=str(root / mode)))["checkpoint"]
            for mode in MODES}


@pytest.fixture(scope="module")
def attenuation_checkpoints(tmp_path_factory) -> dict[str, str]:
    """The same per mode, trained with the analytic-attenuation process."""
    root = tmp_path_factory.mktemp("attenuation_checkpoints")
    return {mode: train(tiny(mode, process="attenuation", poisson_net=mode != "image",
                             out=str(root / mode)))["checkpoint"]
            for mode in MODES}


def checkpoint_for(sampler: str, mode: str, checkpoints: dict[str, str],
                   attenuation_checkpoints: dict[str, str]) -> str:
    """The tiny checkpoint of `mode` trained with the process `sampler` needs."""
    return (attenuation_checkpoints if SAMPLER_PROCESSES[sampler] == "attenuation" else checkpoints)[mode]


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


# ---- training ----------------------------------------------------------------------------------

@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize("mode", MODES)
def test_each_mode_trains_with_finite_losses(mode, process):
    result = train(tiny(mode, process=process, sparsity_weight=0.1, poisson_net=mode != "image"))
    assert len(result["losses"]) == 3 and all(math.isfinite(v) for v in result["losses"])
    expected = ({"eps", "sparsity"} | ({"poisson"} if mode != "image" else set())
                | ({"attenuation"} if process == "attenuation" else set()))
    assert set(result["loss_parts"]) == expected
    parts = result["loss_parts"]
    for step, total in enumerate(result["losses"]):
        assert total == pytest.approx(sum(parts[name][step] for name in expected), rel=1e-5)


@pytest.mark.parametrize("process", PROCESSES)
def test_bf16_autocast_trains(process):
    result = train(tiny("gradient", process=process, precision="bf16", poisson_net=True))
    assert all(math.isfinite(v) for v in result["losses"])


def test_attenuation_nets_split_the_outputs_and_scale_the_time():
    """The U-Net's first field_channels outputs are c_hat, the rest eps_hat; its time input is t T."""
    config = tiny("gradient", channels=3, process="attenuation")
    nets = DiffusionNets(config)
    assert nets.model.head.out_channels == 2 * config.field_channels

    class ChannelIndex(nn.Module):  # output channel j holds the value j; records the time input
        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            self.t = t
            channels = torch.arange(2 * x.shape[1], dtype=x.dtype).view(1, -1, 1, 1)
            return channels.expand(x.shape[0], -1, *x.shape[2:])

    nets.model = ChannelIndex()
    field = torch.zeros(2, 3, 2, SIZE, SIZE)
    t = torch.tensor([0.25, 1.0])
    c_hat, eps_hat = nets.predict(field, t, "fp32")
    assert c_hat.shape == eps_hat.shape == field.shape
    expected = torch.arange(6.0).view(1, 3, 2, 1, 1).expand_as(field)  # channel 2c + k: component k of c
    assert torch.equal(c_hat, expected) and torch.equal(eps_hat, expected + 6)
    assert torch.equal(nets.model.t, t * config.timesteps)


@pytest.mark.parametrize("process", PROCESSES)
def test_resume_is_exact(tmp_path, process):
    """2N straight == N, then resume to 2N: same losses, weights, EMA (dropout exercises the RNG)."""
    config = dict(process=process, sparsity_weight=0.05, poisson_net=True, dropout=0.1)
    straight = train(tiny("gradient", steps=4, **config))
    first = train(tiny("gradient", steps=2, out=str(tmp_path / "a"), **config))
    second = train(tiny("gradient", steps=4, resume=first["checkpoint"], out=str(tmp_path / "b"), **config))
    assert second["start_step"] == 2
    assert first["losses"] + second["losses"] == straight["losses"]
    _assert_same_weights(second["nets"], straight["nets"])
    _assert_same_weights(second["ema"], straight["ema"])


def test_resume_rejects_a_different_config(tmp_path):
    first = train(tiny("laplacian", steps=1, out=str(tmp_path)))
    with pytest.raises(ValueError, match="config differs: mode"):
        train(tiny("gradient", steps=2, resume=first["checkpoint"]))
    with pytest.raises(ValueError, match="config differs: process: 'ddpm' != 'attenuation'"):
        train(tiny("laplacian", process="attenuation", steps=2, resume=first["checkpoint"]))


def test_checkpoint_contents(checkpoints):
    checkpoint = load_checkpoint(checkpoints["gradient"])
    assert checkpoint["step"] == 3 and checkpoint["config"].mode == "gradient"
    assert checkpoint["config"].size == SIZE and checkpoint["config"].channels == 1
    assert set(checkpoint["rng"][0]) == {"data", "noise", "torch", "cuda"}
    assert {"nets", "ema", "optimizer", "image_mean"} <= set(checkpoint)
    assert checkpoint["config"].process == "ddpm"


def test_attenuation_checkpoint_contents(attenuation_checkpoints):
    checkpoint = load_checkpoint(attenuation_checkpoints["laplacian"])
    assert checkpoint["config"].process == "attenuation" and checkpoint["config"].mode == "laplacian"
    assert checkpoint["nets"]["model.head.weight"].shape[0] == 2  # (c, eps) for one Laplacian channel


def test_a_checkpoint_without_a_process_is_ddpm(checkpoints, tmp_path):
    """Checkpoints written before the `process` field existed load as the ddpm process."""
    state = torch.load(checkpoints["image"], weights_only=True)
    del state["config"]["process"]
    torch.save(state, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["config"].process == "ddpm"


def test_rank_generators_differ_across_ranks_and_repeat():
    draws = {rank: [torch.randn(4, generator=g) for g in rank_generators(0, rank, torch.device("cpu"))]
             for rank in (0, 1)}
    again = [torch.randn(4, generator=g) for g in rank_generators(0, 0, torch.device("cpu"))]
    assert all(torch.equal(a, b) for a, b in zip(draws[0], again))
    assert not any(torch.equal(a, b) for a, b in zip(draws[0], draws[1]))
    assert not torch.equal(draws[0][0], draws[0][1])  # data and noise streams differ too


@pytest.mark.parametrize("overrides, message", [
    (dict(mode="pixels"), "unknown mode"),
    (dict(size=10, channel_mults=(1, 2, 2)), "multiple of 4"),
    (dict(steps=0), "`steps` must be an integer >= 1"),
    (dict(mode="image", poisson_net=True), "poisson_net"),
    (dict(precision="fp16"), "unknown precision"),
    (dict(process="vp-sde"), "unknown process 'vp-sde'; choose one of \\['ddpm', 'attenuation'\\]"),
    (dict(model="resnet"), "unknown model 'resnet'; choose one of \\['unet', 'diffusers'\\]"),
])
def test_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(**overrides)


# ---- the reference ops as a drop-in ----------------------------------------------------------------

@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize("mode", ["gradient", "laplacian"])
def test_reference_ops_give_the_same_losses_and_samples(mode, process, tmp_path):
    runs = {backend: train(tiny(mode, process=process, backend=backend, poisson_net=True, sparsity_weight=0.1,
                                out=str(tmp_path / str(backend))))
            for backend in (None, "reference")}
    torch.testing.assert_close(torch.tensor(runs[None]["losses"]), torch.tensor(runs["reference"]["losses"]),
                               rtol=1e-5, atol=1e-6)
    images = {backend: sample(run["checkpoint"], sampler=DEFAULT_SAMPLERS[process], eta=1.0, seed=3,
                              backend=backend, **SAMPLE_ARGS)
              for backend, run in runs.items()}
    torch.testing.assert_close(images[None], images["reference"], rtol=1e-4, atol=1e-4)


# ---- sampling ------------------------------------------------------------------------------------

def test_timestep_sequence():
    taus = timestep_sequence(1000, 7)
    assert taus[0] == 999 and taus[-2] == 0 and taus[-1] == -1 and len(taus) == 8
    assert bool((taus[:-1] > taus[1:]).all())
    assert timestep_sequence(1000, 1).tolist() == [999, -1]
    assert timestep_sequence(10, 10).tolist() == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, -1]
    assert timestep_sequence(1000, 1000).tolist() == list(range(999, -2, -1))  # every timestep, in order


def test_time_sequence():
    assert time_sequence(4).tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert time_sequence(1).tolist() == [1.0, 0.0]
    times = time_sequence(1001)  # not bounded by T: the attenuation process has continuous time
    assert times.dtype == torch.float64 and len(times) == 1002 and bool((times[:-1] > times[1:]).all())


CASES = [(m, s, r) for m, s, r in itertools.product(MODES, SAMPLERS, RECONSTRUCTIONS)
         if not (m == "image" and r == "poisson_net")]


@pytest.mark.parametrize("mode, sampler, reconstruction", CASES)
def test_sampler_writes_a_png_grid(checkpoints, attenuation_checkpoints, tmp_path, mode, sampler, reconstruction):
    path = tmp_path / "grid.png"
    images = sample(checkpoint_for(sampler, mode, checkpoints, attenuation_checkpoints), sampler=sampler,
                    reconstruction=reconstruction, out=path, nrow=2, scale=3, eta=0.5, **SAMPLE_ARGS)
    assert images.shape == (3, 1, SIZE, SIZE) and bool(images.isfinite().all())
    assert images.min() >= -1 and images.max() <= 1
    with Image.open(path) as png:
        assert png.size == grid_size(3, SIZE, SIZE, nrow=2, scale=3) and png.mode == "L"


def test_sampling_is_reproducible_and_seeded(checkpoints):
    a, b = (sample(checkpoints["laplacian"], seed=1, **SAMPLE_ARGS) for _ in range(2))
    c = sample(checkpoints["laplacian"], seed=2, **SAMPLE_ARGS)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("mode", MODES)
def test_attenuation_sampler_with_eta_0_and_1(attenuation_checkpoints, mode):
    """The process's default sampler; eta = 1 (Alg. 2) adds step noise to the eta = 0 path."""
    runs = {eta: [sample(attenuation_checkpoints[mode], eta=eta, seed=seed, **SAMPLE_ARGS) for seed in (1, 1, 2)]
            for eta in (0.0, 1.0)}
    for eta, (a, b, c) in runs.items():
        assert a.shape == (3, 1, SIZE, SIZE) and bool(a.isfinite().all())
        assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(runs[0.0][0], sample(attenuation_checkpoints[mode], sampler="attenuation", seed=1,
                                            **SAMPLE_ARGS))  # eta defaults to 0
    assert not torch.equal(runs[0.0][0], runs[1.0][0])


class Oracle:
    """A perfect attenuation model for the clean field F0: c = -F0 and the eps that the field x_t
    carries, eps = (x_t - (1 - t) F0) / (k sqrt(t)), in `DiffusionNets.predict`'s interface."""

    def __init__(self, clean: torch.Tensor, k: float) -> None:
        self.clean, self.k = clean, k

    def predict(self, field: torch.Tensor, t: torch.Tensor, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
        per_sample = t.view(-1, *[1] * (field.dim() - 1)).to(field.dtype)
        eps = (field - (1 - per_sample) * self.clean) / (self.k * per_sample.sqrt())
        return -self.clean, eps


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("mode", MODES)
def test_attenuation_sampler_recovers_the_clean_field_from_an_oracle(mode, eta):
    """With exact predictions every step stays on the forward process, and the last step to t = 0
    returns F0 (eta = 0: the deterministic path from F_1 ~ N(0, k^2); eta = 1: Alg. 2's bridge)."""
    config = tiny(mode, process="attenuation", channels=3)
    clean = clean_field(torch.rand(5, 3, SIZE, SIZE) * 2 - 1, mode)
    oracle = Oracle(clean, DOMAIN_SCALES[mode])
    generator = torch.Generator().manual_seed(0)
    field = reverse_process(oracle, config, make_schedule(config), 5, 7, "attenuation", generator, eta=eta)
    torch.testing.assert_close(field, clean, atol=2e-5, rtol=0)


def test_poisson_net_from_another_checkpoint(checkpoints):
    images = sample(checkpoints["laplacian"], reconstruction="poisson_net",
                    poisson_checkpoint=checkpoints["laplacian"], **SAMPLE_ARGS)
    assert images.shape == (3, 1, SIZE, SIZE)


@pytest.mark.parametrize("mode, kwargs, message", [
    ("laplacian", dict(sampler="euler"), "unknown sampler 'euler'"),
    ("laplacian", dict(sampler="attenuation"),
     "sampler 'attenuation' needs a checkpoint trained with process 'attenuation', this one was trained with "
     "process 'ddpm'"),
    ("laplacian", dict(reconstruction="fft"), "unknown reconstruction"),
    ("laplacian", dict(steps=0), "`steps` must be an integer in"),
    ("laplacian", dict(steps=51), "`steps` must be an integer in"),
    ("laplacian", dict(size=16), "trained on 8x8 images"),
    ("laplacian", dict(reconstruction="poisson_net", poisson_checkpoint="gradient"), "'gradient'-mode checkpoint"),
    ("image", dict(reconstruction="poisson_net"), "image-mode checkpoint"),
    ("laplacian", dict(poisson_checkpoint="laplacian"), "only applies to reconstruction='poisson_net'"),
])
def test_sample_errors(checkpoints, mode, kwargs, message):
    if "poisson_checkpoint" in kwargs:
        kwargs = {**kwargs, "poisson_checkpoint": checkpoints[kwargs["poisson_checkpoint"]]}
    with pytest.raises(ValueError, match=message):
        sample(checkpoints[mode], **{**SAMPLE_ARGS, **kwargs})


@pytest.mark.parametrize("sampler", DDPM_SAMPLERS)
def test_ddpm_samplers_reject_an_attenuation_checkpoint(attenuation_checkpoints, sampler):
    with pytest.raises(ValueError, match=f"sampler '{sampler}' needs a checkpoint trained with process 'ddpm', "
                                         r"this one was trained with process 'attenuation'.*\['attenuation'\]"):
        sample(attenuation_checkpoints["gradient"], sampler=sampler, **SAMPLE_ARGS)


def test_attenuation_steps_are_not_bounded_by_the_timesteps(attenuation_checkpoints):
    images = sample(attenuation_checkpoints["image"], **{**SAMPLE_ARGS, "steps": 60})  # T = 50
    assert bool(images.isfinite().all())
    with pytest.raises(ValueError, match="`steps` must be an integer >= 1"):
        sample(attenuation_checkpoints["image"], **{**SAMPLE_ARGS, "steps": 0})


def test_poisson_net_reconstruction_needs_a_trained_poisson_net(tmp_path):
    plain = train(tiny("laplacian", steps=1, out=str(tmp_path)))["checkpoint"]
    with pytest.raises(ValueError, match="poisson_net=True"):
        sample(plain, reconstruction="poisson_net", **SAMPLE_ARGS)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize("mode", MODES)
def test_sampling_loop_does_not_sync_with_the_host(tmp_path, mode, process):
    loaded = load_checkpoint(train(tiny(mode, process=process, steps=1, device="cuda",
                                        out=str(tmp_path)))["checkpoint"])
    nets = load_nets(loaded, True, torch.device("cuda"))
    schedule = make_schedule(loaded["config"]).to("cuda")
    generator = torch.Generator("cuda").manual_seed(0)
    samplers = [name for name in SAMPLERS if SAMPLER_PROCESSES[name] == process]
    for sampler in samplers:  # warm-up: lazy initialisation may synchronise
        reverse_process(nets, loaded["config"], schedule, 2, 5, sampler, generator, eta=0.5)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for sampler in samplers:
            reverse_process(nets, loaded["config"], schedule, 2, 5, sampler, generator, eta=0.5)
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ---- PNG grids -------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_save_grid(tmp_path, channels, mode):
    images = torch.linspace(-1, 1, 5 * channels * 4 * 6).reshape(5, channels, 4, 6)
    path = save_grid(images, tmp_path / "sub" / "grid.png", nrow=2, padding=1, scale=2)
    with Image.open(path) as png:
        assert png.size == grid_size(5, 4, 6, nrow=2, padding=1, scale=2) == (2 * (2 * 7 + 1), 2 * (3 * 5 + 1))
        assert png.mode == mode
        first = torch.from_numpy(np.array(png)).reshape(png.size[1], png.size[0], channels)[2, 2]
    assert first.tolist() == ((images[0, :, 0, 0] + 1) * 127.5).round().tolist()  # after padding * scale


def test_save_grid_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        save_grid(torch.zeros(2, 2, 4, 4), tmp_path / "x.png")


# ---- command line ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["export"]])
def test_cli_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    expected = {"train": ["--mode", "--process", "--lambda", "--poisson-net", "--precision", "--reference-ops",
                          "--resume", "--model"],
                "sample": ["--sampler", "--eta", "--reconstruction", "--poisson-checkpoint", "--reference-ops"],
                "export": ["--checkpoint", "--out", "--scheduler", "--reconstruction", "--no-ema"]}
    for option in expected.get(command[0] if command else "", ["train", "sample", "export"]):
        assert option in text


def test_cli_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "gddm_kernels", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "train" in result.stdout


@pytest.mark.parametrize("process, sampler_args", [
    ("ddpm", []),
    ("attenuation", ["--sampler", "attenuation", "--eta", "1"]),
])
def test_cli_train_then_sample(tmp_path, capsys, process, sampler_args):
    out = tmp_path / "run"
    assert main(["train", "--mode", "gradient", "--process", process, "--size", "8", "--steps", "2",
                 "--batch-size", "4", "--base-channels", "8", "--channel-mults", "1", "2", "--timesteps", "20",
                 "--out", str(out), "--no-progress", "--reference-ops"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["config"].process == process
    assert main(["sample", "--checkpoint", str(out / "checkpoint.pt"), "--num-samples", "4", "--steps", "3",
                 "--nrow", "2", "--scale", "1", "--device", "cpu", "--no-progress", *sampler_args]) == 0
    with Image.open(out / "samples.png") as png:
        assert png.size == grid_size(4, SIZE, SIZE, nrow=2)


@pytest.mark.parametrize("argv, message", [
    (["sample", "--checkpoint", "missing.pt"], "does not exist"),
    (["train", "--steps", "0"], "`steps` must be"),
    (["train", "--size", "10"], "multiple of 4"),
    (["export", "--checkpoint", "missing.pt", "--out", "unused"], "does not exist"),
])
def test_cli_errors(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_rejects_unknown_choices(capsys):
    for argv in (["train", "--mode", "pixels"], ["train", "--model", "resnet"],
                 ["export", "--checkpoint", "c.pt", "--out", "o", "--scheduler", "euler"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "invalid choice" in capsys.readouterr().err
