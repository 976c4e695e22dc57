"""Trainer, sampler, PNG grids and the command line on tiny models (8x8 digits, a few steps)."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gddm_kernels.__main__ import main
from gddm_kernels.images import grid_size, save_grid
from gddm_kernels.sample import RECONSTRUCTIONS, SAMPLERS, load_nets, reverse_process, sample, timestep_sequence
from gddm_kernels.train import MODES, TrainConfig, load_checkpoint, make_schedule, rank_generators, train

SIZE = 8
TINY = dict(dataset="digits", size=SIZE, batch_size=4, base_channels=8, channel_mults=(1, 2), timesteps=50,
            progress=False)
SAMPLE_ARGS = dict(num_samples=3, steps=4, device="cpu")


def tiny(mode: str = "laplacian", steps: int = 3, **overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, "mode": mode, "steps": steps, "device": "cpu", **overrides})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """A tiny trained checkpoint per mode; the field modes also carry a Poisson network."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {mode: train(tiny(mode, poisson_net=mode != "image", out=str(root / mode)))["checkpoint"]
            for mode in MODES}


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


# ---- training ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_each_mode_trains_with_finite_losses(mode):
    result = train(tiny(mode, sparsity_weight=0.1, poisson_net=mode != "image"))
    assert len(result["losses"]) == 3 and all(math.isfinite(v) for v in result["losses"])
    expected = {"eps", "sparsity"} | ({"poisson"} if mode != "image" else set())
    assert set(result["loss_parts"]) == expected
    parts = result["loss_parts"]
    for step, total in enumerate(result["losses"]):
        assert total == pytest.approx(sum(parts[name][step] for name in expected), rel=1e-5)


def test_bf16_autocast_trains():
    result = train(tiny("gradient", precision="bf16", poisson_net=True))
    assert all(math.isfinite(v) for v in result["losses"])


def test_resume_is_exact(tmp_path):
    """2N straight == N, then resume to 2N: same losses, weights, EMA (dropout exercises the RNG)."""
    config = dict(sparsity_weight=0.05, poisson_net=True, dropout=0.1)
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


def test_checkpoint_contents(checkpoints):
    checkpoint = load_checkpoint(checkpoints["gradient"])
    assert checkpoint["step"] == 3 and checkpoint["config"].mode == "gradient"
    assert checkpoint["config"].size == SIZE and checkpoint["config"].channels == 1
    assert set(checkpoint["rng"][0]) == {"data", "noise", "torch", "cuda"}
    assert {"nets", "ema", "optimizer", "image_mean"} <= set(checkpoint)


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
])
def test_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(**overrides)


# ---- the reference ops as a drop-in ----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["gradient", "laplacian"])
def test_reference_ops_give_the_same_losses_and_samples(mode, tmp_path):
    runs = {backend: train(tiny(mode, backend=backend, poisson_net=True, sparsity_weight=0.1,
                                out=str(tmp_path / str(backend))))
            for backend in (None, "reference")}
    torch.testing.assert_close(torch.tensor(runs[None]["losses"]), torch.tensor(runs["reference"]["losses"]),
                               rtol=1e-5, atol=1e-6)
    images = {backend: sample(run["checkpoint"], sampler="ddpm", seed=3, backend=backend, **SAMPLE_ARGS)
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


CASES = [(m, s, r) for m, s, r in itertools.product(MODES, SAMPLERS, RECONSTRUCTIONS)
         if not (m == "image" and r == "poisson_net")]


@pytest.mark.parametrize("mode, sampler, reconstruction", CASES)
def test_sampler_writes_a_png_grid(checkpoints, tmp_path, mode, sampler, reconstruction):
    path = tmp_path / "grid.png"
    images = sample(checkpoints[mode], sampler=sampler, reconstruction=reconstruction, out=path, nrow=2,
                    scale=3, eta=0.5, **SAMPLE_ARGS)
    assert images.shape == (3, 1, SIZE, SIZE) and bool(images.isfinite().all())
    assert images.min() >= -1 and images.max() <= 1
    with Image.open(path) as png:
        assert png.size == grid_size(3, SIZE, SIZE, nrow=2, scale=3) and png.mode == "L"


def test_sampling_is_reproducible_and_seeded(checkpoints):
    a, b = (sample(checkpoints["laplacian"], seed=1, **SAMPLE_ARGS) for _ in range(2))
    c = sample(checkpoints["laplacian"], seed=2, **SAMPLE_ARGS)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_poisson_net_from_another_checkpoint(checkpoints):
    images = sample(checkpoints["laplacian"], reconstruction="poisson_net",
                    poisson_checkpoint=checkpoints["laplacian"], **SAMPLE_ARGS)
    assert images.shape == (3, 1, SIZE, SIZE)


@pytest.mark.parametrize("mode, kwargs, message", [
    ("laplacian", dict(sampler="attenuation"), "unknown sampler"),
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


def test_poisson_net_reconstruction_needs_a_trained_poisson_net(tmp_path):
    plain = train(tiny("laplacian", steps=1, out=str(tmp_path)))["checkpoint"]
    with pytest.raises(ValueError, match="poisson_net=True"):
        sample(plain, reconstruction="poisson_net", **SAMPLE_ARGS)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode", MODES)
def test_sampling_loop_does_not_sync_with_the_host(tmp_path, mode):
    loaded = load_checkpoint(train(tiny(mode, steps=1, device="cuda", out=str(tmp_path)))["checkpoint"])
    nets = load_nets(loaded, True, torch.device("cuda"))
    schedule = make_schedule(loaded["config"]).to("cuda")
    generator = torch.Generator("cuda").manual_seed(0)
    for sampler in SAMPLERS:  # warm-up: lazy initialisation may synchronise
        reverse_process(nets, loaded["config"], schedule, 2, 5, sampler, generator, eta=0.5)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for sampler in SAMPLERS:
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

@pytest.mark.parametrize("command", [[], ["train"], ["sample"]])
def test_cli_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    expected = {"train": ["--mode", "--lambda", "--poisson-net", "--precision", "--reference-ops", "--resume"],
                "sample": ["--sampler", "--reconstruction", "--poisson-checkpoint", "--reference-ops"]}
    for option in expected.get(command[0] if command else "", ["train", "sample"]):
        assert option in text


def test_cli_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "gddm_kernels", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "train" in result.stdout


def test_cli_train_then_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--mode", "gradient", "--size", "8", "--steps", "2", "--batch-size", "4",
                 "--base-channels", "8", "--channel-mults", "1", "2", "--timesteps", "20", "--out", str(out),
                 "--no-progress", "--reference-ops"]) == 0
    assert main(["sample", "--checkpoint", str(out / "checkpoint.pt"), "--num-samples", "4", "--steps", "3",
                 "--nrow", "2", "--scale", "1", "--device", "cpu", "--no-progress"]) == 0
    with Image.open(out / "samples.png") as png:
        assert png.size == grid_size(4, SIZE, SIZE, nrow=2)


@pytest.mark.parametrize("argv, message", [
    (["sample", "--checkpoint", "missing.pt"], "does not exist"),
    (["train", "--steps", "0"], "`steps` must be"),
    (["train", "--size", "10"], "multiple of 4"),
])
def test_cli_errors(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_rejects_unknown_choices(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--mode", "pixels"])
    assert "invalid choice" in capsys.readouterr().err
