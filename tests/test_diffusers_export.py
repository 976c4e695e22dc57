"""Training with diffusers' UNet2DModel (`--model diffusers`) and `export` of such a checkpoint as a
GradientDomainPipeline folder: tiny runs (8x8 digits, a UNet2DModel of widths (8, 16), a few
steps), the exported weights and scheduler, sampling from `from_pretrained`, the refusals, and
the application without diffusers."""

import subprocess
import sys

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from gddm_kernels.app.checkpoints import load_checkpoint  # noqa: E402
from gddm_kernels.app.cli import main  # noqa: E402
from gddm_kernels.app.config import TrainConfig, make_schedule  # noqa: E402
from gddm_kernels.app.export import export, fused_scheduler  # noqa: E402
from gddm_kernels.app.loop import train  # noqa: E402
from gddm_kernels.app.models import DiffusersMissingError  # noqa: E402
from gddm_kernels.app.objective import as_channels  # noqa: E402
from gddm_kernels.app.sample import load_nets, sample  # noqa: E402
from gddm_kernels.diffusers import FusedDDIMScheduler, FusedDDPMScheduler, GradientDomainPipeline  # noqa: E402

SIZE = 8
TINY = dict(dataset="digits", size=SIZE, batch_size=4, base_channels=8, channel_mults=(1, 2), timesteps=50,
            progress=False, device="cpu")
SHAPE = ["--size", str(SIZE), "--batch-size", "4", "--base-channels", "8", "--channel-mults", "1", "2",
         "--timesteps", "50", "--no-progress", "--device", "cpu"]
RUNS = {"gradient": dict(mode="gradient", channels=1), "image": dict(mode="image", channels=3)}
UNET_PREFIX = "model.unet."  # where DiffusionNets keeps a UNet2DModel's weights
INSTALL = 'pip install "gddm_kernels[diffusers]"'


def tiny(steps: int = 3, **overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, "steps": steps, **overrides})


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _unet_weights(state: dict) -> dict:
    return {name[len(UNET_PREFIX):]: value for name, value in state.items() if name.startswith(UNET_PREFIX)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    """A tiny `--model diffusers` checkpoint per domain, trained through the command line."""
    root = tmp_path_factory.mktemp("runs")
    paths = {}
    for name, run in RUNS.items():
        out = root / name
        argv = ["train", *SHAPE, "--model", "diffusers", "--mode", run["mode"], "--channels", str(run["channels"]),
                "--steps", "3", "--out", str(out)]
        assert main(argv) == 0
        paths[name] = str(out / "checkpoint.pt")
    return paths


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory) -> dict[str, str]:
    """Each checkpoint exported by the command line (default scheduler and reconstruction)."""
    root = tmp_path_factory.mktemp("pipelines")
    for name, checkpoint in runs.items():
        assert main(["export", "--checkpoint", checkpoint, "--out", str(root / name)]) == 0
    return {name: str(root / name) for name in runs}


@pytest.mark.parametrize("name", list(RUNS))
def test_training_uses_a_unet2dmodel_sized_for_the_data(runs, name):
    checkpoint = load_checkpoint(runs[name])
    config = checkpoint["config"]
    assert config.model == "diffusers" and config.mode == RUNS[name]["mode"]
    unet = load_nets(checkpoint, True, torch.device("cpu")).model.unet
    assert isinstance(unet, diffusers.UNet2DModel)
    channels = config.channels * (2 if config.mode == "gradient" else 1)
    assert (unet.config.sample_size, unet.config.in_channels, unet.config.out_channels) == (SIZE, channels, channels)
    assert tuple(unet.config.block_out_channels) == (8, 16) and unet.config.layers_per_block == 1
    assert all(width % unet.config.norm_num_groups == 0 for width in unet.config.block_out_channels)
    assert set(checkpoint["ema"]) == set(checkpoint["nets"]) and all(k.startswith(UNET_PREFIX) for k in checkpoint["ema"])


@pytest.mark.parametrize("name", list(RUNS))
def test_sample_rebuilds_the_unet2dmodel(runs, name):
    images = sample(runs[name], num_samples=2, steps=3, device="cpu")
    assert images.shape == (2, RUNS[name]["channels"], SIZE, SIZE) and bool(images.isfinite().all())


