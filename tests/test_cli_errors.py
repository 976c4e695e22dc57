"""Every failure of `python -m gddm_kernels` is one clear line on stderr and a non-zero exit:
bad checkpoints, devices, seeds and learning rates; a run whose loss becomes non-finite stops
and keeps its last good checkpoint; runs sharing a folder never share a temporary file."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gddm_kernels.app import checkpoints, cli, loop
from gddm_kernels.app.checkpoints import load_checkpoint
from gddm_kernels.app.cli import main
from gddm_kernels.app.config import TrainConfig
from gddm_kernels.app.loop import NonFiniteLossError, train

SHAPE = ["--size", "8", "--batch-size", "4", "--base-channels", "8", "--channel-mults", "1", "2", "--timesteps", "20",
         "--no-progress", "--device", "cpu"]
TINY = dict(dataset="digits", size=8, batch_size=4, base_channels=8, channel_mults=(1, 2), timesteps=20,
            progress=False, device="cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """A good tiny checkpoint and bad files of every kind."""
    root = tmp_path_factory.mktemp("files")
    good = train(TrainConfig(**TINY, mode="laplacian", steps=1, out=str(root / "run")))["checkpoint"]
    data = Path(good).read_bytes()
    state = torch.load(good, weights_only=True)
    state["config"]["added_later"] = True
    del state["config"]["schedule"]
    torch.save(state, root / "other_version.pt")
    torch.save({"weights": torch.zeros(2)}, root / "foreign.pt")
    (root / "truncated.pt").write_bytes(data[: len(data) // 3])
    (root / "garbage.pt").write_bytes(bytes(range(256)) * 16)
    return {"good": good, **{name: str(root / f"{name}.pt") for name in ("other_version", "foreign", "truncated",
                                                                        "garbage")}}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


BAD_FILES = {"truncated": "truncated or corrupt", "garbage": "truncated or corrupt",
             "foreign": "is not a gddm_kernels training checkpoint",
             "other_version": r"another version of gddm_kernels: unknown config keys ['added_later'] and missing "
                              "config keys ['schedule']"}


@pytest.mark.parametrize("bad", list(BAD_FILES))
@pytest.mark.parametrize("use", ["sample", "poisson", "resume"])
def test_bad_checkpoints(files, capsys, tmp_path, bad, use):
    argv = {"sample": ["sample", "--checkpoint", files[bad], "--device", "cpu"],
            "poisson": ["sample", "--checkpoint", files["good"], "--poisson-checkpoint", files[bad],
                        "--reconstruction", "poisson_net", "--steps", "2", "--num-samples", "1", "--device", "cpu"],
            "resume": ["train", *SHAPE, "--steps", "2", "--resume", files[bad], "--out", str(tmp_path)]}[use]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert line.startswith("error: gddm: ") and BAD_FILES[bad] in line


@pytest.mark.parametrize("command", ["train", "sample"])
@pytest.mark.parametrize("device, message", [
    ("bogus", "unknown device 'bogus'; choose cpu, cuda or cuda:N"),
    ("meta", "unknown device 'meta'"),
    ("cuda", "device 'cuda' asked for, but CUDA is not available here"),
    ("cuda:3", "device 'cuda:3' asked for, but CUDA is not available here"),
])
def test_devices(files, capsys, monkeypatch, tmp_path, command, device, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = {"train": ["train", *SHAPE, "--steps", "1", "--out", str(tmp_path)],
            "sample": ["sample", "--checkpoint", files["good"]]}[command]
    assert main([*argv, "--device", device]) == 2
    assert message in _one_error_line(capsys)


@pytest.mark.parametrize("command", ["train", "sample"])
@pytest.mark.parametrize("seed", ["-1", str(10**23), str(2**63)])
def test_seeds_out_of_range(files, capsys, tmp_path, command, seed):
    argv = {"train": ["train", *SHAPE, "--steps", "1", "--out", str(tmp_path)],
            "sample": ["sample", "--checkpoint", files["good"], "--device", "cpu"]}[command]
    assert main([*argv, "--seed", seed]) == 2
    assert f"`seed` must be an integer in [0, 2**63 - 1], got {seed}" in _one_error_line(capsys)


@pytest.mark.parametrize("argv, message", [
    (["train", "--seed", "1e23"], "python -m gddm_kernels train: error: argument --seed: invalid int value: '1e23'"),
    (["sample", "--checkpoint", "x.pt", "--steps", "two"], "argument --steps: invalid int value: 'two'"),
    (["train", "--mode", "pixels"], "argument --mode: invalid choice: 'pixels'"),
    (["sample"], "the following arguments are required: --checkpoint"),
    (["bogus"], "invalid choice: 'bogus'"),
])
def test_argument_errors_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in _one_error_line(capsys)


@pytest.mark.parametrize("option, value, requirement", [
    ("--lr", "inf", "`lr` must be a finite number > 0, got inf"),
    ("--lr", "nan", "`lr` must be a finite number > 0, got nan"),
    ("--grad-clip", "inf", "`grad_clip` must be a finite number >= 0"),
    ("--lambda", "inf", "`sparsity_weight` must be a finite number >= 0"),
    ("--poisson-sigma-max", "inf", "`poisson_sigma_max` must be a finite number >= 0"),
])
def test_non_finite_hyperparameters_are_refused(capsys, tmp_path, option, value, requirement):
    assert main(["train", *SHAPE, "--steps", "1", option, value, "--out", str(tmp_path)]) == 2
    assert requirement in _one_error_line(capsys)
    assert not (tmp_path / "checkpoint.pt").exists()


def _assert_finite_checkpoint(path: Path, step: int) -> None:
    checkpoint = load_checkpoint(path)
    assert checkpoint["step"] == step
    assert all(t.isfinite().all() for part in ("nets", "ema") for t in checkpoint[part].values() if t.is_floating_point())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(capsys, tmp_path):
    """A learning rate of 1e20 (finite, so accepted) blows the weights up after one step."""
    assert main(["train", *SHAPE, "--steps", "6", "--save-every", "1", "--lr", "1e20", "--out", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert "the loss became non-finite at step 2; stopped (the last good checkpoint, step 1, stays in" in line
    _assert_finite_checkpoint(tmp_path / "checkpoint.pt", 1)


def _nan_loss_from_call(monkeypatch, call: int) -> None:
    """The objective's loss becomes NaN from its `call`-th call (1-based) on."""
    forward, calls = loop.Objective.forward, []

    def patched(self, x0, generator):
        calls.append(1)
        loss, parts = forward(self, x0, generator)
        return (loss * math.nan if len(calls) >= call else loss), parts

    monkeypatch.setattr(loop.Objective, "forward", patched)


