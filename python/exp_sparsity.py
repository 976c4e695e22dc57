"""Sparsity of natural images in the image, gradient and Laplacian domains (after Gong 2023,
"Gradient Domain Diffusion Models for Image Synthesis", arXiv 2309.01875, Fig. 2).

    python python/exp_sparsity.py --out docs/figures     # writes sparsity.png, sparsity.json

Images. The bundled scikit-image photographs _figures.NATURAL_IMAGE_NAMES at native
resolution (RGB -> luminance with skimage.color.rgb2gray) and the 200 LFW faces 25x25
(skimage.data.lfw_subset, pooled into one entry "lfw_faces"), grayscale in [0, 1]
(uint8 / 255), float64. Nothing is downloaded.

Fields. Each image x (H, W) with dynamic range r = max(x) - min(x) gives three sets of values,
all divided by r, so every threshold and bin below is in units of the image's dynamic range:

    image      (x - mean(x)) / r       pixel values, centred (see "Deviations")
    gradient   gradient(x) / r         forward differences, both components pooled; the last
                                       row of component 0 and the last column of component 1,
                                       which the Neumann boundary sets to 0, are left out
    laplacian  laplacian(x) / r        the paper's kernel [[0,1/4,0],[1/4,-1,1/4],[0,1/4,0]],
                                       edge-replicate boundary, every pixel

(gradient and laplacian are the package's ops). Every value lies in [-1, 1].

Statistics of the values v of one entry (the faces: the values of all 200 faces pooled):

    frac_abs_below_0.01 / _0.05   fraction of |v| < 0.01 / 0.05, i.e. |value| below 1% / 5%
                                  of the dynamic range (higher = sparser)
    excess_kurtosis               E[(v - mu)^4] / Var(v)^2 - 3 (Gaussian 0, Laplace 3; heavier
                                  tails and a sharper peak at 0 = sparser)
    l1_l2_ratio                   mean|v| / sqrt(mean v^2), in (0, 1] (constant 1, Gaussian
                                  sqrt(2/pi) = 0.80, Laplace 0.71; lower = sparser)
    entropy_bits                  Shannon entropy (bits per value) of v quantised to bins of
                                  width ENTROPY_BIN_WIDTH = 1/256 (8-bit levels of the range);
                                  lower = more compressible

reported per entry and as the unweighted mean over the entries. The figure shows one image,
its gradient magnitude |gradient(x)| and its Laplacian; the densities of v on HIST_BINS equal
bins over [-1, 1] averaged over the entries (each entry weighs the same), log y-axis, with
dashed Gaussians of the same variance for reference; and the per-entry fraction |v| < 0.05.

Deviations from the paper. The image set, the scaling and the statistics are this script's
choices (the paper's Fig. 2 shows histograms only). The image domain is centred: "close to 0"
needs an origin, and the pixel mean is the most favourable one for the image domain (it
minimises the L2 norm), so the comparison is conservative; kurtosis and entropy do not depend
on the origin.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import _figures as fig

THRESHOLDS = (0.01, 0.05)  # |value| < threshold * dynamic range counts as "close to 0"
ENTROPY_BIN_WIDTH = 1.0 / 256  # quantisation step for the entropy, in units of the range
HIST_BINS = 200  # equal bins on [-1, 1], width 0.01 > 1/255: no aliasing spikes from 8-bit levels
PLOT_THRESHOLD = 0.05  # the threshold of the per-entry panel
EXAMPLE_IMAGE = "camera"
DENSITY_FLOOR = 1e-3  # lower y-limit of the density panel
DISPLAY_PERCENTILE = 99.0  # colour limit of the gradient-magnitude and Laplacian panels


def dynamic_range(x: np.ndarray) -> float:
    """r = max(x) - min(x) of one image; a constant image has no range and is rejected."""
    r = float(x.max() - x.min())
    if r <= 0.0:
        raise ValueError("exp_sparsity: a constant image has no dynamic range")
    return r


def domain_values(x: np.ndarray) -> dict[str, np.ndarray]:
    """One image (H, W) in [0, 1] -> {domain: 1-D float64 values / dynamic range} (module notes)."""
    r = dynamic_range(x)
    image = fig.as_tensor(x)
    grad = fig.domain_field(image, "gradient").numpy() / r
    return {
        "image": ((x - x.mean()) / r).ravel(),
        "gradient": np.concatenate([grad[0, :-1, :].ravel(), grad[1, :, :-1].ravel()]),
        "laplacian": (fig.domain_field(image, "laplacian").numpy() / r).ravel(),
    }


def pooled_values(images: np.ndarray) -> dict[str, np.ndarray]:
    """Images (N, H, W) -> {domain: the values of all N images, each normalised by its own range}."""
    per_image = [domain_values(x) for x in images]
    return {domain: np.concatenate([values[domain] for values in per_image]) for domain in fig.DOMAINS}


def entropy_bits(v: np.ndarray, bin_width: float = ENTROPY_BIN_WIDTH) -> float:
    """H = -sum_b p_b log2 p_b of v quantised to floor(v / bin_width) (bits per value)."""
    _, counts = np.unique(np.floor(v / bin_width), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def sparsity_metrics(v: np.ndarray) -> dict[str, float]:
    """The statistics of the module notes for values v (already in units of the dynamic range)."""
    centred = v - v.mean()
    variance = float(np.mean(centred**2))
    magnitude = np.abs(v)
    metrics = {f"frac_abs_below_{threshold}": float(np.mean(magnitude < threshold)) for threshold in THRESHOLDS}
    metrics["excess_kurtosis"] = float(np.mean(centred**4)) / variance**2 - 3.0
    metrics["l1_l2_ratio"] = float(magnitude.mean() / np.sqrt(np.mean(v**2)))
    metrics["entropy_bits"] = entropy_bits(v)
    return metrics


def histogram_edges(bins: int = HIST_BINS) -> np.ndarray:
    """bins + 1 equal-width edges covering [-1, 1]."""
    return np.linspace(-1.0, 1.0, bins + 1)


def density(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram density of v on `edges` (integrates to 1 over [-1, 1])."""
    counts, _ = np.histogram(v, bins=edges, density=True)
    return counts


