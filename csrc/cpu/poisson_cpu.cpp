// CPU cosine-transform Poisson solve: one op (dct_solve). Small batches of small images
// (dct_direct_pays, csrc/poisson.h) by direct cosine sums in float64; the others by the
// reorder (optionally fused with the divergence of a gradient field), the FFTs, the spectral
// solve on the transposed spectrum, the transposition back to rows and the inverse reorder over
// cache-sized chunks of the batch; the spectral solve and the transposition are also ops of
// their own.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/fft_fft.h>
#include <ATen/ops/fft_ifft.h>
#include <ATen/ops/fft_irfft.h>
#include <ATen/ops/fft_rfft.h>
#include <c10/util/complex.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "../image_checks.h"
#include "../poisson.h"
#include "isa.h"
#include "parallel.h"

namespace gddm {
namespace {

// Twiddles cos and sin of pi p / 2N for p = 0 .. N/2, as two arrays (the column solve loads
// them lane by lane).
template <typename acc_t>
struct Twiddles {
  std::vector<acc_t> c, s;
  explicit Twiddles(int64_t N) : c(N / 2 + 1), s(N / 2 + 1) {
    for (int64_t p = 0; p <= N / 2; ++p) {
      const double angle = M_PI * double(p) / (2.0 * double(N));
      c[p] = acc_t(std::cos(angle));
      s[p] = acc_t(std::sin(angle));
    }
  }
};

// Images first .. first + count - 1 of batch `b` (x's data), times `scale` or the scaled
// divergence for a gradient field, in Makhoul's order along both dims, into the contiguous
// (count, H, W) buffer `out` of the arithmetic dtype.
void reorder_images(const at::Tensor& x, const ImageBatch& b, bool field, double scale, int64_t first,
                    int64_t count, at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    acc_t* o = out.mutable_data_ptr<acc_t>();
    const acc_t s = acc_t(scale);
    at::parallel_for(0, count * b.H, row_grain(b.W), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = first + r / b.H, m1 = r % b.H, i = dct_source(m1, b.H);
        const scalar_t* img = in + b.base(n);
        acc_t* orow = o + r * b.W;
        if (field) {
          for (int64_t m2 = 0; m2 < b.W; ++m2) {
            const int64_t j = dct_source(m2, b.W);
            orow[m2] = s * divergence_at<acc_t>(img + i * b.s_h + j * b.s_w, b.s_c, b.s_h, b.s_w, i, j, b.H, b.W);
          }
        } else {  // even columns ascending, then odd columns descending: two strided loops
          const scalar_t* row = img + i * b.s_h;
          const int64_t half = (b.W + 1) / 2;
          for (int64_t m2 = 0; m2 < half; ++m2) orow[m2] = s * acc_t(row[2 * m2 * b.s_w]);
          for (int64_t m2 = half; m2 < b.W; ++m2) orow[m2] = s * acc_t(row[(2 * (b.W - 1 - m2) + 1) * b.s_w]);
        }
      }
    });
  });
}

// The row pairs (p, H - p), p = 1 .. (H-1)/2, of one column from structure-of-arrays buffers:
// branch-free (the column's mirror flag is a template constant), so the loop vectorises.
template <typename acc_t, bool kColMirror>
GDDM_ALWAYS_INLINE void solve_mirrored_pairs(const acc_t* __restrict re, const acc_t* __restrict im, int64_t H,
                                             const acc_t* __restrict tp_c, const acc_t* __restrict tp_s,
                                             Twiddle<acc_t> tq, acc_t dc, acc_t* __restrict out_re,
                                             acc_t* __restrict out_im) {
  for (int64_t p = 1; p < (H + 1) / 2; ++p) {
    // Scalar loads first: GCC vectorises the loop only when no aggregate is built from memory.
    const acc_t a_re = re[p], a_im = im[p], b_re = re[H - p], b_im = im[H - p], c = tp_c[p], s = tp_s[p];
    Cplx<acc_t> za, zb;
    spectral_solve_pair<acc_t>({a_re, a_im}, {b_re, b_im}, {c, s}, tq, true, kColMirror, dc, za, zb);
    out_re[p] = za.re;
    out_im[p] = za.im;
    out_re[H - p] = zb.re;
    out_im[H - p] = zb.im;
  }
}

