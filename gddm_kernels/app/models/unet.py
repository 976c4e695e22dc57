"""A compact time-conditioned U-Net, the noise (or x0 / v) predictor of a diffusion model.

Layout for `channel_mults = (m_0, ..., m_{L-1})` and `c_i = base_channels * m_i`:

    stem     3x3 conv                         in_channels -> c_0            at H x W
    down i   num_res_blocks ResBlocks -> c_i, keep a skip, then a stride-2 conv (i < L-1)
    middle   two ResBlocks at c_{L-1}                                      at H/2^(L-1)
    up i     concatenate skip i, num_res_blocks ResBlocks -> c_i, then 2x upsampling (i > 0)
    head     GroupNorm, SiLU, 3x3 conv c_0 -> out_channels, zero-initialised

so H and W must be divisible by 2^(L-1). A timestep t is embedded sinusoidally, passed through
an MLP, and added per channel inside every ResBlock.
"""

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

MAX_NORM_GROUPS = 8  # GroupNorm uses the largest group count <= this that divides the channels
TIME_EMBED_MULT = 4  # width of the time MLP, in units of base_channels
MAX_PERIOD = 10_000.0  # longest period of the sinusoidal timestep embedding
MIDDLE_BLOCKS = 2


def norm_groups(channels: int) -> int:
    """The largest divisor of `channels` that is at most MAX_NORM_GROUPS."""
    return max(g for g in range(1, MAX_NORM_GROUPS + 1) if channels % g == 0)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(norm_groups(channels), channels)


