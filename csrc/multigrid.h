// Arithmetic of the geometric multigrid stages, shared by the CPU and CUDA kernels; the
// reference is gddm_kernels/reference/multigrid.py (cell-centred finite volumes).
//
// A level is an H x W grid of cells with widths wy[i] (rows) and wx[j] (columns); on the finest
// level all widths are 1. Its operator, in integrated form, is
//   (L u)[i, j] = sum over the faces of cell (i, j) of T_face * (u[neighbour] - u[i, j]),
//   T = 1/4 * (face length) / (distance between the two cell centres),
// with no face on the image boundary (Neumann); on the finest level L == laplacian. The
// diagonal d[i, j] = sum of the cell's T is what a Gauss-Seidel update divides by.
#pragma once

#include <cstdint>

#include "stencils.h"

namespace gddm {

template <typename acc_t>
GDDM_HD acc_t face_coefficient(acc_t length, acc_t width_a, acc_t width_b) {
  return acc_t(0.5) * length / (width_a + width_b);  // 1/4 * length / ((width_a + width_b) / 2)
}

// (L u)[i, j] and d[i, j] for a contiguous image u with rows of length W.
template <typename acc_t>
GDDM_HD void apply_operator_at(const acc_t* u, const acc_t* wy, const acc_t* wx, int64_t i, int64_t j,
                               int64_t H, int64_t W, acc_t& Lu, acc_t& diagonal) {
  const acc_t c = u[i * W + j];
  acc_t sum = acc_t(0), d = acc_t(0);
  if (i > 0) {
    const acc_t t = face_coefficient(wx[j], wy[i - 1], wy[i]);
    sum += t * (u[(i - 1) * W + j] - c);
    d += t;
  }
  if (i + 1 < H) {
    const acc_t t = face_coefficient(wx[j], wy[i], wy[i + 1]);
    sum += t * (u[(i + 1) * W + j] - c);
    d += t;
  }
  if (j > 0) {
    const acc_t t = face_coefficient(wy[i], wx[j - 1], wx[j]);
    sum += t * (u[i * W + j - 1] - c);
    d += t;
  }
  if (j + 1 < W) {
    const acc_t t = face_coefficient(wy[i], wx[j], wx[j + 1]);
    sum += t * (u[i * W + j + 1] - c);
    d += t;
  }
  Lu = sum;
  diagonal = d;
}

// Gauss-Seidel update of one cell: the value that zeroes its residual, u - (f - L u) / d.
template <typename acc_t>
GDDM_HD acc_t gauss_seidel_at(const acc_t* u, acc_t f, const acc_t* wy, const acc_t* wx, int64_t i,
                              int64_t j, int64_t H, int64_t W) {
  acc_t Lu, d;
  apply_operator_at(u, wy, wx, i, j, H, W, Lu, d);
  const acc_t c = u[i * W + j];
  return d > acc_t(0) ? c - (f - Lu) / d : c;
}

// Coarse right-hand side at coarse cell (I, J): the residual f - L u summed over its (up to
// 2 x 2) children.
template <typename acc_t>
GDDM_HD acc_t residual_restrict_at(const acc_t* u, const acc_t* f, const acc_t* wy, const acc_t* wx,
                                   int64_t I, int64_t J, int64_t H, int64_t W) {
  acc_t sum = acc_t(0);
  for (int64_t i = 2 * I; i < 2 * I + 2 && i < H; ++i) {
    for (int64_t j = 2 * J; j < 2 * J + 2 && j < W; ++j) {
      acc_t Lu, d;
      apply_operator_at(u, wy, wx, i, j, H, W, Lu, d);
      sum += f[i * W + j] - Lu;
    }
  }
  return sum;
}

// Separable linear interpolation of the coarse correction e (rows of length Wc) at fine cell
// (i, j): along each axis, (1 - w[n]) * e[lo[n]] + w[n] * e[hi[n]].
template <typename acc_t>
GDDM_HD acc_t prolongation_at(const acc_t* e, int64_t Wc, const int64_t* lo_y, const int64_t* hi_y,
                              const acc_t* w_y, const int64_t* lo_x, const int64_t* hi_x, const acc_t* w_x,
                              int64_t i, int64_t j) {
  const acc_t wy = w_y[i], wx = w_x[j];
  const acc_t* row_lo = e + lo_y[i] * Wc;
  const acc_t* row_hi = e + hi_y[i] * Wc;
  const acc_t at_lo = (acc_t(1) - wx) * row_lo[lo_x[j]] + wx * row_lo[hi_x[j]];
  const acc_t at_hi = (acc_t(1) - wx) * row_hi[lo_x[j]] + wx * row_hi[hi_x[j]];
  return (acc_t(1) - wy) * at_lo + wy * at_hi;
}

}  // namespace gddm