// One column q of the transposed spectrum (H values, contiguous) through spectral_solve_pair,
// in place, via structure-of-arrays buffers (work: 4 H values). Rows 0 and, for even H, H/2
// are their own mirrors and are done one by one.
template <typename acc_t>
GDDM_ALWAYS_INLINE void solve_column(Cplx<acc_t>* column, int64_t H, const acc_t* tp_c, const acc_t* tp_s,
                                     Twiddle<acc_t> tq, bool col_mirror, acc_t dc, acc_t* work) {
  acc_t *re = work, *im = work + H, *out_re = work + 2 * H, *out_im = work + 3 * H;
  for (int64_t p = 0; p < H; ++p) {
    re[p] = column[p].re;
    im[p] = column[p].im;
  }
  if (col_mirror) {
    solve_mirrored_pairs<acc_t, true>(re, im, H, tp_c, tp_s, tq, dc, out_re, out_im);
  } else {
    solve_mirrored_pairs<acc_t, false>(re, im, H, tp_c, tp_s, tq, dc, out_re, out_im);
  }
  const int64_t self_mirrored[2] = {0, H / 2};  // the second only for even H > 1
  for (int k = 0; k < ((H % 2 == 0 && H > 1) ? 2 : 1); ++k) {
    const int64_t p = self_mirrored[k];
    Cplx<acc_t> za, zb;
    spectral_solve_pair<acc_t>({re[p], im[p]}, {re[p], im[p]}, {tp_c[p], tp_s[p]}, tq, p > 0, col_mirror, dc, za,
                               zb);
    out_re[p] = za.re;
    out_im[p] = za.im;
  }
  for (int64_t p = 0; p < H; ++p) column[p] = {out_re[p], out_im[p]};
}

// The columns [begin, end) of a batch of transposed spectra (batch, Wh, H). Compiled per ISA:
// the pair loop is division-bound and gains the full vector width.
template <typename acc_t>
GDDM_ALWAYS_INLINE void solve_columns(Cplx<acc_t>* z, int64_t H, int64_t W, acc_t mean, int64_t begin, int64_t end) {
  const int64_t Wh = W / 2 + 1;
  const Twiddles<acc_t> t1(H), t2(W);
  std::vector<acc_t> work(4 * H);
  const acc_t dc = mean * acc_t(H) * acc_t(W);
  for (int64_t r = begin; r < end; ++r) {
    const int64_t q = r % Wh;
    solve_column<acc_t>(z + r * H, H, t1.c.data(), t1.s.data(), {t2.c[q], t2.s[q]}, q > 0, dc, work.data());
  }
}

GDDM_ISA_CLONES void solve_columns_f32(Cplx<float>* z, int64_t H, int64_t W, float mean, int64_t begin,
                                       int64_t end) {
  solve_columns<float>(z, H, W, mean, begin, end);
}

GDDM_ISA_CLONES void solve_columns_f64(Cplx<double>* z, int64_t H, int64_t W, double mean, int64_t begin,
                                       int64_t end) {
  solve_columns<double>(z, H, W, mean, begin, end);
}

void spectral_solve_columns_cpu(at::Tensor& spectrum_t, int64_t H, int64_t W, double mean) {
  const int64_t batch = check_spectrum_columns(spectrum_t, H, W), columns = batch * (W / 2 + 1);
  if (batch == 0) return;
  const int64_t grain = std::max<int64_t>(1, kGrainElements / H);
  if (spectrum_t.scalar_type() == at::kComplexDouble) {
    auto* z = reinterpret_cast<Cplx<double>*>(spectrum_t.mutable_data_ptr());
    at::parallel_for(0, columns, grain, [&](int64_t b, int64_t e) { solve_columns_f64(z, H, W, mean, b, e); });
  } else {
    TORCH_CHECK(spectrum_t.scalar_type() == at::kComplexFloat,
                "gddm_C::spectral_solve_columns_: expected complex64 or complex128");
    auto* z = reinterpret_cast<Cplx<float>*>(spectrum_t.mutable_data_ptr());
    at::parallel_for(0, columns, grain, [&](int64_t b, int64_t e) { solve_columns_f32(z, H, W, float(mean), b, e); });
  }
}