def run(images: dict[str, np.ndarray], bins: int = HIST_BINS, progress: bool = True) -> dict:
    """Statistics per entry and domain, their mean over entries, and the mean densities.

    Args:
        images: name -> (N, H, W) float grayscale images (N > 1 entries are pooled).
        bins: histogram bins on [-1, 1].
    Returns:
        the JSON payload: per_image, mean_over_images, histogram (bin centres, densities).
    """
    edges = histogram_edges(bins)
    per_image, densities = {}, {domain: [] for domain in fig.DOMAINS}
    for name, stack in tqdm(images.items(), desc="sparsity", disable=not progress):
        values = pooled_values(stack)
        per_image[name] = {domain: sparsity_metrics(values[domain]) for domain in fig.DOMAINS}
        for domain in fig.DOMAINS:
            densities[domain].append(density(values[domain], edges))
    metric_names = next(iter(per_image.values()))["image"].keys()
    mean = {domain: {metric: float(np.mean([entry[domain][metric] for entry in per_image.values()]))
                     for metric in metric_names} for domain in fig.DOMAINS}
    return {
        "description": "Sparsity of grayscale natural images in the image (centred), gradient and Laplacian "
                       "domains; every value divided by its image's dynamic range max - min. See "
                       "python/exp_sparsity.py for the definitions.",
        "config": {"value_scale": "grayscale [0, 1] (uint8 / 255), values / (max - min) of each image",
                   "thresholds": list(THRESHOLDS), "entropy_bin_width": ENTROPY_BIN_WIDTH,
                   "histogram_bins": bins, "histogram_range": [-1.0, 1.0],
                   "images": {name: list(stack.shape) for name, stack in images.items()}},
        "mean_over_images": mean,
        "per_image": per_image,
        "histogram": {"bin_centres": (0.5 * (edges[1:] + edges[:-1])).tolist(),
                      "mean_density": {domain: np.mean(densities[domain], axis=0).tolist()
                                       for domain in fig.DOMAINS}},
    }


