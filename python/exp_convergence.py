"""Training convergence of DDPM (image domain), GDDM (gradient domain) and LDDM (Laplacian
domain) on the embedded digits: the same optimiser steps, seed, U-Net and batch for the three,
sample quality measured along the way (testing Gong 2023, "Gradient Domain Diffusion Models
for Image Synthesis", arXiv 2309.01875: "gradient domain diffusion models converge faster").

    python python/exp_convergence.py --out docs/figures    # writes convergence.png, convergence.json
    nice -n 19 python python/exp_convergence.py --threads 1   # the committed run (~25 min, 2 busy cores)

Training. One model per mode ("image", "gradient", "laplacian") with gddm_kernels.app.loop.train at
TrainConfig's defaults (the demo's settings: scikit-learn's digits upsampled to 16x16 in
[-1, 1], batch 64, AdamW lr 1e-3, U-Net base 32 x (1, 2, 2), linear schedule, T = 1000, EMA
0.995, fp32) and the same seed. Each model trains in segments ending at the checkpoints
s = E, 2E, ..., --steps (E = --eval-every); a segment resumes the previous one's checkpoint with
the trainer's exact resume (the same weights and losses as one straight run). The segments of
the modes take turns, so that a change of load on a shared machine falls on every mode alike.
Wall-clock per mode: the trainer's loop time summed over the segments ("train_seconds") and the
time of the whole train() calls, with each segment's loading, checkpointing and data replay
("train_wall_seconds").

Loss. The trainer's per-step loss, mean (eps_hat - eps)^2 over the batch with eps ~ N(0, I) in
every domain (the field's noise is k eps, the network predicts eps), so the three curves share
their units; a lower loss in one domain does not by itself mean better images. Stored as means
over blocks of LOSS_BLOCK steps; "loss" at a checkpoint is the mean over the LOSS_WINDOW steps
before it.

Sample quality at each checkpoint. N = --num-samples images x (N, 256) from the EMA weights:
DDIM (eta = 0) with --sample-steps steps, gradient and Laplacian fields reconstructed by the DCT
Poisson solve (mean pixel = the dataset's), the same sampler seed at every checkpoint. The
judge needs no download: scikit-learn's LogisticRegression (lbfgs, C = 1, `digit_reference`)
fitted once per run on the flattened 16x16 pixels in [-1, 1] of a stratified
CLASSIFIER_TRAIN_FRACTION of the 1797 digits; the other digits, y (M, 256), are held out
(the classifier's accuracy on them is reported). With p(c | x) the classifier's softmax:

    confidence    (1/N) sum_i max_c p(c | x_i)
    entropy_bits  H = -sum_c h_c log2 h_c,  h_c = #{i : argmax_c' p(c' | x_i) = c} / N,
                  in [0, log2 10 = 3.32]: 0 if every sample is one digit, 3.32 if all ten
                  digits are drawn equally often
    mmd2          MMD^2_u(x, y), the unbiased kernel two-sample statistic (Gretton et al. 2012,
                  eq. 3) of the samples against the held-out digits, RBF kernel
                  k(a, b) = exp(-|a - b|^2 / (2 sigma^2)), sigma^2 the median of |y_i - y_j|^2
                  over the held-out pairs i < j (the median heuristic, fixed for the run)

References from the held-out digits themselves: their confidence and entropy (what a perfect
generator would score), and the noise floor of mmd2: MMD^2_u between two disjoint random
halves of the held-out digits, mean and standard deviation over FLOOR_SPLITS splits (expected
value 0; the spread is what finite samples alone give).

Result of the committed run (1500 steps, 256 samples per checkpoint; see convergence.json).
The image domain converges fastest in sample quality: DDPM's mmd2 reaches the noise floor by
step 1000, while GDDM and LDDM are still about 4-5 floor standard deviations above it at step
1500 (about where DDPM was between steps 500 and 750), and DDPM's classifier confidence ends
highest. The eps loss is 1.7-2.6x lower in the sparse domains throughout, which does not carry
over to the images (several of the reconstructed gradient-domain samples are speckled with
pixel noise). Time per step is the same in the three modes (the
U-Net dominates). So on this set-up the numbers do not support faster training convergence of
the gradient or Laplacian domain.

Caveats. The diffusion models train on all 1797 digits, the held-out ones included (the
trainer's dataset); only the classifier never sees them. One seed and one small dataset; the
wall-clock times come from a shared CPU (see "environment": niceness, and the load average
at the start and at the end of the run).
"""

