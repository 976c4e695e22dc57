// Arithmetic of the cosine-transform (DCT) Poisson solve, shared by the CPU and CUDA kernels.
//
// The DCT-II diagonalises the Neumann `laplacian` (docs/design.md, "Poisson solve"):
//   X[p, q] = sum_{i,j} f[i, j] cos(pi p (2i+1) / 2H) cos(pi q (2j+1) / 2W),
//   laplacian <-> multiplication by lambda(p, q) = -(sin^2(pi p / 2H) + sin^2(pi q / 2W)).
// Makhoul's method computes it with one real FFT: reorder v[m] = f[dct_source(m)] along both
// dims, V = rfft2(v); then X[p,q] = 1/2 Re(w1(p) (w2(q) V[p,q] + conj(w2(q)) V[p,-q])) with
// w1(p) = exp(-i pi p / 2H), w2(q) = exp(-i pi q / 2W). The inverse runs the same way back:
// v = irfft2(Z), Z[p,q] = conj(w1(p) w2(q)) ((Y[p,q] - Y[H-p,W-q]) - i (Y[H-p,q] + Y[p,W-q]))
// with Y[H, .] = Y[., W] = 0, then f[dct_source(m)] = v[m].
// The solve divides by lambda in between: Y = X / lambda, Y[0,0] = mean * H * W.
//
// In the half spectrum of rfft2 (q <= W/2) every quantity of rows p and H-p at column q comes
// from the two stored values V[p, q] and V[(H-p) % H, q]: `spectral_solve_pair` maps those two
// to Z[p, q] and Z[H-p, q], so one pass over the spectrum, in place, does the whole middle step.
#pragma once

#include <algorithm>
#include <cstdint>

#include "stencils.h"

namespace gddm {

// The CPU solve takes a batch by direct cosine sums in float64 when their work, images * H * W *
// (H + W) multiply-adds, is at most this, else by FFTs, whose fixed cost the direct sums beat
// below it (measured on one thread: 1x8x8 3.5x faster, 1x16x16 2.6x, 48x8x8 1.2x, 1x32x32 on
// par, 48x16x16 2x slower; benchmarks/bench_multigrid.py's crossover suite). Exported to Python
// as gddm_kernels._C.DCT_DIRECT_MAX_WORK.
constexpr int64_t kDctDirectMaxWork = int64_t(1) << 16;

inline bool dct_direct_pays(int64_t images, int64_t H, int64_t W) {
  return H * W * (H + W) <= kDctDirectMaxWork / std::max<int64_t>(images, 1);
}

// Position in the original signal of element m of Makhoul's reordered signal (length N):
// even samples ascending, then odd samples descending.
GDDM_HD int64_t dct_source(int64_t m, int64_t N) {
  const int64_t half = (N + 1) / 2;
  return m < half ? 2 * m : 2 * (N - 1 - m) + 1;
}

// Inverse of dct_source: where original sample n sits in the reordered signal.
GDDM_HD int64_t dct_position(int64_t n, int64_t N) { return n % 2 == 0 ? n / 2 : N - 1 - n / 2; }

template <typename acc_t>
struct Cplx {
  acc_t re, im;
};

template <typename acc_t>
GDDM_HD Cplx<acc_t> conj(Cplx<acc_t> z) { return {z.re, -z.im}; }

// cos and sin of pi p / 2N: the DCT twiddle exp(-i pi p / 2N) is (c, -s). For index N - p
// they swap: (s, c).
template <typename acc_t>
struct Twiddle {
  acc_t c, s;
  GDDM_HD Twiddle mirrored() const { return {s, c}; }
};

// X[p, q] from A = V[p, q] and B = V[p, -q] and the twiddles of p and q.
template <typename acc_t>
GDDM_HD acc_t dct_coefficient(Cplx<acc_t> A, Cplx<acc_t> B, Twiddle<acc_t> tp, Twiddle<acc_t> tq) {
  const acc_t pr = tq.c * (A.re + B.re) + tq.s * (A.im - B.im);
  const acc_t pi = tq.c * (A.im + B.im) - tq.s * (A.re - B.re);
  return acc_t(0.5) * (tp.c * pr + tp.s * pi);
}

// conj(w1 w2) ((R) - i (I)) for the inverse transform.
template <typename acc_t>
GDDM_HD Cplx<acc_t> inverse_twiddle(acc_t R, acc_t I, Twiddle<acc_t> tp, Twiddle<acc_t> tq) {
  const acc_t cphi = tp.c * tq.c - tp.s * tq.s;  // cos(pi p/2H + pi q/2W)
  const acc_t sphi = tp.c * tq.s + tp.s * tq.c;
  return {cphi * R + sphi * I, sphi * R - cphi * I};
}

// Eigenvalue of the paper Laplacian for the basis function (p, q).
template <typename acc_t>
GDDM_HD acc_t laplacian_eigenvalue(Twiddle<acc_t> tp, Twiddle<acc_t> tq) {
  return -(tp.s * tp.s + tq.s * tq.s);
}

// The whole middle step of the solve for rows p and H-p at column q of the half spectrum:
// Va = V[p, q], Vb = V[(H-p) % H, q] in; Za = Z[p, q], Zb = Z[H-p, q] out (Zb unused for p=0).
// tp, tq: twiddles of p and q. row_mirror = p > 0 and col_mirror = q > 0 (an index equal to H
// or W holds no coefficient); at p = q = 0 the constants' coefficient is `dc` = mean * H * W
// instead of a division by the zero eigenvalue. Callers that know the flags (interior loops)
// pass constants, so the branches fold away and the loop vectorises.
template <typename acc_t>
GDDM_HD void spectral_solve_pair(Cplx<acc_t> Va, Cplx<acc_t> Vb, Twiddle<acc_t> tp, Twiddle<acc_t> tq,
                                 bool row_mirror, bool col_mirror, acc_t dc, Cplx<acc_t>& Za,
                                 Cplx<acc_t>& Zb) {
  const Twiddle<acc_t> tp_m = tp.mirrored(), tq_m = tq.mirrored();
  // Y = X / lambda at (p,q), (H-p,q), (p,W-q), (H-p,W-q).
  const acc_t y_pq = (row_mirror || col_mirror)
                         ? dct_coefficient(Va, conj(Vb), tp, tq) / laplacian_eigenvalue(tp, tq)
                         : dc;
  const acc_t y_mq = row_mirror ? dct_coefficient(Vb, conj(Va), tp_m, tq) / laplacian_eigenvalue(tp_m, tq) : acc_t(0);
  const acc_t y_pm = col_mirror ? dct_coefficient(conj(Vb), Va, tp, tq_m) / laplacian_eigenvalue(tp, tq_m) : acc_t(0);
  const acc_t y_mm = (row_mirror && col_mirror)
                         ? dct_coefficient(conj(Va), Vb, tp_m, tq_m) / laplacian_eigenvalue(tp_m, tq_m)
                         : acc_t(0);
  Za = inverse_twiddle(y_pq - y_mm, y_mq + y_pm, tp, tq);
  Zb = inverse_twiddle(y_mq - y_pm, y_pq + y_mm, tp_m, tq);
}

}  // namespace gddm
