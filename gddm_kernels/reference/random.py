"""The in-kernel random numbers, in plain PyTorch: the executable specification of
`normal_at` in csrc/diffusion.h (and its Triton twin).

Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011) with key =
the 64-bit seed as two 32-bit words and counter = (element index as two 32-bit words, 0, 0);
its first two outputs become two uniforms, u1 = (r0 + 1) 2^-32 in (0, 1] and u2 = r1 2^-32,
and one standard normal by Box-Muller: sqrt(-2 ln u1) cos(2 pi u2). So the noise at an
element depends only on (seed, flat index): reproducible for a seed, independent of how a
kernel splits its work, and the same on every backend up to the rounding of log/cos.

32-bit words live in int64 tensors; products of two words are split so they never overflow.
"""

import math

import torch
from torch import Tensor

MASK32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
PHILOX_ROUNDS = 10
TWO_TO_MINUS_32 = 2.0**-32


def _mul_hi_lo(a: int, b: Tensor) -> tuple[Tensor, Tensor]:
    """High and low 32-bit words of the 64-bit product a * b (a a constant word, b words)."""
    a_hi, a_lo = a >> 16, a & 0xFFFF
    lo_part = a_lo * b  # < 2^48
    hi = (a_hi * b + (lo_part >> 16)) >> 16
    lo = ((((a_hi * b) & 0xFFFF) << 16) + lo_part) & MASK32
    return hi & MASK32, lo


def philox_pair(index: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """The first two 32-bit outputs of Philox4x32-10 at counter (index, 0, 0) for key `seed`."""
    c0, c1 = index & MASK32, (index >> 32) & MASK32
    c2 = torch.zeros_like(index)
    c3 = torch.zeros_like(index)
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    for _ in range(PHILOX_ROUNDS):
        hi0, lo0 = _mul_hi_lo(PHILOX_M0, c0)
        hi1, lo1 = _mul_hi_lo(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    return c0, c1


def normal(seed: int, shape: tuple[int, ...], device: torch.device | str = "cpu") -> Tensor:
    """Standard normals at the flat indices 0 .. numel-1 of `shape`, float32."""
    index = torch.arange(math.prod(shape), dtype=torch.int64, device=device)
    r0, r1 = philox_pair(index, seed)
    u1 = (r0.float() + 1.0) * TWO_TO_MINUS_32
    u2 = r1.float() * TWO_TO_MINUS_32
    return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * math.pi * u2)).reshape(shape)
