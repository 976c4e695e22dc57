"""The fused schedulers inside diffusers pipelines (swap, same images for a seed, save/load)
and GradientDomainPipeline end to end, with tiny randomly initialised UNet2DModels (nothing
is downloaded)."""

import json

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from gddm_kernels import gradient, laplacian, poisson_solve, reconstruct  # noqa: E402
from gddm_kernels.diffusers import (FusedDDIMScheduler, FusedDDPMScheduler,  # noqa: E402
                                    FusedDPMSolverMultistepScheduler, GradientDomainPipeline)
from gddm_kernels.diffusers.pipeline_gradient_domain import field_to_images  # noqa: E402

SIZE = 8
STEPS = 4


def tiny_unet(channels: int) -> diffusers.UNet2DModel:
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=SIZE, in_channels=channels, out_channels=channels, layers_per_block=1,
                                 block_out_channels=(8, 8), norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D")).eval()


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def unet3() -> diffusers.UNet2DModel:
    return tiny_unet(3)


@pytest.mark.parametrize("stock_cls, fused_cls", [(diffusers.DDPMScheduler, FusedDDPMScheduler),
                                                   (diffusers.DDIMScheduler, FusedDDIMScheduler),
                                                   (diffusers.DPMSolverMultistepScheduler,
                                                    FusedDPMSolverMultistepScheduler)])
def test_swapped_scheduler_gives_the_same_images(unet3, stock_cls, fused_cls):
    """pipe.scheduler = Fused*.from_config(pipe.scheduler.config): a seed gives diffusers' own
    images."""
    pipe = diffusers.DDPMPipeline(unet=unet3, scheduler=stock_cls(num_train_timesteps=100))
    pipe.set_progress_bar_config(disable=True)
    stock = pipe(batch_size=2, generator=seeded(), num_inference_steps=STEPS, output_type="np").images
    pipe.scheduler = fused_cls.from_config(pipe.scheduler.config)
    assert isinstance(pipe.scheduler, fused_cls)
    fused = pipe(batch_size=2, generator=seeded(), num_inference_steps=STEPS, output_type="np").images
    np.testing.assert_allclose(fused, stock, atol=1e-5, rtol=1e-5)


def test_pipeline_with_fused_scheduler_round_trips(unet3, tmp_path):
    pipe = diffusers.DDPMPipeline(unet=unet3, scheduler=FusedDDIMScheduler(num_train_timesteps=100))
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["scheduler"] == ["gddm_kernels.diffusers.scheduling_ddim", "FusedDDIMScheduler"]
    loaded = diffusers.DDPMPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.scheduler) is FusedDDIMScheduler
    a = pipe(generator=seeded(), num_inference_steps=STEPS, output_type="np").images
    b = loaded(generator=seeded(), num_inference_steps=STEPS, output_type="np").images
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # weights reloaded exactly; summation order may differ


@pytest.mark.parametrize("domain, channels, reconstruction", [("gradient", 2, "dct"), ("gradient", 2, "multigrid"),
                                                              ("laplacian", 1, "dct"), ("image", 1, "dct")])
def test_gradient_domain_pipeline_samples_the_fields_images(domain, channels, reconstruction):
    """The pipeline's images are the reconstruction of the field that the same loop, written
    out by hand, samples (noise k N(0, I), scheduler steps, Poisson solve, mean image_mean)."""
    unet = tiny_unet(channels)
    scheduler = FusedDDPMScheduler(num_train_timesteps=50, domain=domain)
    pipe = GradientDomainPipeline(unet=unet, scheduler=scheduler, reconstruction=reconstruction, image_mean=0.2)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(batch_size=2, generator=seeded(3), num_inference_steps=STEPS, output_type="pt").images

    generator = seeded(3)
    field = torch.randn((2, channels, SIZE, SIZE), generator=generator) * scheduler.domain_scale
    scheduler.set_timesteps(STEPS)
    with torch.no_grad():
        for t in scheduler.timesteps:
            field = scheduler.step(unet(field, t).sample, t, field, generator=generator).prev_sample
    if domain == "gradient":
        expected = reconstruct(field.reshape(2, 1, 2, SIZE, SIZE), method="dct", mean=0.2)
    elif domain == "laplacian":
        expected = poisson_solve(field, method="dct", mean=0.2)
    else:
        expected = field
    expected = (expected / 2 + 0.5).clamp(0, 1)
    assert images.shape == (2, 1, SIZE, SIZE)
    atol = 1e-5 if reconstruction == "dct" else 1e-3  # multigrid: to its tolerance
    torch.testing.assert_close(images, expected, atol=atol, rtol=0)