def test_a_diverging_resume_leaves_the_checkpoint_it_resumed(monkeypatch, tmp_path):
    path = Path(train(TrainConfig(**TINY, steps=2, out=str(tmp_path)))["checkpoint"])
    before = path.read_bytes()
    _nan_loss_from_call(monkeypatch, 2)
    with pytest.raises(NonFiniteLossError, match=r"at step 4; stopped \('.*checkpoint.pt' is left as it was\)"):
        train(TrainConfig(**TINY, steps=6, resume=str(path), out=str(tmp_path)))
    assert path.read_bytes() == before


@pytest.mark.parametrize("log_every", [1, 4])
def test_a_non_finite_loss_stops_training(monkeypatch, tmp_path, log_every):
    """Found at the log interval or at the checkpoint, whichever comes first; never saved."""
    _nan_loss_from_call(monkeypatch, 3)
    config = TrainConfig(**TINY, steps=8, save_every=2, log_every=log_every, out=str(tmp_path))
    with pytest.raises(NonFiniteLossError, match=r"loss became non-finite at step 3; .*last good checkpoint, step 2"):
        train(config)
    _assert_finite_checkpoint(tmp_path / "checkpoint.pt", 2)


def test_non_finite_weights_are_never_saved(monkeypatch, tmp_path):
    """A finite loss whose update leaves NaN weights (here: the EMA's) stops before the save."""
    update, calls = loop.ema_update, []

    def poisoned(ema, nets, decay):
        update(ema, nets, decay)
        calls.append(1)
        if len(calls) == 3:
            next(ema.parameters()).data.fill_(math.nan)

    monkeypatch.setattr(loop, "ema_update", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"weights became non-finite after step 3; .*step 2"):
        train(TrainConfig(**TINY, steps=4, save_every=1, out=str(tmp_path)))
    _assert_finite_checkpoint(tmp_path / "checkpoint.pt", 2)


def test_without_out_the_error_says_no_checkpoint(monkeypatch):
    _nan_loss_from_call(monkeypatch, 1)
    with pytest.raises(NonFiniteLossError, match=r"at step 1; stopped \(no checkpoint is written"):
        train(TrainConfig(**TINY, steps=2, log_every=1))


def test_runs_sharing_a_folder_use_their_own_temporary_files(monkeypatch, tmp_path):
    """Each save writes its own temporary file (process id and a random suffix), then renames it."""
    replaced = []
    rename = os.replace
    monkeypatch.setattr(checkpoints.os, "replace", lambda src, dst: (replaced.append((Path(src), Path(dst))),
                                                                     rename(src, dst)))
    train(TrainConfig(**TINY, steps=2, save_every=1, out=str(tmp_path)))
    train(TrainConfig(**TINY, steps=1, out=str(tmp_path)))
    assert len(replaced) == 3 and len({src for src, _ in replaced}) == 3
    for src, dst in replaced:
        assert dst == tmp_path / "checkpoint.pt" and src.parent == tmp_path and f".{os.getpid()}." in src.name
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_failed_save_leaves_no_temporary_file(monkeypatch, tmp_path):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    assert main(["train", *SHAPE, "--steps", "1", "--out", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []


def test_an_unexpected_failure_is_one_line_too(monkeypatch, capsys):
    def broken(config):
        raise RuntimeError("something inside\n  went wrong")

    monkeypatch.setattr(cli, "train", broken)
    assert main(["train", *SHAPE, "--steps", "1"]) == 1
    assert _one_error_line(capsys) == "error: unexpected RuntimeError: something inside went wrong"


@pytest.mark.parametrize("argv, message", [
    (["sample", "--checkpoint", "{garbage}", "--device", "cpu"], "truncated or corrupt"),
    (["train", "--device", "bogus"], "unknown device 'bogus'"),
])
def test_the_command_prints_one_line_and_no_traceback(files, argv, message):
    argv = [arg.format(**files) for arg in argv]
    result = subprocess.run([sys.executable, "-m", "gddm_kernels", *argv], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], result.stderr
