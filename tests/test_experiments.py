"""Smoke tests of the paper-figure experiments (python/exp_sparsity.py, python/exp_jsd.py,
python/exp_convergence.py): their measures on known distributions, their main computations on
tiny inputs, and their command lines end to end into a temporary folder."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import exp_convergence  # noqa: E402
import exp_jsd  # noqa: E402
import exp_sparsity  # noqa: E402

GAUSSIAN_L1_L2 = math.sqrt(2 / math.pi)  # mean|v| / rms(v) of a centred Gaussian
TEST_BINS = 50  # few bins keep the sampling floor of small tests low


@pytest.fixture(scope="module")
def camera_crop() -> dict[str, np.ndarray]:
    from skimage import data

    return {"camera": data.camera()[None, 128:256, 128:256] / 255.0}


def test_sparsity_metrics_of_known_distributions() -> None:
    rng = np.random.default_rng(0)
    gaussian = exp_sparsity.sparsity_metrics(0.1 * rng.standard_normal(200_000))
    assert abs(gaussian["excess_kurtosis"]) < 0.1
    assert gaussian["l1_l2_ratio"] == pytest.approx(GAUSSIAN_L1_L2, abs=0.01)
    assert gaussian["frac_abs_below_0.05"] == pytest.approx(math.erf(0.5 / math.sqrt(2)), abs=0.01)
    laplace = exp_sparsity.sparsity_metrics(rng.laplace(size=200_000))
    assert laplace["excess_kurtosis"] == pytest.approx(3.0, abs=0.3)
    levels = (np.arange(256) + 0.5) * exp_sparsity.ENTROPY_BIN_WIDTH  # one value in each of 256 bins
    assert exp_sparsity.entropy_bits(levels) == pytest.approx(8.0)


def test_sparsity_run_laplacian_and_gradient_sparser_than_image(camera_crop: dict[str, np.ndarray]) -> None:
    result = exp_sparsity.run(camera_crop, progress=False)
    assert set(result) >= {"config", "mean_over_images", "per_image", "histogram"}
    mean = result["mean_over_images"]
    assert set(mean) == {"image", "gradient", "laplacian"}
    for domain in ("gradient", "laplacian"):
        assert mean[domain]["frac_abs_below_0.05"] > mean["image"]["frac_abs_below_0.05"]
        assert mean[domain]["frac_abs_below_0.01"] > mean["image"]["frac_abs_below_0.01"]
        assert mean[domain]["excess_kurtosis"] > mean["image"]["excess_kurtosis"]
        assert mean[domain]["l1_l2_ratio"] < mean["image"]["l1_l2_ratio"]
        assert mean[domain]["entropy_bits"] < mean["image"]["entropy_bits"]
    for metrics in mean.values():
        assert all(0.0 <= metrics[f"frac_abs_below_{t}"] <= 1.0 for t in exp_sparsity.THRESHOLDS)
        assert 0.0 < metrics["l1_l2_ratio"] <= 1.0
    width = 2.0 / exp_sparsity.HIST_BINS
    for dens in result["histogram"]["mean_density"].values():
        assert sum(dens) * width == pytest.approx(1.0)


def test_domain_values_leave_out_the_zero_boundary_of_the_gradient() -> None:
    x = np.random.default_rng(1).random((5, 7))
    values = exp_sparsity.domain_values(x)
    assert values["gradient"].size == 4 * 7 + 5 * 6
    assert values["laplacian"].size == values["image"].size == 35
    assert np.abs(values["gradient"]).max() <= 1.0


def test_jsd_bits_and_histogram() -> None:
    p = torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64)
    assert exp_jsd.jsd_bits(p, p) == 0.0
    assert exp_jsd.jsd_bits(p, p.flip(0)) == pytest.approx(1.0)
    edges = exp_jsd.inner_edges(1.0, bins=4)  # [-5, -2.5, 0, 2.5, 5] plus two tails
    counts = exp_jsd.histogram(torch.tensor([-9.0, -1.0, 1.0, 1.5, 20.0]), edges) * 5
    assert counts.tolist() == [1, 0, 1, 2, 0, 1]
    assert float(exp_jsd.gaussian_bin_masses(edges, 2.0).sum()) == pytest.approx(1.0)


def test_crossing_t_and_grid() -> None:
    assert exp_jsd.crossing_t([0, 10, 20, 30], [0.5, 0.01, 0.2, 0.001], 0.1) == 30
    assert exp_jsd.crossing_t([0, 10, 20], [0.5, 0.05, 0.01], 0.1) == 10
    assert exp_jsd.crossing_t([0, 10], [0.5, 0.2], 0.1) is None
    grid = exp_jsd.timestep_grid(exp_jsd.linear_schedule(), 12)
    assert grid[0] == 0 and grid[-1] == 999 and grid == sorted(set(grid))


def test_jsd_run_decreases_to_the_sampling_floor() -> None:
    x0 = exp_jsd.load_data("digits", 16, 64, torch.Generator().manual_seed(0))
    result = exp_jsd.run({"digits": x0}, num_t=8, bins=TEST_BINS, progress=False)
    data = result["datasets"]["digits"]
    assert result["timesteps"][0] == 0 and result["timesteps"][-1] == 999
    assert set(data["curves"]) == set(exp_jsd.MEASURES)
    for measure, by_model in data["curves"].items():
        for model, curves in by_model.items():
            for domain, curve in curves.items():
                floor = data["noise_floor"][measure][domain]
                assert 0.0 < floor < 2e-3
                assert all(0.0 <= value <= 1.0 for value in curve)
                assert curve[-1] < 4 * floor + 1e-3, (measure, model, domain)  # ~0 at t = 999
                assert max(curve[len(curve) // 2:]) < max(curve[: len(curve) // 2])  # falls overall
                if measure == "limit":  # (the shape of a smooth digit's Laplacian is drowned at t = 0 already)
                    assert curve[0] > 10 * curve[-1]
    limit = data["curves"]["limit"]["paper"]
    assert limit["gradient"][0] > limit["image"][0]  # a sparse field starts far from N(0, k^2)
    correlation = data["noise_neighbour_correlation"]
    assert abs(correlation["paper"]["gradient"]) < 0.05
    assert correlation["exact"]["gradient"] == pytest.approx(-0.25, abs=0.05)
    assert correlation["exact"]["laplacian"] == pytest.approx(-0.4, abs=0.05)


def test_command_lines_write_figures_and_json(tmp_path: Path) -> None:
    exp_sparsity.main(["--out", str(tmp_path), "--images", "camera", "--no-faces"])
    exp_jsd.main(["--out", str(tmp_path), "--datasets", "digits", "--size", "16", "--max-images", "16",
                  "--num-t", "4", "--bins", str(TEST_BINS)])
    for name in ("sparsity", "jsd"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
        assert json.loads((tmp_path / f"{name}.json").read_text())["description"]


def test_convergence_quality_measures_on_real_digits_and_noise() -> None:
    reference = exp_convergence.digit_reference(16)
    assert reference.accuracy > 0.8
    held_out = reference.held_out
    floor = exp_convergence.mmd2_noise_floor(held_out, reference.sigma, splits=5)
    assert abs(floor["mean"]) < 0.005 and 0.0 < floor["std"] < 0.005  # halves of one distribution: ~0
    noise = np.random.default_rng(0).uniform(-1.0, 1.0, held_out.shape)
    assert exp_convergence.mmd2_unbiased(noise, held_out, reference.sigma) > 0.1
    real = exp_convergence.sample_quality(held_out, reference)
    assert real["confidence"] > 0.9
    assert real["entropy_bits"] == pytest.approx(exp_convergence.MAX_ENTROPY_BITS, abs=0.01)  # stratified split
    assert sum(real["class_histogram"]) == pytest.approx(1.0)
    assert exp_convergence.entropy_bits(exp_convergence.class_histogram(np.zeros(7, dtype=int))) == 0.0
    assert exp_convergence.mean_confidence(np.array([[1.0, 0.0], [0.5, 0.5]])) == pytest.approx(0.75)


def test_convergence_checkpoints_and_loss_blocks() -> None:
    assert exp_convergence.checkpoint_steps(1500, 500) == [500, 1000, 1500]
    assert exp_convergence.checkpoint_steps(5, 2) == [2, 4, 5]
    assert exp_convergence.checkpoint_steps(3, 10) == [3]
    assert exp_convergence.block_means([1.0, 2.0, 3.0, 4.0, 5.0], 2) == {"step": [2, 4, 5], "mean": [1.5, 3.5, 5.0]}


def test_convergence_command_line_writes_figure_and_sane_json(tmp_path: Path) -> None:
    exp_convergence.main(["--out", str(tmp_path), "--steps", "2", "--eval-every", "1", "--num-samples", "8",
                          "--sample-steps", "2", "--batch-size", "8", "--device", "cpu"])
    assert (tmp_path / "convergence.png").stat().st_size > 0
    result = json.loads((tmp_path / "convergence.json").read_text())
    reference = result["reference"]
    assert reference["held_out_accuracy"] > 0.8
    floor = reference["mmd2_floor"]
    assert result["environment"]["date"] and result["config"]["checkpoints"] == [1, 2]
    assert set(result["modes"]) == {"image", "gradient", "laplacian"}
    for data in result["modes"].values():
        assert data["train_seconds"] > 0 and data["eval_seconds"] > 0
        assert data["loss_curve"]["step"] == [2] and math.isfinite(data["loss_curve"]["mean"][0])
        assert [entry["step"] for entry in data["checkpoints"]] == [1, 2]
        for entry in data["checkpoints"]:
            assert 0.0 < entry["confidence"] <= 1.0
            assert 0.0 <= entry["entropy_bits"] <= exp_convergence.MAX_ENTROPY_BITS + 1e-9
            assert sum(entry["class_histogram"]) == pytest.approx(1.0)
            assert entry["mmd2"] > floor["mean"] + 2 * floor["std"]  # an untrained model is far from digits
