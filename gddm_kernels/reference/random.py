"""The in-kernel random numbers, in plain PyTorch: the executable specification of
`normal4` / `normal_at` in csrc/diffusion.h (and their Triton twin).

Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011) with key =
the 64-bit seed as two 32-bit words. Element `index` belongs to group index // 4, whose
counter is (group as two 32-bit words, 0, 0); the group's four outputs (r0, r1, r2, r3) make
two Box-Muller pairs: with u1 = ((r >> 8) + 1) 2^-24 in (0, 1] and u2 = (r' >> 8) 2^-24,
    normal 4g + 2p     = sqrt(-2 ln u1) cos(2 pi u2)     (u1, u2 from r_{2p}, r_{2p+1})
    normal 4g + 2p + 1 = sqrt(-2 ln u1) sin(2 pi u2).
So the noise at an element depends only on (seed, flat index): reproducible for a seed,
independent of how a kernel splits its work, and the same on every backend up to the
rounding of log/cos/sin.

32-bit words live in int64 tensors; products of two words are split so they never overflow.
"""

import math

import torch
from torch import Tensor

MASK32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
PHILOX_ROUNDS = 10
TWO_TO_MINUS_24 = 2.0**-24
NORMALS_PER_GROUP = 4


def _mul_hi_lo(a: int, b: Tensor) -> tuple[Tensor, Tensor]:
    """High and low 32-bit words of the 64-bit product a * b (a a constant word, b words)."""
    a_hi, a_lo = a >> 16, a & 0xFFFF
    lo_part = a_lo * b  # < 2^48
    hi = (a_hi * b + (lo_part >> 16)) >> 16
    lo = ((((a_hi * b) & 0xFFFF) << 16) + lo_part) & MASK32
    return hi & MASK32, lo


def philox4(group: Tensor, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Philox4x32-10 at counter (group, 0, 0) for key `seed`: four 32-bit words per group."""
    c0, c1 = group & MASK32, (group >> 32) & MASK32
    c2 = torch.zeros_like(group)
    c3 = torch.zeros_like(group)
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    for _ in range(PHILOX_ROUNDS):
        hi0, lo0 = _mul_hi_lo(PHILOX_M0, c0)
        hi1, lo1 = _mul_hi_lo(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    return c0, c1, c2, c3


def normal(seed: int, shape: tuple[int, ...], device: torch.device | str = "cpu") -> Tensor:
    """Standard normals at the flat indices 0 .. numel-1 of `shape`, float32."""
    numel = math.prod(shape)
    groups = torch.arange((numel + NORMALS_PER_GROUP - 1) // NORMALS_PER_GROUP, dtype=torch.int64, device=device)
    r = philox4(groups, seed)
    normals = []
    for pair in range(2):
        u1 = ((r[2 * pair] >> 8).float() + 1.0) * TWO_TO_MINUS_24
        u2 = (r[2 * pair + 1] >> 8).float() * TWO_TO_MINUS_24
        rho = torch.sqrt(-2.0 * torch.log(u1))
        normals += [rho * torch.cos(2 * math.pi * u2), rho * torch.sin(2 * math.pi * u2)]
    return torch.stack(normals, dim=1).flatten()[:numel].reshape(shape)