// (..., R, C) -> contiguous (..., C, R) in strips of kTransposeStrip source rows: a strip is
// swept column by column, so every store is kTransposeStrip adjacent values (a 64-byte cache
// line of complex64) while kTransposeStrip read streams advance together. Square tiles are
// 2-4x slower here: their power-of-two strides collide in the cache.
constexpr int64_t kTransposeStrip = 8;

at::Tensor spectrum_rows_cpu(const at::Tensor& spectrum_t) {
  TORCH_CHECK(spectrum_t.is_complex() && spectrum_t.is_contiguous() && spectrum_t.dim() >= 2,
              "gddm_C::spectrum_rows: expected a contiguous complex (..., W//2+1, H) tensor");
  const int64_t R = spectrum_t.size(-2), C = spectrum_t.size(-1);
  std::vector<int64_t> shape(spectrum_t.sizes().begin(), spectrum_t.sizes().end());
  std::swap(shape[shape.size() - 1], shape[shape.size() - 2]);
  at::Tensor out = at::empty(shape, spectrum_t.options());
  if (out.numel() == 0) return out;
  const int64_t batch = out.numel() / (R * C), strips = (R + kTransposeStrip - 1) / kTransposeStrip;
  AT_DISPATCH_COMPLEX_TYPES(spectrum_t.scalar_type(), "gddm_C", [&] {
    const scalar_t* in = spectrum_t.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, kGrainElements / (kTransposeStrip * C));
    at::parallel_for(0, batch * strips, grain, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / strips, r0 = (task % strips) * kTransposeStrip;
        const int64_t r1 = std::min(r0 + kTransposeStrip, R);
        const scalar_t* src = in + n * R * C;
        scalar_t* dst = o + n * R * C;
        for (int64_t c = 0; c < C; ++c) {
          for (int64_t r = r0; r < r1; ++r) dst[c * R + r] = src[r * C + c];
        }
      }
    });
  });
  return out;
}

// The reordered solutions v (count, H, W) (contiguous, arithmetic dtype) back in natural order
// into images first .. first + count - 1 of the contiguous (N, H, W) `out`.
void unreorder_images(const at::Tensor& v, int64_t first, at::Tensor& out) {
  const int64_t count = v.size(0), H = v.size(1), W = v.size(2);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(), "gddm_C", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t* in = v.const_data_ptr<acc_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>() + first * H * W;
    at::parallel_for(0, count * H, row_grain(W), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / H, m1 = r % H;
        const acc_t* vrow = in + r * W;
        scalar_t* orow = o + (n * H + dct_source(m1, H)) * W;
        const int64_t half = (W + 1) / 2;
        for (int64_t m2 = 0; m2 < half; ++m2) orow[2 * m2] = static_cast<scalar_t>(vrow[m2]);
        for (int64_t m2 = half; m2 < W; ++m2) orow[2 * (W - 1 - m2) + 1] = static_cast<scalar_t>(vrow[m2]);
      }
    });
  });
}

// ---- small images: direct cosine sums ----------------------------------------------------

// The tables of the direct solve of (H, W) images, float64: the DCT-II C_N[k, m] =
// cos(pi k (2m + 1) / 2N) as c_h (H, H) and c_w_t = C_W^T (W, W), the inverses as ci_h =
// C_H^{-1} (H, H) and ci_w_t = C_W^{-T} (W, W) (C_N^{-1} = C_N^T diag(1, 2, ..., 2) / N), and
// 1 / lambda (H, W) with 0 for the constants. Every cosine is one of cos(pi j / 2N), j < 4N.
struct CosineTables {
  std::vector<double> c_h, c_w_t, ci_h, ci_w_t, inv_lambda;