def timestep_embedding(t: Tensor, frequencies: int) -> Tensor:
    """Sinusoidal embedding of timesteps t (B,) (integer or float) -> (B, 2 * frequencies):

        [cos(t w_k), sin(t w_k)],   w_k = MAX_PERIOD^(-k / frequencies),  k = 0 .. frequencies-1
    """
    k = torch.arange(frequencies, device=t.device, dtype=torch.float32)
    angles = t.float()[:, None] * torch.exp(-math.log(MAX_PERIOD) * k / frequencies)[None, :]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ResBlock(nn.Module):
    """x + F(x) with F = conv(dropout(SiLU(GN(conv(SiLU(GN(x)))) + proj(temb)))).

    (B, in_ch, H, W) -> (B, out_ch, H, W); a 1x1 conv maps the shortcut when in_ch != out_ch.
    `time_dim` is None for an unconditioned block.
    """

    def __init__(self, in_ch: int, out_ch: int, time_dim: int | None, dropout: float) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_proj = None if time_dim is None else nn.Linear(time_dim, out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, temb: Tensor | None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_proj is not None:
            h = h + self.time_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.shortcut(x) + h


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling then a 3x3 conv: (B, C, H, W) -> (B, C, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def check_spatial(x: Tensor, multiple: int, op: str, arg: str) -> None:
    """H and W of `x` (..., H, W) are divisible by `multiple` = 2 ** (number of levels - 1)."""
    if x.shape[-2] % multiple or x.shape[-1] % multiple:
        raise ValueError(
            f"gddm.{op}: argument `{arg}` must have H and W divisible by {multiple} "
            f"(2 ** (len(channel_mults) - 1)), got H, W = {x.shape[-2]}, {x.shape[-1]}"
        )


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class UNet(nn.Module):
    """Time-conditioned U-Net: (B, in_channels, H, W), t (B,) -> (B, out_channels, H, W).

    Args:
        in_channels, out_channels: channels of the input and of the prediction.
        base_channels: width c_0 of the first level; level i has base_channels * channel_mults[i].
        channel_mults: one multiplier per resolution level; H and W must be divisible by
            2 ** (len(channel_mults) - 1).
        num_res_blocks: ResBlocks per level on each path.
        time_conditioned: embed and use a timestep `t`; if False, `forward` takes no `t`.
        dropout: dropout probability inside the ResBlocks.

    The final conv is zero-initialised, so a fresh model predicts 0 (the mean of eps).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 2),
        num_res_blocks: int = 1,
        time_conditioned: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels),
                           ("base_channels", base_channels), ("num_res_blocks", num_res_blocks)):
            if not _is_positive_int(value):
                raise ValueError(f"gddm.UNet: argument `{arg}` must be an integer >= 1, got {value!r}")
        channel_mults = tuple(channel_mults)
        if not channel_mults or not all(_is_positive_int(m) for m in channel_mults):
            raise ValueError(
                f"gddm.UNet: argument `channel_mults` must be a non-empty tuple of integers >= 1, got {channel_mults!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"gddm.UNet: argument `dropout` must be in [0, 1), got {dropout!r}")

        self.in_channels = in_channels
        self.time_conditioned = time_conditioned
        self.multiple = 2 ** (len(channel_mults) - 1)  # H and W must be divisible by this
        widths = [base_channels * m for m in channel_mults]

        self.time_frequencies = base_channels  # the sinusoidal embedding has 2 * base_channels features
        time_dim = TIME_EMBED_MULT * base_channels if time_conditioned else None
        self.time_mlp = (
            nn.Sequential(nn.Linear(2 * base_channels, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
            if time_conditioned
            else None
        )

        def blocks(first_in: int, width: int) -> nn.ModuleList:
            ins = [first_in] + [width] * (num_res_blocks - 1)
            return nn.ModuleList(ResBlock(c, width, time_dim, dropout) for c in ins)

        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.down_blocks, self.downsamples = nn.ModuleList(), nn.ModuleList()
        previous = widths[0]
        for i, width in enumerate(widths):
            self.down_blocks.append(blocks(previous, width))
            is_last = i == len(widths) - 1
            self.downsamples.append(nn.Identity() if is_last else nn.Conv2d(width, width, 3, stride=2, padding=1))
            previous = width

        self.middle = nn.ModuleList(ResBlock(previous, previous, time_dim, dropout) for _ in range(MIDDLE_BLOCKS))

        self.up_blocks, self.upsamples = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(widths))):
            self.up_blocks.append(blocks(previous + widths[i], widths[i]))
            self.upsamples.append(Upsample(widths[i]) if i > 0 else nn.Identity())
            previous = widths[i]

        self.head_norm = group_norm(previous)
        self.head = nn.Conv2d(previous, out_channels, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _check_inputs(self, x: Tensor, t: Tensor | None) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"gddm.UNet: argument `x` must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"gddm.UNet: argument `x` must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        check_spatial(x, self.multiple, "UNet", "x")
        if not self.time_conditioned:
            if t is not None:
                raise ValueError("gddm.UNet: argument `t` must be None for a model built with time_conditioned=False")
            return
        if t is None:
            raise ValueError("gddm.UNet: argument `t` must be given (timesteps of shape (B,)) for a time-conditioned model")
        if not isinstance(t, Tensor):
            raise TypeError(f"gddm.UNet: argument `t` must be a torch.Tensor, got {type(t).__name__}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"gddm.UNet: argument `t` must have shape ({x.shape[0]},), got {tuple(t.shape)}")

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        """x (B, in_channels, H, W), t (B,) integer or float timesteps (None iff not
        time-conditioned) -> (B, out_channels, H, W)."""
        self._check_inputs(x, t)
        temb = None
        if self.time_mlp is not None:
            temb = self.time_mlp(timestep_embedding(t, self.time_frequencies).to(x.dtype))

        h = self.stem(x)
        skips = []
        for level, downsample in zip(self.down_blocks, self.downsamples):
            for block in level:
                h = block(h, temb)
            skips.append(h)
            h = downsample(h)
        for block in self.middle:
            h = block(h, temb)
        for level, upsample in zip(self.up_blocks, self.upsamples):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in level:
                h = block(h, temb)
            h = upsample(h)
        return self.head(F.silu(self.head_norm(h)))