@pytest.mark.parametrize("name", list(RUNS))
def test_exported_pipeline_loads_and_samples(runs, exported, name):
    pipe = GradientDomainPipeline.from_pretrained(exported[name])
    pipe.set_progress_bar_config(disable=True)
    config = load_checkpoint(runs[name])["config"]
    assert type(pipe.scheduler) is FusedDDPMScheduler and pipe.scheduler.config.domain == config.mode
    assert pipe.config.reconstruction == "dct"

    def draw(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return pipe(batch_size=2, generator=generator, num_inference_steps=4, output_type="pt").images

    images = draw(0)
    assert images.shape == (2, config.channels, SIZE, SIZE) and bool(images.isfinite().all())
    assert torch.equal(images, draw(0)) and not torch.equal(images, draw(1))


@pytest.mark.parametrize("name", list(RUNS))
def test_exported_weights_are_the_checkpoints_ema(runs, exported, name):
    checkpoint = load_checkpoint(runs[name])
    ema, raw = _unet_weights(checkpoint["ema"]), _unet_weights(checkpoint["nets"])
    saved = diffusers.UNet2DModel.from_pretrained(exported[name], subfolder="unet").state_dict()
    assert set(saved) == set(ema)
    assert all(torch.equal(saved[k], ema[k]) for k in ema)
    assert not all(torch.equal(ema[k], raw[k]) for k in ema)  # 3 steps of EMA warm-up moved away from the raw


def test_no_ema_exports_the_raw_weights(runs, tmp_path):
    checkpoint = load_checkpoint(runs["gradient"])
    pipe = export(checkpoint, tmp_path, use_ema=False)
    raw = _unet_weights(checkpoint["nets"])
    assert all(torch.equal(value, raw[name]) for name, value in pipe.unet.state_dict().items())


def test_exported_unet_predicts_what_the_trainer_predicts(runs, exported):
    """The pipeline's U-Net on a flattened gradient field is the trainer's eps prediction."""
    checkpoint = load_checkpoint(runs["gradient"])
    nets = load_nets(checkpoint, True, torch.device("cpu"))
    unet = diffusers.UNet2DModel.from_pretrained(exported["gradient"], subfolder="unet").eval()
    field = torch.randn(3, 1, 2, SIZE, SIZE)
    t = torch.tensor([0, 17, 49])
    with torch.no_grad():
        (eps,) = nets.predict(field, t, "fp32")
        torch.testing.assert_close(unet(as_channels(field), t).sample, as_channels(eps), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("schedule, named", [("linear", None), ("cosine", "squaredcos_cap_v2")])
@pytest.mark.parametrize("name, cls", [("ddpm", FusedDDPMScheduler), ("ddim", FusedDDIMScheduler)])
def test_exported_scheduler_has_the_training_betas(schedule, named, name, cls):
    config = tiny(mode="laplacian", schedule=schedule, model="diffusers")
    betas = make_schedule(config).betas
    scheduler = fused_scheduler(name, config, make_schedule(config))
    assert type(scheduler) is cls and scheduler.config.domain == "laplacian"
    assert scheduler.config.num_train_timesteps == config.timesteps
    assert torch.equal(scheduler.betas, betas)
    assert (scheduler.config.trained_betas is None) == (named is not None)
    if named:
        assert scheduler.config.beta_schedule == named


def test_cli_exports_a_ddim_multigrid_pipeline(runs, tmp_path, capsys):
    assert main(["export", "--checkpoint", runs["gradient"], "--out", str(tmp_path), "--scheduler", "ddim",
                 "--reconstruction", "multigrid"]) == 0
    assert "GradientDomainPipeline" in capsys.readouterr().out
    pipe = GradientDomainPipeline.from_pretrained(tmp_path)
    assert type(pipe.scheduler) is FusedDDIMScheduler and pipe.config.reconstruction == "multigrid"
    assert pipe.config.image_mean == load_checkpoint(runs["gradient"])["image_mean"]


@pytest.mark.parametrize("overrides, message", [
    (dict(model="unet"), "holds the built-in U-Net (model 'unet'), which cannot become a diffusers UNet2DModel; "
                         "train with --model diffusers"),
    (dict(model="diffusers", process="attenuation"), "trained with process 'attenuation'"),
])
def test_export_refuses_what_the_pipeline_cannot_express(tmp_path, capsys, overrides, message):
    checkpoint = train(tiny(steps=1, mode="gradient", out=str(tmp_path / "run"), **overrides))["checkpoint"]
    with pytest.raises(ValueError, match="gddm.export: ") as error:
        export(checkpoint, tmp_path / "pipeline")
    assert message in str(error.value) and not (tmp_path / "pipeline").exists()
    assert main(["export", "--checkpoint", checkpoint, "--out", str(tmp_path / "pipeline")]) == 2
    assert message in _one_error_line(capsys)


def test_resume_with_another_model_is_refused(runs, tmp_path):
    with pytest.raises(ValueError, match="model: 'diffusers' != 'unet'"):
        train(tiny(steps=4, mode="gradient", resume=runs["gradient"], out=str(tmp_path)))


def test_a_checkpoint_without_a_model_holds_the_builtin_unet(runs, tmp_path):
    """Checkpoints written before `model` existed load as the built-in UNet."""
    state = torch.load(runs["gradient"], weights_only=True)
    assert state["config"]["model"] == "diffusers"
    del state["config"]["model"]
    torch.save(state, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["config"].model == "unet"


@pytest.mark.parametrize("command", ["train", "export"])
def test_without_diffusers_the_error_says_how_to_install_it(runs, tmp_path, monkeypatch, capsys, command):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now raises ImportError
    argv = {"train": ["train", *SHAPE, "--model", "diffusers", "--steps", "1", "--out", str(tmp_path)],
            "export": ["export", "--checkpoint", runs["gradient"], "--out", str(tmp_path / "pipeline")]}[command]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert line.startswith("error: gddm: ") and "needs the diffusers library" in line and INSTALL in line
    with pytest.raises(DiffusersMissingError, match="install it with"):
        train(tiny(steps=1, model="diffusers"))


# Runs in a fresh interpreter with diffusers unimportable: the application imports, trains the
# built-in UNet, and refuses --model diffusers with the install hint.
WITHOUT_DIFFUSERS = """
import sys
sys.modules["diffusers"] = None
from gddm_kernels.app.cli import main
shape = sys.argv[2:]
assert main(["train", *shape, "--steps", "1", "--out", sys.argv[1]]) == 0
assert main(["train", *shape, "--model", "diffusers", "--steps", "1", "--out", sys.argv[1]]) == 2
print("loaded:", sorted(m for m in sys.modules if m.startswith("diffusers") and sys.modules[m] is not None))
"""


def test_the_application_works_without_diffusers(tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_DIFFUSERS, str(tmp_path), *SHAPE], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "loaded: []"
    assert INSTALL in result.stderr
