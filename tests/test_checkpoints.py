"""Loading checkpoints safely: nothing in a checkpoint file runs (weights_only loading), and
every file that is not a checkpoint of this version gets one clear CheckpointError."""

import builtins
import pickle

import pytest
import torch

from gddm_kernels.app.checkpoints import CHECKPOINT_KEYS, CheckpointError, load_checkpoint
from gddm_kernels.app.config import TrainConfig
from gddm_kernels.app.loop import train
from gddm_kernels.app.sample import sample

TINY = dict(dataset="digits", size=8, batch_size=4, base_channels=8, channel_mults=(1, 2), timesteps=20,
            progress=False, device="cpu")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    return train(TrainConfig(**TINY, mode="laplacian", steps=1, out=str(tmp_path_factory.mktemp("run"))))["checkpoint"]


def _saved(path) -> dict:
    return torch.load(path, weights_only=True)


class _CreatesFile:
    """Unpickling this object opens (creates) `marker`: stands for any code a crafted file runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_crafted_checkpoint_runs_nothing(checkpoint, tmp_path, writer):
    marker = tmp_path / "marker"
    state = _saved(checkpoint)
    state["config"] = _CreatesFile(marker)
    path = tmp_path / "crafted.pt"
    if writer == "torch.save":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state))
    with pytest.raises(CheckpointError, match="not a gddm_kernels checkpoint, or truncated or corrupt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        sample(path, num_samples=1, steps=1, device="cpu")
    with pytest.raises(CheckpointError):
        train(TrainConfig(**TINY, mode="laplacian", steps=2, resume=str(path)))
    assert not marker.exists()
    # the file is a real attack: a full unpickler runs it
    torch.load(path, weights_only=False) if writer == "torch.save" else pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "text"])
def test_damaged_files_are_refused(checkpoint, tmp_path, damage):
    data = open(checkpoint, "rb").read()
    path = tmp_path / "damaged.pt"
    path.write_bytes({"truncated": data[: len(data) // 2], "random": torch.randint(0, 256, (4096,),
                      generator=torch.Generator().manual_seed(0), dtype=torch.uint8).numpy().tobytes(),
                      "empty": b"", "text": b"checkpoint\n"}[damage])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("content, message", [
    ({"weights": torch.zeros(3)}, "is not a gddm_kernels training checkpoint"),
    ([1, 2, 3], "is not a gddm_kernels training checkpoint"),
    ({"format": 2}, "format 2, written by another version"),
    ({"format": 1, "config": {}}, r"lacks \['step', 'nets', 'ema', 'optimizer', 'image_mean', 'rng'\]"),
])
def test_foreign_files_are_refused(tmp_path, content, message):
    path = tmp_path / "foreign.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(new_option=1), r"another version of gddm_kernels: unknown config keys \['new_option'\]$"),
    (lambda c: c.pop("mode"), r"another version of gddm_kernels: missing config keys \['mode'\]$"),
    (lambda c: (c.pop("size"), c.pop("lr"), c.update(zeta=0, alpha=1)),
     r"unknown config keys \['alpha', 'zeta'\] and missing config keys \['size', 'lr'\]$"),
    (lambda c: c.update(mode="pixels"), "holds an invalid config .*unknown mode 'pixels'"),
])
def test_a_config_of_another_version_names_its_keys(checkpoint, tmp_path, edit, message):
    state = _saved(checkpoint)
    edit(state["config"])
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "other.pt")


@pytest.mark.parametrize("key, value", [("step", -1), ("step", "3"), ("nets", {"w": 1.0}), ("image_mean", None),
                                        ("rng", []), ("rng", [{"data": torch.zeros(2)}])])
def test_corrupt_entries_are_refused(checkpoint, tmp_path, key, value):
    state = _saved(checkpoint)
    state[key] = value
    torch.save(state, tmp_path / "corrupt.pt")
    with pytest.raises(CheckpointError, match=f"its '{key}' entry is not what gddm_kernels writes"):
        load_checkpoint(tmp_path / "corrupt.pt")


def test_weights_that_do_not_fit_the_config_are_refused(checkpoint, tmp_path):
    state = _saved(checkpoint)
    name = next(iter(state["ema"]))
    state["ema"][name] = torch.zeros(1)
    state["nets"][name] = torch.zeros(1)
    torch.save(state, tmp_path / "misfit.pt")
    with pytest.raises(CheckpointError, match=f"EMA weights in the checkpoint do not fit .*{name}"):
        sample(tmp_path / "misfit.pt", num_samples=1, steps=1, device="cpu")
    with pytest.raises(CheckpointError, match="the weights in checkpoint .* do not fit"):
        train(TrainConfig(**TINY, mode="laplacian", steps=2, resume=str(tmp_path / "misfit.pt")))


def test_a_checkpoint_is_plain_data(checkpoint):
    """What the trainer writes loads under weights_only and has exactly the documented parts."""
    state = _saved(checkpoint)
    assert set(state) == set(CHECKPOINT_KEYS)
    assert all(isinstance(value, (str, int, float, bool, type(None), tuple)) for value in state["config"].values())
    assert load_checkpoint(checkpoint)["config"] == TrainConfig(**state["config"])