import argparse
import dataclasses
import functools
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from torch import Tensor

import _figures as fig
from gddm_kernels.app.config import TrainConfig
from gddm_kernels.app.data import digits_with_labels
from gddm_kernels.app.images import make_grid
from gddm_kernels.app.loop import train
from gddm_kernels.app.sample import sample

MODEL_NAMES = {"image": "DDPM", "gradient": "GDDM", "laplacian": "LDDM"}
STEPS = 1500
EVAL_EVERY = 250
NUM_SAMPLES = 256
SAMPLER = "ddim"
SAMPLE_STEPS = 50
RECONSTRUCTION = "dct"
SEED = 0
NUM_CLASSES = 10
MAX_ENTROPY_BITS = math.log2(NUM_CLASSES)
CLASSIFIER_TRAIN_FRACTION = 0.7  # the rest of the digits is held out
CLASSIFIER_MAX_ITER = 2000
FLOOR_SPLITS = 20  # random halvings of the held-out digits for the MMD noise floor
FLOOR_SIGMAS = 2.0  # the figure shades the floor's mean +- this many standard deviations
LOSS_BLOCK = 10  # the JSON's loss curve: means over blocks of this many steps
LOSS_WINDOW = 100  # the loss at a checkpoint: mean over this many steps before it
SHOWN_SAMPLES = 64  # final samples per mode in the figure (8 x 8)
GRID_SCALE = 2
# TrainConfig fields that only steer one call (not the model or the data), left out of the JSON.
RUN_FIELDS = ("mode", "steps", "out", "resume", "save_every", "log_every", "progress")


# ---- the offline judge and the quality measures ------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DigitReference:
    """The offline judge of samples: `classifier` fitted on `train_size` digits, the held-out
    digits `held_out` (M, P) float64 pixels in [-1, 1] with labels (M,), the classifier's
    held-out `accuracy` and the RBF bandwidth `sigma` of mmd2 (median heuristic on held_out)."""

    classifier: LogisticRegression
    held_out: np.ndarray
    held_out_labels: np.ndarray
    train_size: int
    accuracy: float
    sigma: float


def flatten(images: Tensor) -> np.ndarray:
    """Images (N, C, H, W) -> float64 (N, C * H * W) on the CPU."""
    return images.detach().flatten(1).double().cpu().numpy()