  // cos(pi j / 2N) for j = 0 .. 4N - 1.
  static std::vector<double> quarter_cosines(int64_t N) {
    std::vector<double> c(4 * N);
    for (int64_t j = 0; j < 4 * N; ++j) c[j] = std::cos(M_PI * double(j) / (2.0 * double(N)));
    return c;
  }

  CosineTables(int64_t H, int64_t W) : c_h(H * H), c_w_t(W * W), ci_h(H * H), ci_w_t(W * W), inv_lambda(H * W) {
    const std::vector<double> cos_h = quarter_cosines(H), cos_w = quarter_cosines(W);
    for (int64_t k = 0; k < H; ++k) {
      for (int64_t m = 0; m < H; ++m) {
        const double c = cos_h[(k * (2 * m + 1)) % (4 * H)];
        c_h[k * H + m] = c;
        ci_h[m * H + k] = c * (k == 0 ? 1.0 : 2.0) / double(H);
      }
    }
    for (int64_t k = 0; k < W; ++k) {
      for (int64_t m = 0; m < W; ++m) {
        const double c = cos_w[(k * (2 * m + 1)) % (4 * W)];
        c_w_t[m * W + k] = c;
        ci_w_t[k * W + m] = c * (k == 0 ? 1.0 : 2.0) / double(W);
      }
    }
    for (int64_t p = 0; p < H; ++p) {
      for (int64_t q = 0; q < W; ++q) {  // lambda = 0.25 (2 cos(pi p / H) - 2 + 2 cos(pi q / W) - 2)
        const double lambda = 0.25 * (2.0 * cos_h[2 * p] - 2.0 + 2.0 * cos_w[2 * q] - 2.0);
        inv_lambda[p * W + q] = (p == 0 && q == 0) ? 0.0 : 1.0 / lambda;
      }
    }
  }
};

// out (R, N) = a (R, K) b (K, N), all row-major; the inner loop runs along out's rows (an axpy
// per term, which vectorises without reassociating sums).
GDDM_ALWAYS_INLINE void matmul_rows(const double* a, const double* b, double* out, int64_t R, int64_t K, int64_t N) {
  for (int64_t r = 0; r < R; ++r) {
    double* o = out + r * N;
    std::fill(o, o + N, 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const double a_rk = a[r * K + k];
      const double* b_k = b + k * N;
      for (int64_t n = 0; n < N; ++n) o[n] += a_rk * b_k[n];
    }
  }
}

// One image f (H, W) of float64 solved in place by the cosine sums below (g: scratch of H W);
// compiled per ISA: the products are the whole cost.
GDDM_ISA_CLONES void solve_image_direct(const CosineTables& t, int64_t H, int64_t W, double mean, double* f,
                                        double* g) {
  matmul_rows(f, t.c_w_t.data(), g, H, W, W);   // g = f C_W^T
  matmul_rows(t.c_h.data(), g, f, H, H, W);     // f = C_H g: the spectrum
  for (int64_t k = 0; k < H * W; ++k) f[k] *= t.inv_lambda[k];
  f[0] += mean * double(H) * double(W);         // f[0] was 0 * sum: NaN stays NaN
  matmul_rows(f, t.ci_w_t.data(), g, H, W, W);  // g = Y Ci_W^T
  matmul_rows(t.ci_h.data(), g, f, H, H, W);    // f = Ci_H g: the solution
}

// The DCT solve of images by cosine sums in float64: u = Ci_H ((C_H f C_W^T) / lambda) Ci_W^T,
// the constants' coefficient 0 * sum(f) + H W mean (a NaN or Inf in f makes every value NaN, as
// on the FFT path). Per image: O(H W (H + W)) flops on four (H, W) buffers; at these sizes
// cheaper than the FFTs' setup.
void direct_solve(const at::Tensor& x, const ImageBatch& b, bool field, double scale, double mean, at::Tensor& out) {
  const int64_t H = b.H, W = b.W, images = b.batch();
  const CosineTables t(H, W);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "gddm_C", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, images, std::max<int64_t>(1, kGrainElements / (H * W)), [&](int64_t begin, int64_t end) {
      std::vector<double> work(2 * H * W);
      double *f = work.data(), *g = work.data() + H * W;
      for (int64_t n = begin; n < end; ++n) {
        const scalar_t* img = in + b.base(n);
        for (int64_t i = 0; i < H; ++i) {
          for (int64_t j = 0; j < W; ++j) {
            const scalar_t* p = img + i * b.s_h + j * b.s_w;
            f[i * W + j] = scale * (field ? divergence_at<double>(p, b.s_c, b.s_h, b.s_w, i, j, H, W) : double(*p));
          }
        }
        solve_image_direct(t, H, W, mean, f, g);
        scalar_t* u = o + n * H * W;
        for (int64_t k = 0; k < H * W; ++k) u[k] = static_cast<scalar_t>(f[k]);
      }
    });
  });
}

