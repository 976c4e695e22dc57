"""Jensen-Shannon divergence between the forward-process marginals and their pure-noise limit,
per domain, over time (after Gong 2023, "Gradient Domain Diffusion Models for Image
Synthesis", arXiv 2309.01875, Fig. 3).

    python python/exp_jsd.py --out docs/figures     # writes jsd.png, jsd.json

Data x0 (B, 1, S, S) in [-1, 1] (S = --size, default 64), at most --max-images per dataset
(a seeded random subset):
    digits    scikit-learn's 8x8 digits, upsampled bilinearly (gddm_kernels.app.data.load_dataset)
    faces     scikit-image's LFW faces 25x25, upsampled bilinearly (load_dataset)
    natural   non-overlapping S x S tiles of the bundled scikit-image photographs
              (_figures.NATURAL_IMAGE_NAMES, grayscale [0, 1] mapped to 2 x - 1, native resolution)

Forward process. For each timestep t of a grid of --num-t values from 0 to T - 1 (spacing
growing with t, see timestep_grid; linear schedule, beta 1e-4..0.02, T = 1000) the whole batch
is noised with the package's fused `gddm_kernels.diffusion.add_noise(x0, t, schedule, domain,
noise_model)`:

    "paper" (the default)  image      x_t = sqrt(g) x0 + sqrt(1-g) eps
                           gradient   G_t = sqrt(g) gradient(x0) + sqrt(2(1-g)) eps        (eq. 14)
                           laplacian  L_t = sqrt(g) laplacian(x0) + sqrt(5(1-g))/2 eps    (eq. 21)
    "exact"                D(sqrt(g) x0 + sqrt(1-g) eps): the operator applied to image noise

Both models tend to a field whose values are N(0, k^2), k = 1, sqrt(2), sqrt(5)/2 (the
variance of gradient / laplacian of white noise away from the border).

Measures. The values v of the noisy field (all samples, pixels and gradient components
pooled) without a BORDER-pixel frame on each side (there the "exact" model's noise has another
variance: the gradient is 0 on its last row / column and the edge-replicate Laplacian is
smaller) are histogrammed on NUM_BINS equal bins over [-TAIL_SIGMAS s, TAIL_SIGMAS s] plus one
bin for each tail. P is that histogram, Q the exact N(0, s^2) probabilities of the same bins
(normal CDF differences), and

    JSD(P, Q) = 1/2 KL(P || M) + 1/2 KL(Q || M),   M = (P + Q) / 2,   in bits (0 <= JSD <= 1).

    "limit"  (the paper's comparison) v against the pure-noise limit N(0, k^2): s = k, the same
             bins for every t of a domain, scaled with k, so the three domains are compared in
             units of their own noise.
    "shape"  (an addition) the standardised values (v - mean v) / std v against N(0, 1): s = 1.
             This removes the variance mismatch and measures only how non-Gaussian the
             marginal still is, i.e. how much of the data's (sparse) distribution the noise
             has not yet drowned.

Reading the curves. Var(v) = g Var(D x0) + k^2 (1 - g) falls short of k^2 by
g (k^2 - Var(D x0)), a deficit of order g in every domain, so in the "limit" measure the
three domains are dominated by the same gamma-driven variance mismatch from t ~ 300 on and
cross 1e-2 at about the same t. The sparse fields start further away (a spike at 0 is far
from N(0, k^2)) but fall faster and reach the sampling floor earlier: much earlier for the
smooth (upsampled) digits, a little earlier for the textured photograph tiles. The "shape"
measure isolates the sparsity: there the gradient and Laplacian fields of the digits look
Gaussian within a few tens of steps and the image only after a few hundred; for the
photograph tiles the order is the same and the gaps are smaller (see jsd.json).

A finite sample gives JSD > 0 even from the limit itself: `noise_floor` is the JSD of as
many N(0, k^2) draws as there are values, measured the same way (about
(bins + 1) / (8 n ln 2) bits; half as large for the gradient, which has twice the values).
`crossing_t` is the first grid t after which the JSD stays below each of THRESHOLDS, and below
FLOOR_FACTOR x the domain's noise floor ("floor"); null if it never does; its resolution is the
grid spacing.

"exact" versus "paper". Each value of D(eps) is N(0, k^2) too, so the marginal histograms and
hence both JSD measures agree up to histogram noise; what differs is the spatial correlation
of the noise, which a histogram does not see. `noise_neighbour_correlation` reports it: the
correlation of horizontally adjacent values of the pure-noise field (x0 = 0), 0 for the
paper's i.i.d. noise, about -0.25 for the exact gradient (component 1 is -1/2, component 0 is
0) and -0.4 for the exact Laplacian.

Deviations from the paper: the datasets, sample sizes, binning and thresholds are this
script's choices; the paper's own histogram set-up is not reproduced exactly.
"""