def gaussian_like(centres: np.ndarray, dens: np.ndarray) -> np.ndarray:
    """The N(mu, sigma^2) density on `centres` with the mean and variance of histogram `dens`."""
    weights = dens / dens.sum()
    mu = float((weights * centres).sum())
    sigma = float(np.sqrt((weights * (centres - mu) ** 2).sum()))
    return np.exp(-0.5 * ((centres - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def plot(result: dict, example: np.ndarray, example_name: str, path: Path) -> None:
    """Top: the example image, |gradient| and Laplacian. Bottom: mean densities (log y) with
    equal-variance Gaussians, and the per-entry fraction of |v| < PLOT_THRESHOLD."""
    plt = fig.matplotlib_pyplot()
    figure = plt.figure(figsize=(14, 8.5), layout="constrained")
    grid = figure.add_gridspec(2, 3, height_ratios=(1, 1.1))
    image = fig.as_tensor(example)
    grad = fig.domain_field(image, "gradient").numpy()
    magnitude = np.sqrt((grad**2).sum(axis=0))
    lap = fig.domain_field(image, "laplacian").numpy()
    lap_limit = np.percentile(np.abs(lap), DISPLAY_PERCENTILE)
    panels = [(example, "gray", 0.0, 1.0, f"{example_name}: image x (grayscale, [0, 1])"),
              (magnitude, "magma", 0.0, np.percentile(magnitude, DISPLAY_PERCENTILE), "|gradient(x)|"),
              (lap, "RdBu_r", -lap_limit, lap_limit, "laplacian(x) (paper kernel)")]
    for column, (field, cmap, low, high, title) in enumerate(panels):
        axes = figure.add_subplot(grid[0, column])
        shown = axes.imshow(field, cmap=cmap, vmin=low, vmax=high)
        axes.set_title(title + ("" if column == 0 else f", clipped at {DISPLAY_PERCENTILE:g}th pct of |.|"),
                       fontsize=10)
        axes.set_axis_off()
        figure.colorbar(shown, ax=axes, shrink=0.8)

    hist_axes = figure.add_subplot(grid[1, :2])
    centres = np.asarray(result["histogram"]["bin_centres"])
    mean = result["mean_over_images"]
    for domain in fig.DOMAINS:
        dens = np.asarray(result["histogram"]["mean_density"][domain])
        color = fig.DOMAIN_COLORS[domain]
        label = (f"{domain}: kurtosis {mean[domain]['excess_kurtosis']:.1f}, "
                 f"L1/L2 {mean[domain]['l1_l2_ratio']:.2f}, entropy {mean[domain]['entropy_bits']:.2f} bits")
        hist_axes.step(centres, np.where(dens > 0, dens, np.nan), where="mid", color=color, label=label)
        hist_axes.plot(centres, gaussian_like(centres, dens), color=color, linestyle="--", linewidth=0.9)
    peak = max(max(result["histogram"]["mean_density"][domain]) for domain in fig.DOMAINS)
    hist_axes.set_yscale("log")
    hist_axes.set_ylim(DENSITY_FLOOR, 2 * peak)
    hist_axes.set_xlabel("value / dynamic range of the image (image domain: x - mean(x))")
    hist_axes.set_ylabel("density (mean over images)")
    hist_axes.set_title(f"Value distributions over {len(result['per_image'])} images "
                        "(dashed: Gaussian of equal variance; legend: means over images)", fontsize=10)
    hist_axes.legend(fontsize=9, loc="upper right")
    hist_axes.grid(alpha=0.3)

    key = f"frac_abs_below_{PLOT_THRESHOLD}"
    names = list(result["per_image"])
    frac_axes = figure.add_subplot(grid[1, 2])
    for domain in fig.DOMAINS:
        frac_axes.plot(range(len(names)), [result["per_image"][name][domain][key] for name in names], "o",
                       color=fig.DOMAIN_COLORS[domain], label=f"{domain} (mean {mean[domain][key]:.2f})")
    frac_axes.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    frac_axes.set_ylim(0, 1)
    frac_axes.set_ylabel(f"fraction of |value| < {PLOT_THRESHOLD} x range")
    frac_axes.set_title("Near-zero fraction per image", fontsize=10)
    frac_axes.legend(fontsize=8, loc="center left")
    frac_axes.grid(alpha=0.3)
    figure.suptitle("Natural images are sparse in the gradient and Laplacian domains (cf. Gong 2023, Fig. 2)")
    fig.save_figure(figure, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/figures"),
                        help="output folder for sparsity.png and sparsity.json (default: docs/figures)")
    parser.add_argument("--images", nargs="+", default=list(fig.NATURAL_IMAGE_NAMES),
                        help="skimage.data image names (default: the bundled photographs)")
    parser.add_argument("--no-faces", action="store_true", help="leave out the pooled LFW faces entry")
    parser.add_argument("--example", default=EXAMPLE_IMAGE, help="image shown in the top row (default: camera)")
    parser.add_argument("--bins", type=int, default=HIST_BINS, help=f"histogram bins on [-1, 1] (default: {HIST_BINS})")
    args = parser.parse_args(argv)
    if args.example not in args.images:
        parser.error(f"--example {args.example!r} must be one of --images")
    with torch.no_grad():
        images = fig.natural_images(tuple(args.images), faces=not args.no_faces)
        result = run(images, bins=args.bins)
    fig.write_json(args.out / "sparsity.json", result)
    plot(result, images[args.example][0], args.example, args.out / "sparsity.png")
    print(f"wrote {args.out / 'sparsity.json'} and {args.out / 'sparsity.png'}")
    for domain, metrics in result["mean_over_images"].items():
        print(f"{domain:>9}: " + ", ".join(f"{name} {value:.3f}" for name, value in metrics.items()))


if __name__ == "__main__":
    main()