@functools.cache
def digit_reference(size: int, seed: int = SEED) -> DigitReference:
    """The classifier and held-out digits of the module notes (fitted once per size and seed,
    kept for the run): a stratified split of gddm_kernels.app.data.digits_with_labels(size)."""
    images, labels = digits_with_labels(size)
    x_train, x_held, y_train, y_held = train_test_split(
        flatten(images), labels.numpy(), train_size=CLASSIFIER_TRAIN_FRACTION, stratify=labels.numpy(),
        random_state=seed)
    classifier = LogisticRegression(max_iter=CLASSIFIER_MAX_ITER).fit(x_train, y_train)
    return DigitReference(classifier=classifier, held_out=x_held, held_out_labels=y_held, train_size=len(x_train),
                          accuracy=float(classifier.score(x_held, y_held)), sigma=median_bandwidth(x_held))


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a_i - b_j|^2 for rows a (n, P) and b (m, P): (n, m), clamped at 0 against rounding."""
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def median_bandwidth(y: np.ndarray) -> float:
    """The median heuristic sigma = sqrt(median_{i < j} |y_i - y_j|^2) of rows y (M, P)."""
    upper = np.triu_indices(len(y), k=1)
    return float(np.sqrt(np.median(squared_distances(y, y)[upper])))


def rbf_kernel(a: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    """k(a_i, b_j) = exp(-|a_i - b_j|^2 / (2 sigma^2)): (n, m)."""
    return np.exp(-squared_distances(a, b) / (2.0 * sigma**2))


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """MMD^2_u(x, y) of rows x (n, P), y (m, P), n, m >= 2, with the RBF kernel of width sigma:

        1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
        - 2/(n m) sum_{i, j} k(x_i, y_j)

    (Gretton et al. 2012, eq. 3): unbiased, so its expectation is 0 when x and y come from one
    distribution (a single value may be slightly negative)."""
    n, m = len(x), len(y)
    k_xx, k_yy = rbf_kernel(x, x, sigma), rbf_kernel(y, y, sigma)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * rbf_kernel(x, y, sigma).mean())


def mmd2_noise_floor(y: np.ndarray, sigma: float, splits: int = FLOOR_SPLITS, seed: int = SEED) -> dict[str, float]:
    """Mean and standard deviation of MMD^2_u between the two halves of `splits` random
    permutations of the rows of y (M, P): the value sampling alone gives."""
    rng = np.random.default_rng(seed)
    half = len(y) // 2
    values = []
    for _ in range(splits):
        order = rng.permutation(len(y))
        values.append(mmd2_unbiased(y[order[:half]], y[order[half:2 * half]], sigma))
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "splits": splits, "half_size": half}


def mean_confidence(probabilities: np.ndarray) -> float:
    """(1/N) sum_i max_c p_ic of class probabilities (N, classes)."""
    return float(probabilities.max(axis=1).mean())


def class_histogram(predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """h_c = #{i : prediction_i = c} / N for c = 0 .. num_classes - 1: (num_classes,)."""
    return np.bincount(predictions, minlength=num_classes) / len(predictions)


def entropy_bits(histogram: np.ndarray) -> float:
    """H = -sum_c h_c log2 h_c (0 log 0 = 0) of a histogram that sums to 1, in bits."""
    nonzero = histogram[histogram > 0]
    return float(-(nonzero * np.log2(nonzero)).sum())


def sample_quality(x: np.ndarray, reference: DigitReference) -> dict:
    """confidence, entropy_bits and mmd2 (module notes) of images x (N, P) in [-1, 1] against
    the reference, with the predicted-class histogram h (N * h_c images classified as c)."""
    probabilities = reference.classifier.predict_proba(x)
    histogram = class_histogram(probabilities.argmax(axis=1))
    return {"confidence": mean_confidence(probabilities), "entropy_bits": entropy_bits(histogram),
            "mmd2": mmd2_unbiased(x, reference.held_out, reference.sigma), "class_histogram": histogram.tolist()}


def reference_summary(reference: DigitReference, seed: int = SEED) -> dict:
    """The judge's numbers for the JSON: sizes, held-out accuracy, sigma, and the held-out
    digits' own confidence, entropy and mmd2 noise floor (the targets of the samples)."""
    probabilities = reference.classifier.predict_proba(reference.held_out)
    return {"classifier": f"sklearn LogisticRegression (lbfgs, C = 1, max_iter {CLASSIFIER_MAX_ITER}) on "
                          "flattened pixels in [-1, 1]",
            "train_size": reference.train_size, "held_out_size": len(reference.held_out),
            "held_out_accuracy": reference.accuracy, "mmd_sigma": reference.sigma,
            "held_out_confidence": mean_confidence(probabilities),
            "held_out_entropy_bits": entropy_bits(class_histogram(probabilities.argmax(axis=1))),
            "mmd2_floor": mmd2_noise_floor(reference.held_out, reference.sigma, seed=seed)}


# ---- training in segments and evaluation --------------------------------------------------------

def checkpoint_steps(steps: int, every: int) -> list[int]:
    """The evaluation steps every, 2 every, ..., and `steps` itself (always last)."""
    if steps < 1 or every < 1:
        raise ValueError(f"exp_convergence: steps and eval_every must be >= 1, got {steps} and {every}")
    return [*range(every, steps, every), steps]


def train_segment(mode: str, until: int, folder: Path, previous: str | None, overrides: dict) -> tuple[dict, float]:
    """Trains `mode` up to step `until` (resuming `previous`, a checkpoint path, or from
    scratch when None) into folder/checkpoint.pt; returns train()'s result and the call's
    wall-clock seconds."""
    config = TrainConfig(mode=mode, steps=until, out=str(folder), resume=previous, progress=False, **overrides)
    began = time.perf_counter()
    result = train(config)
    return result, time.perf_counter() - began