def test_field_to_images_inverts_the_domain_operators():
    x = torch.rand(2, 3, 9, 7) * 2 - 1
    mean = x.mean(dim=(-2, -1), keepdim=True)
    grad = gradient(x).reshape(2, 6, 9, 7)  # the U-Net layout of (B, C, 2, H, W)
    for method in ("dct", "multigrid"):
        atol = 1e-5 if method == "dct" else 1e-3
        out = field_to_images(grad, "gradient", method, 0.0) + mean
        torch.testing.assert_close(out, x, atol=atol, rtol=0)
        out = field_to_images(laplacian(x), "laplacian", method, 0.0) + mean
        torch.testing.assert_close(out, x, atol=atol, rtol=0)


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_gradient_domain_pipeline_output_types(output_type):
    pipe = GradientDomainPipeline(unet=tiny_unet(6), scheduler=FusedDDIMScheduler(num_train_timesteps=50,
                                                                                   domain="gradient"))
    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=2, generator=seeded(), num_inference_steps=3, output_type=output_type)
    assert isinstance(out, diffusers.ImagePipelineOutput)
    images = out.images
    if output_type == "pil":
        assert len(images) == 2 and images[0].size == (SIZE, SIZE) and images[0].mode == "RGB"
    elif output_type == "np":
        assert images.shape == (2, SIZE, SIZE, 3) and images.min() >= 0 and images.max() <= 1
    else:
        assert images.shape == (2, 3, SIZE, SIZE)
    (tuple_images,) = pipe(batch_size=2, generator=seeded(), num_inference_steps=3, output_type="np",
                           return_dict=False)
    assert tuple_images.shape == (2, SIZE, SIZE, 3)


def test_gradient_domain_pipeline_round_trips(tmp_path):
    pipe = GradientDomainPipeline(unet=tiny_unet(2), reconstruction="multigrid", image_mean=-0.1,
                                  scheduler=FusedDPMSolverMultistepScheduler(num_train_timesteps=50, domain="gradient"))
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["reconstruction"] == "multigrid" and index["image_mean"] == -0.1
    loaded = GradientDomainPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.reconstruction == "multigrid" and loaded.config.image_mean == -0.1
    assert type(loaded.scheduler) is FusedDPMSolverMultistepScheduler and loaded.scheduler.config.domain == "gradient"
    a = pipe(generator=seeded(), num_inference_steps=STEPS, output_type="np").images
    b = loaded(generator=seeded(), num_inference_steps=STEPS, output_type="np").images
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # weights reloaded exactly; summation order may differ


def test_gradient_domain_pipeline_rejects_bad_setups():
    with pytest.raises(ValueError, match="`reconstruction` must be one of"):
        GradientDomainPipeline(unet=tiny_unet(2), scheduler=FusedDDPMScheduler(), reconstruction="fft")
    pipe = GradientDomainPipeline(unet=tiny_unet(3), scheduler=FusedDDPMScheduler(domain="gradient"))
    with pytest.raises(ValueError, match="2 C channels"):
        pipe(num_inference_steps=2)
    with pytest.raises(ValueError, match="`output_type` must be one of"):
        pipe(num_inference_steps=2, output_type="latent")
