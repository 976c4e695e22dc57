"""Networks for gradient-domain diffusion: `UNet`, the time-conditioned noise predictor, and
`PoissonNet`, the paper's learned field -> image map."""

from .poisson_net import PoissonNet, poisson_net_input
from .unet import UNet

__all__ = ["UNet", "PoissonNet", "poisson_net_input"]