def evaluate(checkpoint: str, num_samples: int, sample_steps: int, seed: int, device: str,
             reference: DigitReference) -> tuple[dict, Tensor]:
    """sample_quality of `num_samples` DDIM samples of a checkpoint (module notes), and the
    images (N, 1, S, S) in [-1, 1]."""
    images = sample(checkpoint, num_samples=num_samples, steps=sample_steps, sampler=SAMPLER,
                    reconstruction=RECONSTRUCTION, seed=seed, device=device).cpu()
    return sample_quality(flatten(images), reference), images


def block_means(losses: list[float], block: int = LOSS_BLOCK) -> dict[str, list]:
    """The per-step losses as means over consecutive blocks of `block` steps (the last block
    may be shorter); "step" is the last step (1-based) of each block."""
    values = np.asarray(losses)
    starts = range(0, len(values), block)
    return {"step": [min(start + block, len(values)) for start in starts],
            "mean": [float(values[start:start + block].mean()) for start in starts]}


def run(modes: tuple[str, ...], steps: int, eval_every: int, num_samples: int, sample_steps: int,
        seed: int, device: str, work_dir: Path, overrides: dict, log: bool = True) -> tuple[dict, dict[str, Tensor]]:
    """Trains every mode in turns of one segment up to each checkpoint step, evaluating after
    each segment. Returns the JSON payload and each mode's first SHOWN_SAMPLES final samples."""
    reference = digit_reference(TrainConfig(**overrides).size, seed)
    environment = fig.environment()
    checkpoints = checkpoint_steps(steps, eval_every)
    records = {mode: {"losses": [], "train_seconds": 0.0, "train_wall_seconds": 0.0, "eval_seconds": 0.0,
                      "checkpoints": []} for mode in modes}
    paths: dict[str, str | None] = dict.fromkeys(modes)
    shown: dict[str, Tensor] = {}
    for until in checkpoints:
        for mode in modes:
            record = records[mode]
            result, wall = train_segment(mode, until, work_dir / mode, paths[mode], overrides)
            paths[mode] = result["checkpoint"]
            record["losses"].extend(result["losses"])
            record["train_seconds"] += result["seconds"]
            record["train_wall_seconds"] += wall
            began = time.perf_counter()
            quality, images = evaluate(paths[mode], num_samples, sample_steps, seed, device, reference)
            record["eval_seconds"] += time.perf_counter() - began
            entry = {"step": until, "loss": float(np.mean(record["losses"][-LOSS_WINDOW:])), **quality}
            record["checkpoints"].append(entry)
            shown[mode] = images[:SHOWN_SAMPLES]
            if log:
                print(f"{mode:>9} step {until:>5}: loss {entry['loss']:.4f}, confidence {entry['confidence']:.3f}, "
                      f"entropy {entry['entropy_bits']:.2f} bits, mmd2 {entry['mmd2']:.4f} "
                      f"(train {record['train_seconds']:.0f} s, eval {record['eval_seconds']:.0f} s)", flush=True)
    results = {mode: {"train_seconds": record["train_seconds"],
                      "seconds_per_step": record["train_seconds"] / steps,
                      "train_wall_seconds": record["train_wall_seconds"],
                      "eval_seconds": record["eval_seconds"],
                      "checkpoints": record["checkpoints"],
                      "loss_curve": block_means(record["losses"])} for mode, record in records.items()}
    train_config = {name: value for name, value in dataclasses.asdict(TrainConfig(**overrides)).items()
                    if name not in RUN_FIELDS}
    payload = {
        "description": "Training convergence of DDPM (image), GDDM (gradient) and LDDM (Laplacian) diffusion on "
                       "16x16 digits with the same steps, seed, U-Net and batch: per-step eps-prediction loss and, "
                       "at each checkpoint, the quality of DDIM samples judged offline (classifier confidence, "
                       "entropy of the predicted classes in bits, unbiased RBF MMD^2 to held-out digits). See "
                       "python/exp_convergence.py for the definitions.",
        "config": {"modes": list(modes), "steps": steps, "checkpoints": checkpoints, "train": train_config,
                   "num_samples": num_samples, "sampler": f"{SAMPLER} (eta 0), EMA weights",
                   "sample_steps": sample_steps, "reconstruction": RECONSTRUCTION, "sample_seed": seed,
                   "loss_block": LOSS_BLOCK, "loss_window": LOSS_WINDOW},
        "environment": {**environment, "load_average_end": list(os.getloadavg())},
        "reference": reference_summary(reference, seed),
        "modes": results,
    }
    return payload, shown


