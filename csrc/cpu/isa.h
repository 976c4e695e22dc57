// Instruction-set clones for the CPU kernels whose inner loops are compute-bound.
//
// The extension is compiled for the baseline x86-64 ISA (SSE2) so that it loads on any x86-64
// CPU. GDDM_ISA_CLONES makes GCC compile a function three times (AVX-512: x86-64-v4, AVX2+FMA:
// x86-64-v3, baseline) and pick one at load time from the running CPU (an ifunc), as ATen does
// for its own CPU kernels. Everything the function calls must be inlined into it to profit
// (GDDM_ALWAYS_INLINE). Results do not depend on the clone: the build turns off FMA
// contraction (-ffp-contract=off in setup.py) and the loops do not reassociate.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define GDDM_ISA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GDDM_ISA_CLONES
#endif

#define GDDM_ALWAYS_INLINE __attribute__((always_inline)) inline
