"""diffusers' UNet2DModel as the diffusion network of a run (`TrainConfig.model = "diffusers"`),
called as the built-in UNet is: (x (B, in_channels, H, W), t (B,)) -> (B, out_channels, H, W).

The model is sized like the built-in UNet of the same knobs, so that `--model` changes the
implementation, not the size: level i has base_channels * channel_mults[i] channels
(block_out_channels), num_res_blocks ResNet blocks per level (layers_per_block), no
attention (DownBlock2D / UpBlock2D, a middle block of two ResNet blocks), and GroupNorm with
the largest group count <= MAX_NORM_GROUPS that divides every level's width.

diffusers is the optional `diffusers` extra: it is imported only when such a model is built
(`import_diffusers`), so the application imports and trains the built-in UNet without it.
"""

import importlib
import math
from types import ModuleType

from torch import Tensor, nn

from .unet import norm_groups

INSTALL_HINT = 'pip install "gddm_kernels[diffusers]"'


class DiffusersMissingError(ImportError):
    """diffusers is needed (a UNet2DModel, an export) but cannot be imported."""


def import_diffusers(what: str) -> ModuleType:
    """The diffusers module; DiffusersMissingError naming `what` needs it and how to install it."""
    try:
        return importlib.import_module("diffusers")
    except ImportError as error:
        raise DiffusersMissingError(f"gddm: {what} needs the diffusers library, which cannot be imported here "
                                    f"({error}); install it with {INSTALL_HINT}") from error


class UNet2DAdapter(nn.Module):
    """diffusers.UNet2DModel sized for a run (module notes) behind the built-in UNet's call:
    forward(x (B, in_channels, H, W), t (B,)) -> the model's `.sample`, (B, out_channels, H, W).
    `unet` is the UNet2DModel itself (what `export` saves)."""

    def __init__(self, in_channels: int, out_channels: int, size: int, base_channels: int,
                 channel_mults: tuple[int, ...], num_res_blocks: int, dropout: float) -> None:
        super().__init__()
        diffusers = import_diffusers("model 'diffusers' (diffusers' UNet2DModel)")
        widths = tuple(base_channels * m for m in channel_mults)
        self.unet = diffusers.UNet2DModel(
            sample_size=size, in_channels=in_channels, out_channels=out_channels, block_out_channels=widths,
            layers_per_block=num_res_blocks, down_block_types=("DownBlock2D",) * len(widths),
            up_block_types=("UpBlock2D",) * len(widths), add_attention=False, dropout=dropout,
            norm_num_groups=norm_groups(math.gcd(*widths)))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x (B, in_channels, H, W), t (B,) integer or float timesteps -> (B, out_channels, H, W)."""
        return self.unet(x, t).sample
