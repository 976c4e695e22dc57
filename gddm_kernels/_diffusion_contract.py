"""Facts shared by the diffusion maths, the fused diffusion kernels and their callers, each
written once. The C++ side (csrc/diffusion.h: `enum Domain`, `enum StepCoef`) must agree with
DOMAIN_CODES and STEP_COEFS; tests/test_contract.py parses the header and checks it, and the
Triton kernels index their tables through these names.

Domains and noise scales (Gong 2023, eqs. 14 and 21): in a domain with scale k the forward
process is x_t = sqrt(g) D(x_0) + k sqrt(1 - g) eps, D the domain's operator (identity,
gradient, laplacian), k chosen so that k eps has the variance of D applied to white noise
away from the border.

The generic affine step that every sampler reduces to (one row of STEP_COEFS per sample):

    x0  = clip(a0 x + a1 m)
    eps = e0 x + e1 m + e2 x0 + e3 m2
    D   = x0 + r (x0 - prev_x0)
    out = c0 x + c1 D + c2 eps + c3 z
"""

import math

import torch

DOMAINS = ("image", "gradient", "laplacian")
DOMAIN_CODES = {name: code for code, name in enumerate(DOMAINS)}  # csrc/diffusion.h `enum Domain`
DOMAIN_SCALES = {"image": 1.0, "gradient": math.sqrt(2.0), "laplacian": math.sqrt(5.0) / 2}
NOISE_MODELS = ("paper", "exact")
PREDICTION_TYPES = ("eps", "x0", "v")
ATTENUATION_PREDICTION_TYPES = ("c", "x0")
# Column order of the per-sample step-coefficient table (B, len(STEP_COEFS)); csrc/diffusion.h
# `enum StepCoef` lists the same names as kA0, kA1, ...
STEP_COEFS = ("a0", "a1", "e0", "e1", "e2", "e3", "r", "c0", "c1", "c2", "c3")
STEP_COEF_INDEX = {name: i for i, name in enumerate(STEP_COEFS)}
# Codes of the compiled samplers (csrc/step_coefs.h `enum Sampler`, `enum Prediction`).
SAMPLER_CODES = {"ddpm": 0, "ddim": 1, "dpm": 2, "attenuation": 3}
PREDICTION_CODES = {"eps": 0, "x0": 1, "v": 2}
ATTENUATION_PREDICTION_CODES = {"c": 0, "x0": 1}
NOISE_COEFS = ("signal", "spread")  # columns of the noise-add table (B, 2): x_t = a D(x0) + s eps


def noise_shape(x0_shape: torch.Size, domain: str, exact: bool) -> tuple[int, ...]:
    """Shape of the standard normal a noise-add consumes: the field's (..., 2, H, W) for the
    gradient domain's paper model, the image's otherwise."""
    if domain == "gradient" and not exact:
        return (*x0_shape[:-2], 2, *x0_shape[-2:])
    return tuple(x0_shape)


def output_shape(x0_shape: torch.Size, domain: str) -> tuple[int, ...]:
    """Shape of x_t for images x0 of shape (..., H, W): the gradient domain's field, else x0's."""
    if domain == "gradient":
        return (*x0_shape[:-2], 2, *x0_shape[-2:])
    return tuple(x0_shape)