# ---- figure and command line --------------------------------------------------------------------

def plot(result: dict, shown: dict[str, Tensor], path: Path) -> None:
    """Top: loss (block means, log y), mmd2 (symlog y, the floor shaded), confidence and entropy
    against the optimiser step, a line per mode, held-out references dashed. Bottom: the final
    samples of each mode and the training time per mode."""
    plt = fig.matplotlib_pyplot()
    figure, grid = plt.subplots(2, 4, figsize=(19, 9.5), layout="constrained")
    reference, modes = result["reference"], result["modes"]
    loss_axes, mmd_axes, confidence_axes, entropy_axes = grid[0]
    for mode, data in modes.items():
        style = dict(color=fig.DOMAIN_COLORS[mode], label=f"{mode} ({MODEL_NAMES[mode]})")
        loss_axes.plot(data["loss_curve"]["step"], data["loss_curve"]["mean"], linewidth=1.2, **style)
        steps = [entry["step"] for entry in data["checkpoints"]]
        for axes, key in ((mmd_axes, "mmd2"), (confidence_axes, "confidence"), (entropy_axes, "entropy_bits")):
            axes.plot(steps, [entry[key] for entry in data["checkpoints"]], marker="o", **style)
    floor = reference["mmd2_floor"]
    low, high = floor["mean"] - FLOOR_SIGMAS * floor["std"], floor["mean"] + FLOOR_SIGMAS * floor["std"]
    mmd_axes.axhspan(low, high, color="grey", alpha=0.3,
                     label=f"held-out halves: {floor['mean']:.1e} ± {FLOOR_SIGMAS:g} sd")
    mmd_axes.set_yscale("symlog", linthresh=max(floor["std"], 1e-6))
    confidence_axes.axhline(reference["held_out_confidence"], color="black", linestyle="--",
                            label=f"held-out digits ({reference['held_out_confidence']:.3f})")
    confidence_axes.set_ylim(0, 1.02)
    entropy_axes.axhline(reference["held_out_entropy_bits"], color="black", linestyle="--",
                         label=f"held-out digits ({reference['held_out_entropy_bits']:.3f})")
    entropy_axes.axhline(MAX_ENTROPY_BITS, color="black", linestyle=":", label="log2 10")
    entropy_axes.set_ylim(0, 1.05 * MAX_ENTROPY_BITS)
    loss_axes.set_yscale("log")
    titles = {loss_axes: f"training loss mean (eps_hat - eps)², {LOSS_BLOCK}-step means",
              mmd_axes: "MMD²_u(samples, held-out digits), RBF, median σ",
              confidence_axes: f"classifier confidence (held-out acc. {reference['held_out_accuracy']:.3f})",
              entropy_axes: "entropy of the predicted classes [bits]"}
    for axes, title in titles.items():
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("optimiser step")
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=8)
    for axes in grid[1]:
        axes.set_axis_off()
    for axes, (mode, images) in zip(grid[1], shown.items()):
        final = modes[mode]["checkpoints"][-1]
        axes.imshow(make_grid(images, nrow=int(math.sqrt(SHOWN_SAMPLES)), scale=GRID_SCALE)[..., 0].numpy(),
                    cmap="gray", vmin=0, vmax=255)
        axes.set_title(f"{mode} ({MODEL_NAMES[mode]}), step {final['step']}: conf. {final['confidence']:.2f}, "
                       f"H {final['entropy_bits']:.2f} bits, MMD² {final['mmd2']:.3g}", fontsize=9)
    time_axes = grid[1][-1]
    time_axes.set_axis_on()
    names = list(modes)
    seconds = [modes[mode]["train_seconds"] for mode in names]
    bars = time_axes.barh(names, seconds, color=[fig.DOMAIN_COLORS[mode] for mode in names])
    time_axes.bar_label(bars, [f"{modes[mode]['seconds_per_step'] * 1e3:.0f} ms/step" for mode in names],
                        fontsize=8, padding=3)
    time_axes.set_xlim(0, 1.3 * max(seconds))
    time_axes.invert_yaxis()
    time_axes.set_xlabel("training loop wall-clock [s]")
    environment = result["environment"]
    time_axes.set_title(f"training time, {environment['cpu_count']} CPU cores, nice {environment['niceness']}",
                        fontsize=10)
    config = result["config"]
    figure.suptitle(f"Training convergence on 16x16 digits: DDPM vs GDDM vs LDDM, {config['steps']} steps, batch "
                    f"{config['train']['batch_size']}, seed {config['train']['seed']}, same U-Net; "
                    f"{config['num_samples']} DDIM-{config['sample_steps']} samples per checkpoint", fontsize=12)
    fig.save_figure(figure, path)


