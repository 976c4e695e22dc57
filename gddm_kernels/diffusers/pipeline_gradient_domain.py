"""GradientDomainPipeline: unconditional sampling in an image's gradient or Laplacian domain
(Gong 2023, arXiv 2309.01875) as a diffusers pipeline.

The U-Net and the scheduler work on the field; the scheduler's `domain` config says which
one (a stock scheduler, with no `domain`, samples images), and its noise scale k (the
field's x_T ~ N(0, k^2 I), k = 1, sqrt(2), sqrt(5) / 2) sizes the starting noise:

    domain       U-Net channels   field of C-channel images         back to images
    "image"      C                x (B, C, H, W)                    x itself
    "gradient"   2 C              gradient(x) (B, C, 2, H, W),      reconstruct(G): least squares
                                  flattened to (B, 2 C, H, W)
    "laplacian"  C                laplacian(x) (B, C, H, W)         poisson_solve(L)

The Poisson solve ("dct": exact, "multigrid": iterative) fixes an image up to its mean, which
is the config's `image_mean` (the mean of the training images in the model's [-1, 1] units).
Images come back as diffusers pipelines return them: ImagePipelineOutput with PIL images,
a numpy array (B, H, W, C) or a tensor (B, C, H, W), values in [0, 1].
"""

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput, UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from ..poisson import poisson_solve, reconstruct
from .._diffusion_contract import DOMAIN_SCALES, DOMAINS

RECONSTRUCTIONS = ("dct", "multigrid")
OUTPUT_TYPES = ("pil", "np", "pt")
MULTIGRID_TOL = 1e-5  # relative residual of the multigrid reconstruction


def field_to_images(field: Tensor, domain: str, reconstruction: str, image_mean: float) -> Tensor:
    """Images (B, C, H, W) of U-Net-shaped fields (B, C or 2 C, H, W) of `domain`."""
    if domain == "image":
        return field
    tol = {"tol": MULTIGRID_TOL} if reconstruction == "multigrid" else {}
    if domain == "laplacian":
        return poisson_solve(field, method=reconstruction, mean=image_mean, **tol)
    batch, channels, height, width = field.shape
    return reconstruct(field.reshape(batch, channels // 2, 2, height, width), method=reconstruction, mean=image_mean,
                       **tol)


class GradientDomainPipeline(DiffusionPipeline):
    """unet + scheduler (its `domain` config: "image", "gradient" or "laplacian") +
    reconstruction ("dct" or "multigrid") and image_mean, all saved by save_pretrained."""

    model_cpu_offload_seq = "unet"

    def __init__(self, unet: UNet2DModel, scheduler: SchedulerMixin, reconstruction: str = "dct",
                 image_mean: float = 0.0) -> None:
        super().__init__()
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"GradientDomainPipeline: argument `reconstruction` must be one of {RECONSTRUCTIONS}, "
                             f"got {reconstruction!r}")
        self.register_modules(unet=unet, scheduler=scheduler)
        self.register_to_config(reconstruction=reconstruction, image_mean=float(image_mean))

    @property
    def domain(self) -> str:
        """The scheduler's domain ("image" for a scheduler without one)."""
        domain = getattr(self.scheduler.config, "domain", "image")
        if domain not in DOMAINS:
            raise ValueError(f"GradientDomainPipeline: the scheduler's `domain` must be one of {DOMAINS}, got {domain!r}")
        return domain

    def _field_shape(self, batch_size: int) -> tuple[int, ...]:
        size = self.unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else size
        channels = self.unet.config.in_channels
        if self.domain == "gradient" and channels % 2:
            raise ValueError(f"GradientDomainPipeline: a gradient-domain U-Net has 2 C channels (the field (C, 2, H, W) "
                             f"flattened), got in_channels={channels}")
        return (batch_size, channels, height, width)

    @torch.no_grad()
    def __call__(self, batch_size: int = 1, generator: torch.Generator | list[torch.Generator] | None = None,
                 num_inference_steps: int = 50, output_type: str = "pil",
                 return_dict: bool = True) -> ImagePipelineOutput | tuple:
        """Samples `batch_size` fields with the scheduler in `num_inference_steps` steps and
        reconstructs their images. `generator` seeds the starting noise and the scheduler's
        step noise. Returns ImagePipelineOutput(images) (or (images,)): a list of PIL images
        ("pil"), a float array (B, H, W, C) ("np") or a tensor (B, C, H, W) ("pt"), in [0, 1]."""
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"GradientDomainPipeline: argument `output_type` must be one of {OUTPUT_TYPES}, got "
                             f"{output_type!r}")
        domain = self.domain
        field = randn_tensor(self._field_shape(batch_size), generator=generator, device=self._execution_device,
                             dtype=self.unet.dtype)
        field = field * (self.scheduler.init_noise_sigma * DOMAIN_SCALES[domain])
        self.scheduler.set_timesteps(num_inference_steps)
        for t in self.progress_bar(self.scheduler.timesteps):
            model_output = self.unet(self.scheduler.scale_model_input(field, t), t).sample
            field = self.scheduler.step(model_output, t, field, generator=generator).prev_sample
        images = field_to_images(field.float(), domain, self.config.reconstruction, self.config.image_mean)
        images = (images / 2 + 0.5).clamp(0, 1)
        if output_type != "pt":
            images = images.cpu().permute(0, 2, 3, 1).numpy()
            if output_type == "pil":
                images = self.numpy_to_pil(images)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)