import argparse
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

import _figures as fig
from gddm_kernels import diffusion
from gddm_kernels.app.data import load_dataset
from gddm_kernels.diffusion import DOMAIN_SCALES, NOISE_MODELS
from gddm_kernels.schedules import Schedule, linear_schedule

DATASETS = ("digits", "natural", "faces")
DEFAULT_DATASETS = ("digits", "natural")
SIZE = 64
MAX_IMAGES = 128
NUM_T = 40
NUM_BINS = 200  # equal bins on [-TAIL_SIGMAS k, TAIL_SIGMAS k], plus the two tails
TAIL_SIGMAS = 5.0
BORDER = 1  # pixels left out on each side of every field
THRESHOLDS = (1e-2, 1e-3)  # JSD levels (bits) whose crossing time is reported
FLOOR_FACTOR = 2.0  # "at the noise distribution": JSD below this multiple of the sampling floor
MEASURES = ("limit", "shape")
SEED = 0
GRID_POWER = 1.5  # t_i = (T - 1) (i / (n - 1))^GRID_POWER: denser at small t, where the shape curves fall
LINE_STYLES = {"paper": "-", "exact": "--"}
SHAPE_T_MAX = 500  # the shape row shows t <= this (beyond, every curve sits at its floor)
MEASURE_TITLES = {"limit": "JSD(histogram of x_t, N(0, k²))", "shape": "JSD(standardised x_t, N(0, 1))"}


