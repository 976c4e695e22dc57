"""Command line: `python -m gddm_kernels train ...`, `sample ...` and `export ...`.

    python -m gddm_kernels train --mode laplacian --dataset digits --size 16 --steps 1500 --out runs/demo
    python -m gddm_kernels sample --checkpoint runs/demo/checkpoint.pt --out runs/demo/samples.png
    python -m gddm_kernels train --mode gradient --process attenuation --out runs/atten
    python -m gddm_kernels sample --checkpoint runs/atten/checkpoint.pt --sampler attenuation --eta 1
    torchrun --nproc-per-node 2 -m gddm_kernels train ...      (DDP: gloo on CPU, nccl on CUDA)
    python -m gddm_kernels train --mode gradient --model diffusers --out runs/unet2d
    python -m gddm_kernels export --checkpoint runs/unet2d/checkpoint.pt --out runs/unet2d/pipeline

`--help` on each subcommand explains every option; the defaults are TrainConfig's, `sample`'s
and `export`'s own, tuned so that the first two commands above make recognisable digits on two
CPU cores in a few minutes. `export` writes a `--model diffusers` checkpoint as a diffusers
GradientDomainPipeline folder (gddm_kernels.app.export).

Every failure ends in one line on stderr, `error: ...` (argparse's own: `python -m
gddm_kernels train: error: ...`), and a non-zero exit status: 2 for what the user can fix
(arguments, files, checkpoints, a run whose loss became non-finite, the diffusers extra
missing for `--model diffusers` or `export`), 1 for anything unexpected, 130 for an
interrupt. No traceback.
"""

import argparse
import inspect
import sys
import time
from pathlib import Path

from ..dispatch import BACKENDS
from .checkpoints import CHECKPOINT_NAME
from .config import MODELS, MODES, PRECISIONS, PROCESSES, SCHEDULES, T_MIN, TrainConfig
from .export import EXPORT_RECONSTRUCTIONS, EXPORT_SCHEDULERS, export
from .loop import NonFiniteLossError, train
from .models import DiffusersMissingError
from .sample import RECONSTRUCTIONS, SAMPLERS, sample

TRAIN_DEFAULTS = TrainConfig()
SAMPLE_DEFAULTS = {name: p.default for name, p in inspect.signature(sample).parameters.items()}
EXPORT_DEFAULTS = {name: p.default for name, p in inspect.signature(export).parameters.items()}
# Failures the user can act on: bad arguments or files (CheckpointError is a ValueError), a
# diverged run, the diffusers extra missing. Exit status 2, like argparse's own errors.
USER_ERRORS = (ValueError, OSError, NonFiniteLossError, DiffusersMissingError)
GRID_SCALE = 4  # the CLI enlarges sample grids 4x: 16x16 digits become 64x64 tiles
SAMPLES_NAME = "samples.png"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def one_line(text: object) -> str:
    """`text` with every run of whitespace, newlines included, as one space."""
    return " ".join(str(text).split())