def print_table(result: dict) -> None:
    """The checkpoints of every mode as a text table, then the training times."""
    print(f"{'mode':>9} {'step':>5} {'loss':>7} {'conf.':>6} {'H bits':>6} {'mmd2':>9}")
    for mode, data in result["modes"].items():
        for entry in data["checkpoints"]:
            print(f"{mode:>9} {entry['step']:>5} {entry['loss']:>7.4f} {entry['confidence']:>6.3f} "
                  f"{entry['entropy_bits']:>6.3f} {entry['mmd2']:>9.5f}")
    reference = result["reference"]
    print(f"held-out digits: accuracy {reference['held_out_accuracy']:.3f}, confidence "
          f"{reference['held_out_confidence']:.3f}, entropy {reference['held_out_entropy_bits']:.3f} bits, mmd2 floor "
          f"{reference['mmd2_floor']['mean']:.5f} +- {reference['mmd2_floor']['std']:.5f}")
    for mode, data in result["modes"].items():
        print(f"{mode:>9}: train {data['train_seconds']:.0f} s ({data['seconds_per_step'] * 1e3:.0f} ms/step), "
              f"with segment overhead {data['train_wall_seconds']:.0f} s, evaluation {data['eval_seconds']:.0f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/figures"),
                        help="output folder for convergence.png and convergence.json (default: docs/figures)")
    parser.add_argument("--modes", nargs="+", choices=list(MODEL_NAMES), default=list(MODEL_NAMES),
                        help="diffusion domains to train (default: image gradient laplacian)")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"optimiser steps per mode (default: {STEPS})")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY,
                        help=f"evaluate every this many steps, and at the end (default: {EVAL_EVERY})")
    parser.add_argument("--num-samples", type=int, default=NUM_SAMPLES,
                        help=f"samples per evaluation (default: {NUM_SAMPLES})")
    parser.add_argument("--sample-steps", type=int, default=SAMPLE_STEPS,
                        help=f"DDIM steps per sample (default: {SAMPLE_STEPS})")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size,
                        help=f"training batch size (default: {TrainConfig.batch_size})")
    parser.add_argument("--seed", type=int, default=SEED,
                        help=f"seed of the training, the sampler and the classifier split (default: {SEED})")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; on a CPU busy with other jobs 1 thread "
                             "avoids oversubscription and trains faster)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="folder for the checkpoints (default: a temporary folder, deleted afterwards)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    modes = tuple(dict.fromkeys(args.modes))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    overrides = {"batch_size": args.batch_size, "seed": args.seed, "device": device}
    with tempfile.TemporaryDirectory() as temporary:
        work_dir = args.work_dir or Path(temporary)
        result, shown = run(modes, args.steps, args.eval_every, args.num_samples, args.sample_steps, args.seed,
                            device, work_dir, overrides)
    fig.write_json(args.out / "convergence.json", result)
    plot(result, shown, args.out / "convergence.png")
    print(f"wrote {args.out / 'convergence.json'} and {args.out / 'convergence.png'}")
    print_table(result)


if __name__ == "__main__":
    main()
