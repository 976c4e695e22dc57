"""Networks for gradient-domain diffusion: `UNet`, the time-conditioned noise predictor,
`UNet2DAdapter`, diffusers' UNet2DModel behind the same call (the `diffusers` extra, imported
only when one is built), and `PoissonNet`, the paper's learned field -> image map."""

from .poisson_net import PoissonNet, poisson_net_input
from .unet import UNet
from .unet2d import DiffusersMissingError, UNet2DAdapter

__all__ = ["UNet", "UNet2DAdapter", "DiffusersMissingError", "PoissonNet", "poisson_net_input"]
