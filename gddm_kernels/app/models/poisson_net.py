"""The Poisson network of the paper (arXiv 2309.01875, section II-F): a U-Net without time
conditioning that maps a possibly noisy, non-integrable gradient field or Laplacian straight
to the image, a learned alternative to the least-squares Poisson solve (`reconstruct`,
`poisson_solve`)."""

from torch import Tensor, nn

from .unet import UNet, check_spatial

GRADIENT_COMPONENTS = 2  # a gradient field has a vertical and a horizontal component (dim -3)


def poisson_net_input(field: Tensor) -> Tensor:
    """A field as a channel stack for a convolutional network.

    A gradient field (B, C, 2, H, W), as `gddm_kernels.gradient` returns for (B, C, H, W) images,
    becomes (B, 2C, H, W) with channel 2c + k holding component k of image channel c; a tensor
    that is already (B, C', H, W) (a Laplacian, or a flattened field) is returned as is.
    """
    if not isinstance(field, Tensor):
        raise TypeError(f"gddm.PoissonNet: argument `field` must be a torch.Tensor, got {type(field).__name__}")
    if field.dim() == 5 and field.shape[2] == GRADIENT_COMPONENTS:
        return field.flatten(1, 2)
    if field.dim() == 4:
        return field
    raise ValueError(
        "gddm.PoissonNet: argument `field` must have shape (B, C, 2, H, W) (a gradient field) or "
        f"(B, C, H, W), got {tuple(field.shape)}"
    )


class PoissonNet(nn.Module):
    """Field -> image network: (B, field_channels, H, W) or (B, field_channels/2, 2, H, W)
    -> (B, image_channels, H, W).

    Args:
        field_channels: channels of the flattened field: 2C for the gradient field of C-channel
            images, C for their Laplacian.
        image_channels: channels C of the predicted image.
        base_channels, channel_mults: as in `UNet`; H and W must be divisible by
            2 ** (len(channel_mults) - 1).
    """

    def __init__(
        self,
        field_channels: int,
        image_channels: int,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 2),
    ) -> None:
        super().__init__()
        self.unet = UNet(
            field_channels, image_channels, base_channels, channel_mults, time_conditioned=False
        )

    def forward(self, field: Tensor) -> Tensor:
        """field (B, C, 2, H, W) or (B, field_channels, H, W) -> image (B, image_channels, H, W)."""
        x = poisson_net_input(field)
        if x.shape[1] != self.unet.in_channels:
            raise ValueError(
                f"gddm.PoissonNet: argument `field` must have {self.unet.in_channels} channels after flattening "
                f"(B, C, 2, H, W) to (B, 2C, H, W), got shape {tuple(field.shape)}"
            )
        check_spatial(x, self.unet.multiple, "PoissonNet", "field")
        return self.unet(x)
