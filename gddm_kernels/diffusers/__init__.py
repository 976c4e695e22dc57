"""gddm_kernels for diffusers users (the optional extra `pip install "gddm_kernels[diffusers]"`).

Drop-in schedulers, each a subclass of the diffusers scheduler of the same name whose `step`
and `add_noise` are one fused kernel (torch.ops.gddm.diffusion_step / add_noise), with the
same constructor, config, signatures, outputs and state:

    FusedDDPMScheduler                 diffusers.DDPMScheduler
    FusedDDIMScheduler                 diffusers.DDIMScheduler
    FusedDPMSolverMultistepScheduler   diffusers.DPMSolverMultistepScheduler

    pipe.scheduler = FusedDDIMScheduler.from_config(pipe.scheduler.config)

Each adds one config entry, `domain` ("image", "gradient" or "laplacian"), the space the
samples live in (gradient-domain diffusion, arXiv 2309.01875); `GradientDomainPipeline`
samples a U-Net in that domain and reconstructs images by a Poisson solve.
"""

try:
    import diffusers  # noqa: F401  (the real library: absolute import)
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError('gddm_kernels.diffusers needs the diffusers library; install it with '
                      'pip install "gddm_kernels[diffusers]"') from error

from .pipeline_gradient_domain import RECONSTRUCTIONS, GradientDomainPipeline
from .scheduling_ddim import FusedDDIMScheduler
from .scheduling_ddpm import FusedDDPMScheduler
from .scheduling_dpmsolver import FusedDPMSolverMultistepScheduler

__all__ = ["FusedDDPMScheduler", "FusedDDIMScheduler", "FusedDPMSolverMultistepScheduler", "GradientDomainPipeline",
           "RECONSTRUCTIONS"]
