"""The U-Net noise predictor and the Poisson network."""

import pytest
import torch

import gddm_kernels as gk
from gddm_kernels.app import data
from gddm_kernels.app.models import PoissonNet, UNet, poisson_net_input

SMALL = dict(base_channels=8)  # narrow models keep the tests fast
OVERFIT_STEPS = 25


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "size, mults",
    [((16, 16), (1, 2, 2)), ((32, 32), (1, 2, 2)), ((24, 24), (1, 2)), ((20, 12), (1, 2, 2)), ((6, 10), (1, 2))],
)
def test_unet_shapes(size: tuple[int, int], mults: tuple[int, ...]) -> None:
    model = UNet(3, 2, channel_mults=mults, **SMALL)
    x = torch.randn(2, 3, *size)
    out = model(x, torch.tensor([0, 999]))
    assert out.shape == (2, 2, *size) and out.dtype == torch.float32
    assert torch.count_nonzero(out) == 0  # zero-initialised head
    assert model(x, torch.tensor([0.5, 10.25])).shape == out.shape  # float timesteps


def test_unet_default_sizes_are_small() -> None:
    assert parameter_count(UNet(1, 1)) < 1_000_000
    assert parameter_count(PoissonNet(2, 1)) < 1_000_000
    deeper = UNet(1, 1, base_channels=8, channel_mults=(1, 2, 2, 4), num_res_blocks=2, dropout=0.1)
    assert deeper(torch.randn(1, 1, 8, 8), torch.tensor([3])).shape == (1, 1, 8, 8)


def test_unet_uses_the_timestep() -> None:
    model = UNet(1, 1, **SMALL).eval()
    torch.nn.init.normal_(model.head.weight, std=0.1)
    x = torch.randn(1, 1, 16, 16).expand(2, 1, 16, 16)
    out = model(x, torch.tensor([10, 500]))
    assert (out[0] - out[1]).abs().max() > 1e-3
    torch.testing.assert_close(model(x, torch.tensor([10, 10]))[0], out[0])


def test_unet_gradients_reach_every_parameter() -> None:
    model = UNet(2, 2, **SMALL)
    torch.nn.init.normal_(model.head.weight, std=0.1)
    model(torch.randn(2, 2, 8, 8), torch.tensor([1, 2])).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_unet_errors() -> None:
    model = UNet(1, 1, **SMALL)
    t = torch.tensor([1])
    with pytest.raises(ValueError, match=r"`x` must have H and W divisible by 4.*18, 16"):
        model(torch.randn(1, 1, 18, 16), t)
    with pytest.raises(ValueError, match=r"`x` must have shape \(B, 1, H, W\)"):
        model(torch.randn(1, 2, 16, 16), t)
    with pytest.raises(ValueError, match="`t` must be given"):
        model(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"`t` must have shape \(1,\)"):
        model(torch.randn(1, 1, 16, 16), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="`t` must be None"):
        UNet(1, 1, time_conditioned=False, **SMALL)(torch.randn(1, 1, 16, 16), t)
    with pytest.raises(ValueError, match="channel_mults"):
        UNet(1, 1, channel_mults=())
    with pytest.raises(ValueError, match="base_channels"):
        UNet(1, 1, base_channels=0)


def test_poisson_net_input_layouts() -> None:
    images = torch.randn(2, 3, 8, 8)
    field = gk.gradient(images)  # (2, 3, 2, 8, 8)
    flat = poisson_net_input(field)
    assert flat.shape == (2, 6, 8, 8)
    torch.testing.assert_close(flat[:, 2 * 1 + 0], field[:, 1, 0])  # channel 2c + k
    assert poisson_net_input(flat) is flat

    model = PoissonNet(6, 3, **SMALL)
    torch.nn.init.normal_(model.unet.head.weight, std=0.1)
    torch.testing.assert_close(model(field), model(flat))
    assert model(field).shape == (2, 3, 8, 8)
    assert PoissonNet(3, 3, **SMALL)(gk.laplacian(images)).shape == (2, 3, 8, 8)


def test_poisson_net_errors() -> None:
    model = PoissonNet(2, 1, **SMALL)
    with pytest.raises(ValueError, match="`field` must have 2 channels"):
        model(torch.randn(1, 2, 2, 8, 8))
    with pytest.raises(ValueError, match="`field` must have H and W divisible by 4"):
        model(torch.randn(1, 1, 2, 10, 8))
    with pytest.raises(ValueError, match=r"\(B, C, 2, H, W\)"):
        model(torch.randn(2, 8, 8))


@pytest.mark.parametrize("domain", ["laplacian", "gradient"])
def test_poisson_net_overfits_a_few_digits(domain: str) -> None:
    """OVERFIT_STEPS Adam steps on 8 digits more than halve the field -> image error
    (in practice they cut it ~20x, from 0.57 to ~0.03)."""
    images = data.digits(16)[:8]
    field = gk.laplacian(images) if domain == "laplacian" else gk.gradient(images)
    model = PoissonNet(1 if domain == "laplacian" else 2, 1, **SMALL)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(OVERFIT_STEPS):
        loss = (model(field) - images).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