def _add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=list(BACKENDS), default=None,
                        help="gddm op backend for every op of the run (default: the fastest for the device)")
    parser.add_argument("--reference-ops", dest="backend", action="store_const", const="reference",
                        help="run every gddm op on the pure-PyTorch reference (same as --backend reference): "
                             "the drop-in proof that the fused kernels change nothing but speed")


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    d = TRAIN_DEFAULTS
    p = subparsers.add_parser(
        "train", help="train a diffusion model (image, gradient or Laplacian domain)",
        description="Train an image (DDPM), gradient-domain (GDDM) or Laplacian-domain (LDDM) diffusion model "
                    "with the fused gddm ops, as a DDPM process or as Huang et al.'s analytic-attenuation "
                    "process (--process attenuation); writes OUT/checkpoint.pt. Under torchrun every process "
                    "trains with its own batches and noise (DDP).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--mode", choices=MODES, default=d.mode,
                   help="domain of the diffusion: image pixels, the gradient field (GDDM) or the Laplacian (LDDM)")
    p.add_argument("--process", choices=PROCESSES, default=d.process,
                   help="ddpm: the schedule's discrete process, an eps-predicting U-Net; attenuation: Huang et "
                        "al.'s analytic attenuation F_t = (1-t) F0 + k sqrt(t) eps on continuous t ~ "
                        f"U({T_MIN:g}, 1], a U-Net predicting (c = -F0, eps) with time input t*T (sampled by "
                        "--sampler attenuation, the default for such checkpoints)")
    p.add_argument("--dataset", default=d.dataset,
                   help="'digits' (scikit-learn), 'faces' (scikit-image LFW subset) or a folder of images")
    p.add_argument("--size", type=int, default=d.size,
                   help="image side in pixels; a multiple of 2**(len(channel-mults)-1)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=d.channels, help="1 = grey, 3 = RGB")
    p.add_argument("--steps", type=int, default=d.steps, help="total optimiser steps (a resumed run continues to it)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per step and process")
    p.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate (constant, no weight decay)")
    p.add_argument("--grad-clip", type=float, default=d.grad_clip, help="clip the gradient norm to this (0: off)")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay,
                   help="decay of the EMA weights the sampler uses, in [0, 1)")
    p.add_argument("--timesteps", type=int, default=d.timesteps,
                   help="T, the number of diffusion timesteps (attenuation: the network's time input is t*T)")
    p.add_argument("--schedule", choices=list(SCHEDULES), default=d.schedule,
                   help="noise schedule of the betas (ddpm process only)")
    p.add_argument("--model", choices=MODELS, default=d.model,
                   help="the diffusion network: unet (built in) or diffusers (diffusers' UNet2DModel of the same "
                        "widths, needs pip install \"gddm_kernels[diffusers]\"; the kind `export` turns into a "
                        "diffusers pipeline)")
    p.add_argument("--base-channels", type=int, default=d.base_channels, help="U-Net width of the first level")
    p.add_argument("--channel-mults", type=int, nargs="+", default=list(d.channel_mults),
                   help="U-Net width multiplier per resolution level")
    p.add_argument("--num-res-blocks", type=int, default=d.num_res_blocks, help="U-Net residual blocks per level")
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout inside the residual blocks")
    p.add_argument("--lambda", dest="sparsity_weight", type=float, default=d.sparsity_weight,
                   help="weight of the guided-sparsity term lambda*mean|sqrt(gamma_t) x0_hat| (paper eqs. 25/26; "
                        "attenuation: lambda*mean|c_hat|; 0: off)")
    p.add_argument("--poisson-net", action="store_true",
                   help="also train a Poisson network (noisy field -> image) for --reconstruction poisson_net")
    p.add_argument("--poisson-sigma-max", type=float, default=d.poisson_sigma_max,
                   help="largest noise level added to the Poisson network's training fields")
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="fp32, or bf16 autocast of the network passes (CPU and CUDA)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the initialisation and of every generator")
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:N (default: CUDA when available)")
    _add_backend(p)
    p.add_argument("--out", default="runs/train", help=f"folder for {CHECKPOINT_NAME}")
    p.add_argument("--resume", default=None, help="continue exactly from this checkpoint")
    p.add_argument("--save-every", type=int, default=d.save_every,
                   help="also write the checkpoint every this many steps (0: only at the end)")
    p.add_argument("--log-every", type=int, default=d.log_every, help="refresh the progress bar's loss this often")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def _add_sample(subparsers: argparse._SubParsersAction) -> None:
    d = SAMPLE_DEFAULTS
    p = subparsers.add_parser(
        "sample", help="sample images from a checkpoint into a PNG grid",
        description="Run the reverse process of a trained checkpoint in its domain with the fused steps, "
                    "reconstruct images (Poisson solve or Poisson network) and write them as a PNG grid.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `train`")
    p.add_argument("--out", default=None, help=f"PNG path (default: {SAMPLES_NAME} next to the checkpoint)")
    p.add_argument("--num-samples", type=int, default=d["num_samples"], help="images to draw (one batch)")
    p.add_argument("--steps", type=int, default=d["steps"],
                   help="reverse steps: 1..T, an evenly spaced subsequence of the training timesteps (ddpm "
                        "process); any number >= 1, a uniform grid from t=1 to 0 (attenuation process)")
    p.add_argument("--sampler", choices=SAMPLERS, default=d["sampler"],
                   help="for a ddpm-process checkpoint: ddpm (ancestral), ddim (eta 0: deterministic) or dpm "
                        "(DPM-Solver++(2M)); for an attenuation-process checkpoint: attenuation (Huang et al. "
                        "Alg. 2 with --eta 1, deterministic with --eta 0); unset: the checkpoint's process's own "
                        "(ddpm or attenuation)")
    p.add_argument("--eta", type=float, default=d["eta"],
                   help="noise level in [0, 1] of ddim (1: DDPM posterior variance) and attenuation (1: Alg. 2); "
                        "0 is deterministic")
    p.add_argument("--clip-x0", type=float, default=None,
                   help="clamp every step's clean-field prediction to [-c, c] (field units; default: no clamp)")
    p.add_argument("--reconstruction", choices=RECONSTRUCTIONS, default=d["reconstruction"],
                   help="field -> image: exact DCT Poisson solve, multigrid, or the trained Poisson network "
                        "(ignored for image-mode checkpoints, except that poisson_net is an error)")
    p.add_argument("--poisson-checkpoint", default=None,
                   help="take the Poisson network from this checkpoint (same mode, size, channels)")
    p.add_argument("--size", type=int, default=None, help="expected image side; must match the checkpoint")
    p.add_argument("--seed", type=int, default=d["seed"], help="seed of the start noise and the step noise")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available)")
    p.add_argument("--no-ema", dest="use_ema", action="store_false", help="use the raw weights, not the EMA")
    _add_backend(p)
    p.add_argument("--nrow", type=int, default=d["nrow"], help="images per row of the grid")
    p.add_argument("--scale", type=int, default=GRID_SCALE, help="enlarge the grid this many times (nearest)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    d = EXPORT_DEFAULTS
    p = subparsers.add_parser(
        "export", help="write a --model diffusers checkpoint as a diffusers pipeline folder",
        description="Write the UNet2DModel of a checkpoint trained with --model diffusers (process ddpm), a fused "
                    "scheduler of its domain and training schedule, and the reconstruction as a "
                    "gddm_kernels.diffusers.GradientDomainPipeline folder (GradientDomainPipeline.from_pretrained"
                    "(OUT) loads it). Checkpoints of the built-in U-Net or of the attenuation process are refused.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `train --model diffusers`")
    p.add_argument("--out", required=True, help="folder for the pipeline (save_pretrained)")
    p.add_argument("--scheduler", choices=EXPORT_SCHEDULERS, default=d["scheduler"],
                   help="FusedDDPMScheduler (ddpm) or FusedDDIMScheduler (ddim)")
    p.add_argument("--reconstruction", choices=EXPORT_RECONSTRUCTIONS, default=d["reconstruction"],
                   help="the pipeline's field -> image Poisson solve (gradient and laplacian domains)")
    p.add_argument("--no-ema", dest="use_ema", action="store_false", help="export the raw weights, not the EMA")


def parser() -> argparse.ArgumentParser:
    """The `python -m gddm_kernels` argument parser (subcommands train, sample and export)."""
    root = _Parser(prog="python -m gddm_kernels",
                   description="Train, sample and export gradient-domain diffusion models with gddm_kernels.")
    subparsers = root.add_subparsers(dest="command", required=True)
    _add_train(subparsers)
    _add_sample(subparsers)
    _add_export(subparsers)
    return root


def main(argv: list[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    command = args.pop("command")
    began = time.perf_counter()
    try:
        if command == "train":
            args["channel_mults"] = tuple(args["channel_mults"])
            result = train(TrainConfig(**args))
            if result["rank"] == 0:
                print(f"trained steps {result['start_step']}..{result['step']} in {result['seconds']:.1f} s, "
                      f"last loss {result['losses'][-1] if result['losses'] else float('nan'):.4f}; "
                      f"checkpoint {result['checkpoint']}")
        elif command == "export":
            export(**args)
            print(f"exported {args['checkpoint']} as a GradientDomainPipeline to {args['out']} in "
                  f"{time.perf_counter() - began:.1f} s")
        else:
            out = args.pop("out") or Path(args["checkpoint"]).with_name(SAMPLES_NAME)
            images = sample(args.pop("checkpoint"), out=out, **args)
            print(f"wrote {images.shape[0]} samples to {out} in {time.perf_counter() - began:.1f} s")
    except USER_ERRORS as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001: the command line reports, it does not raise
        print(f"error: unexpected {type(error).__name__}: {one_line(error)}", file=sys.stderr)
        return 1
    return 0