// ---- larger images: FFTs ------------------------------------------------------------------

// The FFT path of the DCT solve (gddm_kernels/_spectral.py): x (B0, B1, H, W), or a gradient
// field (B0, B1, 2, H, W) whose scaled divergence is solved (`field`), -> u (B0, B1, H, W) in
// x's dtype, written into `out`. The images go through in chunks of about kSolveChunkElements values, so that every
// intermediate of a chunk (reordered images, spectra, reordered solution) stays in cache and
// no batch-sized buffer but the output is allocated. Per chunk: reorder; rfft along rows and
// fft along columns, which the CPU FFT (MKL) leaves in the transposed (W//2+1, H) layout; the
// solve on columns; ifft along columns; one strip transposition back to rows; irfft along rows
// (MKL's c2r is 2.5x slower on transposed input, which is why irfft2 is not used); unreorder.
constexpr int64_t kSolveChunkElements = 1 << 17;

void fft_solve(const at::Tensor& x, const ImageBatch& b, bool field, double scale, double mean, at::Tensor& out) {
  const int64_t images = b.batch(), H = b.H, W = b.W;
  at::Tensor flat_out = out.view({images, H, W});
  const int64_t chunk = std::min(images, std::max<int64_t>(1, kSolveChunkElements / (H * W)));
  at::Tensor reordered = at::empty({chunk, H, W}, x.options().dtype(arithmetic_dtype(x.scalar_type())));
  for (int64_t first = 0; first < images; first += chunk) {
    const int64_t count = std::min(chunk, images - first);
    at::Tensor v = reordered.narrow(0, 0, count);
    reorder_images(x, b, field, scale, first, count, v);
    at::Tensor spectrum_t = at::fft_fft(at::fft_rfft(v, c10::nullopt, -1), c10::nullopt, -2).mT().contiguous();
    spectral_solve_columns_cpu(spectrum_t, H, W, mean);
    at::Tensor rows = spectrum_rows_cpu(at::fft_ifft(spectrum_t, c10::nullopt, -1).contiguous());
    unreorder_images(at::fft_irfft(rows, W, -1), first, flat_out);
  }
}

enum class SolvePath { kAuto, kFft, kDirect };

template <SolvePath kPath>
at::Tensor dct_solve_cpu(const at::Tensor& x, bool field, double scale, double mean) {
  const ImageBatch b = image_batch(x, field, "dct_solve");
  at::Tensor out = at::empty(image_shape(b), x.options().dtype(x.scalar_type()));
  if (out.numel() == 0) return out;
  if (kPath == SolvePath::kDirect || (kPath == SolvePath::kAuto && dct_direct_pays(b.batch(), b.H, b.W))) {
    direct_solve(x, b, field, scale, mean, out);
  } else {
    fft_solve(x, b, field, scale, mean, out);
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gddm_C, CPU, m) {
  m.impl("dct_solve", &dct_solve_cpu<SolvePath::kAuto>);
  m.impl("dct_solve_fft", &dct_solve_cpu<SolvePath::kFft>);
  m.impl("dct_solve_direct", &dct_solve_cpu<SolvePath::kDirect>);
  m.impl("spectral_solve_columns_", &spectral_solve_columns_cpu);
  m.impl("spectrum_rows", &spectrum_rows_cpu);
}

}  // namespace gddm