def tiles(image: Tensor, size: int) -> Tensor:
    """The non-overlapping size x size tiles of one image (H, W), in raster order: (n, size, size)."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    grid = image[: rows * size, : cols * size].reshape(rows, size, cols, size)
    return grid.permute(0, 2, 1, 3).reshape(rows * cols, size, size)


def natural_patches(size: int) -> Tensor:
    """Every size x size tile of the bundled photographs, float32 (N, 1, size, size) in [-1, 1]."""
    images = fig.natural_images(faces=False)
    patches = torch.cat([tiles(fig.as_tensor(stack[0]), size) for stack in images.values()])
    return (2 * patches - 1).float()[:, None].contiguous()


def load_data(name: str, size: int, max_images: int, generator: torch.Generator) -> Tensor:
    """Dataset `name` (DATASETS) as float32 (B, 1, size, size) in [-1, 1], B <= max_images
    (a random subset drawn with `generator`, kept in dataset order)."""
    data = natural_patches(size) if name == "natural" else load_dataset(name, size)
    if data.shape[0] > max_images:
        keep = torch.randperm(data.shape[0], generator=generator)[:max_images].sort().values
        data = data[keep]
    return data.contiguous()


def inner_edges(scale: float, bins: int = NUM_BINS) -> Tensor:
    """bins + 1 equal-width float64 edges over [-TAIL_SIGMAS scale, TAIL_SIGMAS scale]."""
    return torch.linspace(-TAIL_SIGMAS * scale, TAIL_SIGMAS * scale, bins + 1, dtype=torch.float64)


def gaussian_bin_masses(edges: Tensor, scale: float) -> Tensor:
    """Q: the N(0, scale^2) probability of each bin: (-inf, e_0), [e_i, e_i+1), [e_n, inf)."""
    cdf = torch.special.ndtr(edges / scale)
    return torch.cat([cdf[:1], cdf[1:] - cdf[:-1], 1 - cdf[-1:]])


def histogram(values: Tensor, edges: Tensor) -> Tensor:
    """P: the fraction of `values` in each bin of `gaussian_bin_masses` (tails included):
    values beyond the edges are clamped into one extra bin of the same width on each side."""
    width = float(edges[1] - edges[0])
    low, high = float(edges[0]) - width, float(edges[-1]) + width
    clamped = values.float().clamp(low + width / 2, high - width / 2)
    counts = torch.histc(clamped, bins=edges.numel() + 1, min=low, max=high).double()
    return counts / counts.sum()


def jsd_bits(p: Tensor, q: Tensor) -> float:
    """JSD(P, Q) = 1/2 sum p log2(p/m) + 1/2 sum q log2(q/m), m = (p + q)/2, 0 log 0 = 0."""
    m = 0.5 * (p + q)

    def half_kl(a: Tensor) -> Tensor:
        return 0.5 * torch.where(a > 0, a * torch.log2(a / m), 0.0).sum()

    return float(half_kl(p) + half_kl(q))


def jsd_to_noise(values: Tensor, k: float, measure: str, bins: int = NUM_BINS) -> float:
    """JSD (bits) of the values' histogram against N(0, k^2) ("limit") or of the standardised
    values (v - mean v) / std v against N(0, 1) ("shape"); see the module notes. The shape
    histogram bins v on mean + std * edges, which is binning (v - mean) / std on the edges."""
    scale = 1.0 if measure == "shape" else k
    edges = inner_edges(scale, bins)
    value_edges = edges
    if measure == "shape":
        std, mean = torch.std_mean(values)
        value_edges = float(mean) + float(std) * edges
    return jsd_bits(histogram(values, value_edges), gaussian_bin_masses(edges, scale))


def interior(field: Tensor, border: int = BORDER) -> Tensor:
    """`field` (..., H, W) without a `border`-pixel frame."""
    return field[..., border: field.shape[-2] - border, border: field.shape[-1] - border]


def noisy_field(x0: Tensor, t: int, schedule: Schedule, domain: str, noise_model: str,
                generator: torch.Generator) -> Tensor:
    """x_t of the whole batch at one timestep t with the fused add_noise."""
    timesteps = torch.full((x0.shape[0],), t, dtype=torch.long)
    x_t, _ = diffusion.add_noise(x0, timesteps, schedule, domain, noise_model, generator=generator,
                                 return_noise=False)
    return x_t


def jsd_curves(x0: Tensor, timesteps: list[int], schedule: Schedule, domain: str, noise_model: str,
               generator: torch.Generator, bins: int = NUM_BINS,
               progress: tqdm | None = None) -> dict[str, list[float]]:
    """{measure: [JSD of interior(x_t) for each t in `timesteps`]} for every one of MEASURES."""
    k = DOMAIN_SCALES[domain]
    curves = {measure: [] for measure in MEASURES}
    for t in timesteps:
        values = interior(noisy_field(x0, t, schedule, domain, noise_model, generator))
        for measure in MEASURES:
            curves[measure].append(jsd_to_noise(values, k, measure, bins))
        if progress is not None:
            progress.update()
    return curves


def noise_floor(count: int, domain: str, measure: str, generator: torch.Generator, bins: int = NUM_BINS) -> float:
    """The JSD that sampling alone gives at the limit: `count` i.i.d. N(0, k^2) draws, measured
    like a noisy field."""
    k = DOMAIN_SCALES[domain]
    return jsd_to_noise(k * torch.randn(count, generator=generator), k, measure, bins)


def neighbour_correlation(x0: Tensor, schedule: Schedule, domain: str, noise_model: str,
                          generator: torch.Generator) -> float:
    """Correlation of horizontally adjacent values of the pure-noise field: add_noise of x0 = 0
    at t = T - 1, interior only, all components pooled."""
    field = interior(noisy_field(torch.zeros_like(x0), schedule.num_timesteps - 1, schedule, domain,
                                 noise_model, generator)).double()
    left, right = field[..., :-1].flatten(), field[..., 1:].flatten()
    return float(torch.corrcoef(torch.stack([left, right]))[0, 1])


def crossing_t(timesteps: list[int], curve: list[float], threshold: float) -> int | None:
    """The first grid t from which the curve stays below `threshold`; None if it ends above."""
    crossing = None
    for t, value in zip(reversed(timesteps), reversed(curve)):
        if value >= threshold:
            break
        crossing = t
    return crossing


def crossings(timesteps: list[int], curve: list[float], floor: float) -> dict[str, int | None]:
    """crossing_t for each of THRESHOLDS (keyed by its str) and for FLOOR_FACTOR x floor ("floor")."""
    levels = {str(threshold): threshold for threshold in THRESHOLDS}
    levels["floor"] = FLOOR_FACTOR * floor
    return {key: crossing_t(timesteps, curve, level) for key, level in levels.items()}


def timestep_grid(schedule: Schedule, num_t: int) -> list[int]:
    """The distinct integers round((T - 1) (i / (num_t - 1))^GRID_POWER), i = 0..num_t - 1:
    from 0 to T - 1, spacing growing with t."""
    fractions = torch.linspace(0, 1, num_t, dtype=torch.float64) ** GRID_POWER
    grid = (fractions * (schedule.num_timesteps - 1)).round().long()
    return grid.unique().tolist()


def dataset_result(x0: Tensor, timesteps: list[int], schedule: Schedule, noise_models: tuple[str, ...],
                   generator: torch.Generator, bins: int, progress: tqdm | None) -> dict:
    """Curves, crossing times, noise floors and noise correlations of one dataset; curves,
    floors and crossings are keyed [measure][noise model][domain]."""
    counts = {domain: interior(fig.domain_field(x0, domain)).numel() for domain in fig.DOMAINS}
    by_model = {model: {domain: jsd_curves(x0, timesteps, schedule, domain, model, generator, bins, progress)
                        for domain in fig.DOMAINS} for model in noise_models}
    curves = {measure: {model: {domain: by_model[model][domain][measure] for domain in fig.DOMAINS}
                        for model in noise_models} for measure in MEASURES}
    floors = {measure: {domain: noise_floor(counts[domain], domain, measure, generator, bins)
                        for domain in fig.DOMAINS} for measure in MEASURES}
    return {
        "num_images": x0.shape[0],
        "num_values": counts,
        "noise_floor": floors,
        "curves": curves,
        "crossing_t": {measure: {model: {domain: crossings(timesteps, curves[measure][model][domain],
                                                           floors[measure][domain])
                                         for domain in fig.DOMAINS} for model in noise_models}
                       for measure in MEASURES},
        "noise_neighbour_correlation": {
            model: {domain: neighbour_correlation(x0, schedule, domain, model, generator) for domain in fig.DOMAINS}
            for model in noise_models},
    }


def run(datasets: dict[str, Tensor], num_t: int = NUM_T, noise_models: tuple[str, ...] = NOISE_MODELS,
        bins: int = NUM_BINS, seed: int = SEED, progress: bool = True) -> dict:
    """The JSON payload: for every dataset (name -> x0 (B, 1, S, S) in [-1, 1]), measure and
    noise model, the JSD curve of each domain over the timestep grid (see the module notes)."""
    schedule = linear_schedule()
    timesteps = timestep_grid(schedule, num_t)
    generator = torch.Generator().manual_seed(seed)
    total = len(datasets) * len(noise_models) * len(fig.DOMAINS) * len(timesteps)
    with tqdm(total=total, desc="jsd", disable=not progress) as bar:
        results = {name: dataset_result(x0, timesteps, schedule, noise_models, generator, bins, bar)
                   for name, x0 in datasets.items()}
    return {
        "description": "Jensen-Shannon divergence (bits) over the timesteps of the forward process between the "
                       "histogram of the noisy field's values and the N(0, k^2) pure-noise limit of its domain "
                       "('limit'), and between the standardised values and N(0, 1) ('shape'). See "
                       "python/exp_jsd.py for the definitions.",
        "config": {"schedule": f"linear, beta 1e-4..0.02, T = {schedule.num_timesteps}",
                   "data_range": [-1.0, 1.0], "domain_scales_k": dict(DOMAIN_SCALES), "measures": list(MEASURES),
                   "bins": bins, "bin_range_in_noise_std": [-TAIL_SIGMAS, TAIL_SIGMAS], "tail_bins": 2,
                   "border_left_out": BORDER, "thresholds": list(THRESHOLDS), "floor_factor": FLOOR_FACTOR,
                   "seed": seed, "shapes": {name: list(x0.shape) for name, x0 in datasets.items()}},
        "timesteps": timesteps,
        "gamma": schedule.gammas64[timesteps].tolist(),
        "datasets": results,
    }


def plot(result: dict, path: Path) -> None:
    """A row per measure, a column per dataset: JSD against t (log y), a line per domain and
    noise model, the thresholds (dotted) and each domain's sampling floor (thin)."""
    plt = fig.matplotlib_pyplot()
    names = list(result["datasets"])
    figure, grid = plt.subplots(len(MEASURES), len(names), figsize=(6.5 * len(names), 4.6 * len(MEASURES)),
                                squeeze=False, sharey="row", layout="constrained")
    timesteps = result["timesteps"]
    for row, measure in enumerate(MEASURES):
        for axes, name in zip(grid[row], names):
            data = result["datasets"][name]
            for model, curves in data["curves"][measure].items():
                for domain, curve in curves.items():
                    reached = data["crossing_t"][measure][model][domain]
                    label = (f"{domain}, {model}: < {THRESHOLDS[-1]:g} from t = {reached[str(THRESHOLDS[-1])]}, "
                             f"< {FLOOR_FACTOR:g}x floor from t = {reached['floor']}")
                    paper = model == "paper"
                    axes.plot(timesteps, curve, LINE_STYLES[model], color=fig.DOMAIN_COLORS[domain], label=label,
                              linewidth=1.8 if paper else 1.1, marker="." if paper else None)
            for threshold in THRESHOLDS:
                axes.axhline(threshold, color="black", linestyle=":", linewidth=0.8)
            for domain, floor in data["noise_floor"][measure].items():
                axes.axhline(floor, color=fig.DOMAIN_COLORS[domain], linewidth=0.7, alpha=0.6)
            axes.set_yscale("log")
            if measure == "shape":
                axes.set_xlim(-5, SHAPE_T_MAX)
            axes.set_xlabel("timestep t (linear schedule, T = 1000)"
                            + (f", t <= {SHAPE_T_MAX} shown" if measure == "shape" else ""))
            axes.set_ylabel(f"{MEASURE_TITLES[measure]} [bits]")
            shape = result["config"]["shapes"][name]
            axes.set_title(f"{measure}: {name}, {shape[0]} images {shape[-2]}x{shape[-1]} in [-1, 1]", fontsize=10)
            axes.grid(alpha=0.3, which="both")
            axes.legend(fontsize=7, loc="upper right")
    figure.suptitle("Forward process: distance of each domain's marginal to its pure-noise distribution "
                    "(cf. Gong 2023, Fig. 3)\nk = 1, √2, √5/2; solid: paper noise, dashed: exact noise; "
                    f"dotted: {', '.join(f'{t:g}' for t in THRESHOLDS)}; thin: sampling floors", fontsize=11)
    fig.save_figure(figure, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/figures"),
                        help="output folder for jsd.png and jsd.json (default: docs/figures)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DEFAULT_DATASETS),
                        help="datasets (default: digits natural)")
    parser.add_argument("--size", type=int, default=SIZE, help=f"image / tile side (default: {SIZE})")
    parser.add_argument("--max-images", type=int, default=MAX_IMAGES,
                        help=f"images per dataset, a seeded random subset (default: {MAX_IMAGES})")
    parser.add_argument("--num-t", type=int, default=NUM_T, help=f"timesteps on the grid (default: {NUM_T})")
    parser.add_argument("--bins", type=int, default=NUM_BINS, help=f"bins within +-5 k (default: {NUM_BINS})")
    parser.add_argument("--noise-models", nargs="+", choices=NOISE_MODELS, default=list(NOISE_MODELS),
                        help="noise models (default: paper exact)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed of the subsets and noise (default: {SEED})")
    args = parser.parse_args(argv)
    generator = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        datasets = {name: load_data(name, args.size, args.max_images, generator) for name in args.datasets}
        result = run(datasets, args.num_t, tuple(args.noise_models), args.bins, args.seed)
    fig.write_json(args.out / "jsd.json", result)
    plot(result, args.out / "jsd.png")
    print(f"wrote {args.out / 'jsd.json'} and {args.out / 'jsd.png'}")
    for name, data in result["datasets"].items():
        for measure, by_model in data["crossing_t"].items():
            for model, by_domain in by_model.items():
                print(f"{name:>8} {measure:>5} {model:>5}: " + "; ".join(
                    f"{domain} " + ", ".join(f"<{level} t={t}" for level, t in levels.items())
                    for domain, levels in by_domain.items()))


if __name__ == "__main__":
    main()
