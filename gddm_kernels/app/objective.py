"""What the networks of a run predict and the loss they are trained on: image, gradient-domain
(GDDM) and Laplacian-domain (LDDM) diffusion (Gong, arXiv 2309.01875) with the fused ops.

Modes. The mode names the domain the diffusion runs in; the image x0 (B, C, H, W) in [-1, 1]
becomes the clean field F0 = D(x0) with

    image      D = identity          F0 (B, C, H, W)      noise scale k = 1
    gradient   D = gradient          F0 (B, C, 2, H, W)   k = sqrt(2)     (GDDM, eq. 14)
    laplacian  D = laplacian         F0 (B, C, H, W)      k = sqrt(5)/2   (LDDM, eq. 21)

and the U-Net sees a field as channels, (B, C * COMPONENTS[mode], H, W) (`field_channels`).

Processes. Every mode trains one of two forward processes on its field (`process`), with one
code path: only the noising, the network's outputs and the regression targets differ
(`Objective.noised`, `DiffusionNets.predict`).

    "ddpm"         t ~ U{0, ..., T-1} per sample, g = gamma_t of the schedule,
                   (F_t, eps) = add_noise(x0, t, schedule, mode),
                   F_t = sqrt(g) F0 + k sqrt(1 - g) eps;
                   the U-Net (field_channels outputs) predicts eps_hat at the time input t.
    "attenuation"  analytic attenuation (Huang et al. 2023, "Simultaneous Image-to-Zero and
                   Zero-to-Noise", Alg. 1) with the linear attenuation H_t = c t, c = -F0:
                   t ~ U(T_MIN, 1] per sample (continuous),
                   (F_t, eps) = attenuation_add_noise(x0, t, mode),
                   F_t = F0 + H_t + k sqrt(t) eps = (1 - t) F0 + k sqrt(t) eps;
                   the U-Net has 2 * field_channels outputs, the first half c_hat (the
                   attenuation, target c = -F0), the second eps_hat; its time input is t T
                   (T = `timesteps`), so that the sinusoidal embedding spans the same range as
                   a DDPM network's integer timesteps. The schedule is not used.

In both the fused op draws eps in-kernel and returns it as the target. Objective of one step
on one rank:

    L_eps      = mean (eps_hat - eps)^2               (eq. 18 for GDDM, eq. 24 for LDDM, the
                                                       "simple" DDPM loss for images)
    L_atten    = mean (c_hat - c)^2                   (attenuation only: Huang et al.'s loss is
                                                       L_atten + L_eps)
    L_sparse   = lambda mean |sqrt(g) F0_hat| = lambda mean |F_t - k sqrt(1 - g) eps_hat|  (ddpm)
                 lambda mean |F0_hat| = lambda mean |c_hat|                             (attenuation)
    L_poisson  = mean (P(F0 + sigma z) - x0)^2,  sigma ~ U(0, sigma_max) per sample, z ~ N(0, I)
    loss       = L_eps [+ L_atten] + L_sparse + L_poisson

L_sparse is the guided-sparsity term (eqs. 25/26): the L1 norm of the predicted clean field.
For ddpm, F0_hat = (F_t - k sqrt(1 - g) eps_hat) / sqrt(g) is weighted by sqrt(g) so that its
gradient with respect to eps_hat stays bounded by lambda k per element: the bare |F0_hat| has
the factor k sqrt((1 - g) / g), 157 k at t = T-1 of the linear schedule (g ~ 4e-5), which would
let the noisiest timesteps dominate. The attenuation network predicts F0_hat = -c_hat directly,
so its gradient is bounded by lambda without a weight. L_poisson (only with `poisson_net`, for
either process: it does not depend on the diffusion) trains the Poisson network P to map a
field, made non-integrable by the added noise, to its image. Means run over every element of
the batch. Means are per rank: under DDP each rank has its own loss, and the gradients are
averaged across ranks.
"""

import torch
from torch import Tensor, nn

from ..diffusion import add_noise, attenuation_add_noise
from ..diffusion import DOMAIN_SCALES
from ..schedules import Schedule
from ..stencils import gradient, laplacian
from .config import PREDICTIONS, T_MIN, TrainConfig
from .models import PoissonNet, UNet, UNet2DAdapter


def clean_field(x0: Tensor, mode: str) -> Tensor:
    """F0 = D(x0) for images (B, C, H, W): the image, its gradient (B, C, 2, H, W) or Laplacian."""
    if mode == "gradient":
        return gradient(x0)
    if mode == "laplacian":
        return laplacian(x0)
    return x0


def as_channels(field: Tensor) -> Tensor:
    """A field (B, C, H, W) or (B, C, 2, H, W) as network input (B, C * components, H, W);
    gradient component k of image channel c becomes channel 2c + k."""
    return field.flatten(1, -3)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast of the networks' forward passes when precision == "bf16"."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


class DiffusionNets(nn.Module):
    """The networks of a run: `model`, the U-Net on (B, field_channels, H, W) with one block of
    field_channels outputs per entry of PREDICTIONS[config.process] (eps; or c, then eps): the
    built-in UNet, or diffusers' UNet2DModel behind the same call (config.model "diffusers",
    a UNet2DAdapter); and `poisson_net`, the field -> image PoissonNet (always the built-in
    kind; None unless config.poisson_net)."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.predictions = PREDICTIONS[config.process]
        self.time_scale = float(config.timesteps) if config.process == "attenuation" else None
        width = dict(base_channels=config.base_channels, channel_mults=config.channel_mults)
        outputs = len(self.predictions) * config.field_channels
        blocks = dict(num_res_blocks=config.num_res_blocks, dropout=config.dropout)
        if config.model == "diffusers":
            self.model = UNet2DAdapter(config.field_channels, outputs, config.size, **blocks, **width)
        else:
            self.model = UNet(config.field_channels, outputs, **blocks, **width)
        self.poisson_net = PoissonNet(config.field_channels, config.channels, **width) if config.poisson_net else None

    def network_time(self, t: Tensor) -> Tensor:
        """The U-Net's time input for t (B,): a ddpm timestep as it is, an attenuation time t in
        (0, 1] as t T, so that both span the embedding's range [0, T] (module notes)."""
        return t if self.time_scale is None else t * self.time_scale

    def predict(self, field: Tensor, t: Tensor, precision: str) -> tuple[Tensor, ...]:
        """The predictions named by PREDICTIONS[process] for a noisy field (B, C, [2,] H, W) at
        times t (B,), each float32 of the field's shape: (eps_hat,) or (c_hat, eps_hat)."""
        with autocast(field.device, precision):
            out = self.model(as_channels(field), self.network_time(t))
        return out.float().view(field.shape[0], len(self.predictions), *field.shape[1:]).unbind(1)


class Objective(nn.Module):
    """The training loss of the module notes; `forward(x0, generator) -> (loss, parts)` with
    x0 (B, C, H, W) on the device, parts the detached terms. One module, so DDP wraps it."""

    def __init__(self, nets: DiffusionNets, schedule: Schedule, config: TrainConfig) -> None:
        super().__init__()
        self.nets, self.schedule, self.config = nets, schedule, config
        self.scale = DOMAIN_SCALES[config.mode]

    def forward(self, x0: Tensor, generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        config, batch = self.config, x0.shape[0]
        t, noisy, targets = self.noised(x0, generator)
        predictions = dict(zip(self.nets.predictions, self.nets.predict(noisy, t, config.precision), strict=True))
        parts = {name: (predictions[name] - target).square().mean() for name, target in targets.items()}
        if config.sparsity_weight:
            parts["sparsity"] = config.sparsity_weight * self.sparse_field(noisy, t, predictions).abs().mean()
        if self.nets.poisson_net is not None:
            field = as_channels(clean_field(x0, config.mode))
            sigma = config.poisson_sigma_max * torch.rand(batch, 1, 1, 1, generator=generator, device=x0.device)
            noise = torch.randn(field.shape, generator=generator, device=x0.device)
            with autocast(x0.device, config.precision):
                image = self.nets.poisson_net(field + sigma * noise)
            parts["poisson"] = (image.float() - x0).square().mean()
        loss = sum(parts.values())
        return loss, {name: value.detach() for name, value in parts.items()}

    def noised(self, x0: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """One draw of the process for images x0 (B, C, H, W): (t (B,), F_t, targets), the targets
        named like PREDICTIONS[process] (module notes, "Processes")."""
        config, batch = self.config, x0.shape[0]
        if config.process == "attenuation":
            t = 1 - (1 - T_MIN) * torch.rand(batch, generator=generator, device=x0.device)
            noisy, eps = attenuation_add_noise(x0, t, config.mode, generator=generator)
            return t, noisy, {"attenuation": -clean_field(x0, config.mode), "eps": eps}
        t = torch.randint(0, config.timesteps, (batch,), generator=generator, device=x0.device)
        noisy, eps = add_noise(x0, t, self.schedule, config.mode, generator=generator)
        return t, noisy, {"eps": eps}

    def sparse_field(self, noisy: Tensor, t: Tensor, predictions: dict[str, Tensor]) -> Tensor:
        """The predicted clean field as the sparsity term weighs it (module notes):
        sqrt(g) F0_hat = F_t - k sqrt(1 - g) eps_hat (ddpm), F0_hat = -c_hat (attenuation)."""
        if self.config.process == "attenuation":
            return -predictions["attenuation"]
        residual_scale = (self.scale * (1 - self.schedule.gamma(t)).sqrt()).float()
        return noisy - residual_scale.view(-1, *[1] * (noisy.dim() - 1)) * predictions["eps"]
