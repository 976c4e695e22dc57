"""Static performance report for Hopper (sm_90), from the compiled code alone (no GPU):

    python -m benchmarks.static_report [--out benchmarks/results] [--only NAME]

writes benchmarks/results/static-sm90.{json,md}. For every Triton kernel specialisation
(gddm_kernels.triton.aot: Triton's compiler and bundled ptxas, as a launch on contiguous float32
and bfloat16 data specialises it) and every CUDA kernel (csrc/cuda/*_kernels.cu compiled with
nvcc -arch=sm_90 -cubin -O3 -lineinfo, the flags of setup.py):

    registers per thread, spill bytes and shared memory   ptxas -v, cuobjdump --dump-resource-usage
    global load / store widths (LDG/STG by bits)         cuobjdump -sass
    theoretical occupancy                                 registers and block size, sm_90 limits
    bytes one launch must move at 16x3x1024x1024          a per-kernel traffic model (below)
    the time those bytes take at 4.3 TB/s                 the H200's measured copy rate

and checks the targets of a memory-bound kernel: no spills, occupancy >= 50%, 128-bit global
loads and stores on contiguous rows; a kernel that misses one gets its written reason (REASONS).
Nothing here is measured on a GPU. Run without TRITON_INTERPRET (Triton's interpreter replaces
the compiler). The CUDA part needs nvcc (CUDA_HOME or /usr/local/cuda); without it the report
says so.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NAME = "static-sm90"
ARCH = 90

# sm_90 (H100 / H200) per-SM limits.
REGS_PER_SM = 65536
THREADS_PER_SM = 2048
WARPS_PER_SM = 64
BLOCKS_PER_SM = 32
REG_ALLOC_UNIT = 256  # registers, allocated per warp
SHARED_PER_SM = 228 * 1024
SHARED_RESERVED_PER_BLOCK = 1024
MAX_REGS_PER_THREAD = 255

COPY_RATE = 4.3e12  # bytes/s: the H200's measured device-to-device copy rate
SHAPE = (16, 3, 1024, 1024)
OCCUPANCY_TARGET = 0.5

# Bytes one launch moves at SHAPE, in units of N = prod(SHAPE) elements: (reads, writes) per
# element, in elements of the data's dtype (e) or of float32 (f32) / complex64 (c64).
# Compulsory traffic only: each byte read or written once (neighbour re-reads hit L1/L2).
TRAFFIC_DOC = """Traffic model (compulsory bytes per launch, N = 16*3*1024*1024 elements, e = bytes per element of
the data's dtype): gradient N e in, 2 N e out; divergence 2 N e in, N e out; laplacian N e in, N e out;
dct_reorder N e (2 N e for a field) in, 4 N out (float32); spectral_solve the half spectrum
(N/2 complex64) in and out; dct_unreorder 4 N in, N e out; multigrid (float32) smooth (one colour)
u and f in, half of u out; residual_restrict u and f in, N/4 out; prolong_correct u in and out,
N/4 in; add_noise x0 (and given noise) in, x_t (and written noise) out; diffusion_step every given
tensor in, out (and x0) out."""


@dataclass
class Row:
    """One kernel specialisation of the report."""

    backend: str
    kernel: str
    variant: str
    dtype: str
    threads_per_block: int | None
    registers: int
    spill_bytes: int
    shared_bytes: int
    loads: dict = field(default_factory=dict)   # bits -> count of LDG instructions
    stores: dict = field(default_factory=dict)  # bits -> count of STG instructions
    occupancy: float | None = None
    bytes_per_launch: int | None = None
    time_us_at_copy_rate: float | None = None
    misses: list = field(default_factory=list)
    reason: str = ""


# ---- occupancy --------------------------------------------------------------------------------

def occupancy(registers: int, threads_per_block: int, shared_bytes: int = 0) -> float:
    """Theoretical occupancy (resident warps / 64) on sm_90 from registers, block size and
    shared memory."""
    warps = math.ceil(threads_per_block / 32)
    regs_per_warp = math.ceil(max(registers, 1) * 32 / REG_ALLOC_UNIT) * REG_ALLOC_UNIT
    by_regs = (REGS_PER_SM // regs_per_warp) // warps
    by_threads = THREADS_PER_SM // (warps * 32)
    by_shared = SHARED_PER_SM // (shared_bytes + SHARED_RESERVED_PER_BLOCK) if shared_bytes else BLOCKS_PER_SM
    blocks = min(by_regs, by_threads, by_shared, BLOCKS_PER_SM)
    return min(blocks * warps, WARPS_PER_SM) / WARPS_PER_SM


# ---- tools ------------------------------------------------------------------------------------

def _triton_tool(name: str) -> str:
    from triton.backends.nvidia.compiler import get_ptxas
    return str(Path(get_ptxas(ARCH).path).parent / name)


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return proc.stdout + proc.stderr


WIDTH = re.compile(r"\b(LDG|STG)((?:\.[A-Z0-9_]+)*)")


def access_widths(sass: str) -> tuple[dict, dict]:
    """LDG and STG instruction counts by access width in bits, from SASS text."""
    counts: tuple[dict, dict] = ({}, {})
    for op, suffix in WIDTH.findall(sass):
        parts = suffix.split(".")
        bits = 32
        for width in ("128", "64"):
            if width in parts:
                bits = int(width)
        if any(p in ("U16", "S16") for p in parts):
            bits = 16
        if any(p in ("U8", "S8") for p in parts):
            bits = 8
        target = counts[0] if op == "LDG" else counts[1]
        target[bits] = target.get(bits, 0) + 1
    return counts


def resources(cubin: Path) -> dict[str, dict[str, int]]:
    """Per function: REG, STACK, SHARED, LOCAL from cuobjdump --dump-resource-usage."""
    out = _run([_triton_tool("cuobjdump"), "--dump-resource-usage", str(cubin)])
    found, name = {}, None
    for line in out.splitlines():
        m = re.match(r"\s*Function (\S+):", line)
        if m:
            name = m.group(1)
        elif name and "REG:" in line:
            found[name] = {k: int(v) for k, v in re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", line)}
    return found


def spills(ptxas_log: str) -> dict[str, int]:
    """Per function: spill store + load bytes from a ptxas -v log."""
    found, name = {}, None
    for line in ptxas_log.splitlines():
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            name = m.group(1)
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and name:
            found[name] = int(m.group(1)) + int(m.group(2))
    return found


def sass_by_function(cubin: Path) -> dict[str, str]:
    out = _run([_triton_tool("cuobjdump"), "-sass", str(cubin)])
    parts = re.split(r"\n\s*Function : (\S+)\n", "\n" + out)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


# ---- traffic model ----------------------------------------------------------------------------

def _elements() -> int:
    return math.prod(SHAPE)


def traffic(kernel: str, esize: int, variant: dict) -> int | None:
    """Compulsory bytes of one launch at SHAPE (TRAFFIC_DOC); None for an unknown kernel."""
    n = _elements()
    base = kernel.strip("_").removesuffix("_kernel").removeprefix("mg_")
    if base == "gradient":
        return 3 * n * esize
    if base == "divergence":
        return 3 * n * esize
    if base == "laplacian":
        return 2 * n * esize
    if base == "dct_reorder":
        return (2 if variant.get("FIELD") else 1) * n * esize + 4 * n
    if base == "spectral_solve":
        return 2 * 8 * (n // SHAPE[-1]) * (SHAPE[-1] // 2 + 1)
    if base == "dct_unreorder":
        return 4 * n + n * esize
    if base == "smooth":
        return 4 * n + 4 * n + 2 * n
    if base == "residual_restrict":
        return 8 * n + n
    if base == "prolong_correct":
        return 8 * n + n
    if base == "add_noise":
        domain = variant.get("DOMAIN", 0)
        out = 2 if domain == 1 else 1
        noise = 2 if domain == 1 and not variant.get("EXACT", False) else 1
        given = noise if variant.get("GIVEN", False) else 0
        written = noise if variant.get("WRITE_NOISE", False) else 0
        return (1 + given + out + written) * n * esize
    if base in ("step", "diffusion_step"):
        has = {k: bool(variant.get(k)) for k in ("HAS_UNCOND", "HAS_M2", "HAS_PREV", "WRITE_X0")}
        ins = 2 + has["HAS_UNCOND"] + has["HAS_M2"] * (1 + has["HAS_UNCOND"]) + has["HAS_PREV"]
        ins += variant.get("NOISE", 0) == 1
        return (ins + 1 + has["WRITE_X0"]) * n * esize
    return None


# ---- targets ----------------------------------------------------------------------------------

REASONS = {
    "_dct_reorder_kernel": "Makhoul's reorder gathers every other element (stride 2, then reversed): the "
                           "reads cannot be contiguous vectors; the float32 writes are 128-bit",
    "_dct_unreorder_kernel": "the inverse gather (even/odd interleave) reads stride 2: scalar loads; the "
                             "writes are 128-bit",
    "_spectral_solve_kernel": "reads rows p and H-p of the half spectrum as separate real/imaginary "
                              "scalars and writes both rows in place: not a contiguous stream (64-bit "
                              "complex pairs would be the next step); 2 rows a program keep it at ~47 "
                              "registers (148 at 8 rows)",
    "_smooth_kernel": "red-black update: every other pixel of a row is written (stride-2 masks defeat "
                      "vector stores) and neighbours and cell widths are gathered; 2 rows a program "
                      "(40-46 registers, was 104-128 at 8 rows)",
    "_residual_restrict_kernel": "2x2 children with their 5-point operators per coarse pixel (stride-2 "
                                 "gathers); 1 row a program (69 registers, 44% occupancy, no spills; "
                                 "was 255 + 320 B of spills at 8 rows)",
    "_prolong_correct_kernel": "bilinear gathers from the coarse grid at data-dependent indices; rows "
                               "not divisible by 16 lose the 128-bit fine-grid accesses",
    "_add_noise_kernel": "generated noise: Philox4x32-10 + Box-Muller per element (per neighbour too in "
                         "the exact gradient/Laplacian domains) is compute- and register-heavy; launched "
                         "with 8 warps (4 pixels a thread: 128-bit float32, 64-bit bfloat16 accesses), "
                         "which halves the registers per thread at the cost of 16-48 B of spills in the "
                         "exact gradient/Laplacian variants. Given noise, exact Laplacian: a x + s eps at "
                         "five positions (ten loads a pixel) keeps 72-93 registers",
    "_step_kernel": "generated noise (NOISE=2): Philox per element is register-heavy; launched with 8 "
                    "warps (4 elements a thread: 128-bit float32, 64-bit bfloat16 accesses, 50% "
                    "occupancy instead of 25-31% at 4 warps); the 11 coefficients are scalar loads",
}
CUDA_ADVICE = ("one pixel per thread with 16-/32-bit accesses: to reach 128-bit, give each thread 4 "
               "(float32) or 8 (bfloat16) consecutive pixels of a row and load/store them as one "
               "float4 / uint4 when the row is 16-byte aligned (scalar tail otherwise)")


def judge(row: Row, memory_bound: bool = True) -> None:
    """Fill row.misses with the targets it misses."""
    if row.spill_bytes:
        row.misses.append(f"spills {row.spill_bytes} B")
    if row.occupancy is not None and row.occupancy < OCCUPANCY_TARGET:
        row.misses.append(f"occupancy {row.occupancy:.0%}")
    if memory_bound and row.dtype in ("fp32", "bf16"):
        if not row.loads.get(128):
            row.misses.append("no 128-bit loads")
        if not row.stores.get(128):
            row.misses.append("no 128-bit stores")


# ---- Triton -----------------------------------------------------------------------------------

def _dtype_of(signature: dict) -> str:
    """The data dtype of a launch: bf16 if any pointer is, else that of the first float pointer."""
    pointers = [str(t)[1:] for t in signature.values() if str(t).startswith("*fp") or str(t).startswith("*bf")]
    return "bf16" if "bf16" in pointers else (pointers[0] if pointers else "?")


def triton_rows(only: str | None, workdir: Path) -> list[Row]:
    from gddm_kernels.triton import aot

    rows = []
    for i, spec in enumerate(aot.compile_all(ARCH, only=only)):
        if spec.error:
            raise RuntimeError(f"{spec.name} does not compile for sm_{ARCH}:\n{spec.error}")
        compiled = spec.compiled
        cubin, ptx = workdir / f"triton{i}.cubin", workdir / f"triton{i}.ptx"
        cubin.write_bytes(compiled.asm["cubin"])
        ptx.write_text(compiled.asm["ptx"])
        log = _run([_triton_tool("ptxas"), "-v", f"--gpu-name=sm_{ARCH}a", str(ptx), "-o", str(workdir / "x.o")])
        name = compiled.metadata.name
        usage = resources(cubin)[name]
        loads, stores = access_widths(sass_by_function(cubin)[name])
        dtype = _dtype_of(spec.signature)
        threads = spec.num_warps * 32
        row = Row("triton", spec.kernel, spec.name[len(spec.kernel):], dtype, threads, usage["REG"],
                  spills(log).get(name, 0), compiled.metadata.shared, loads, stores)
        row.occupancy = occupancy(row.registers, threads, row.shared_bytes)
        row.bytes_per_launch = traffic(spec.kernel, 2 if dtype == "bf16" else 4, spec.constants)
        judge(row)
        if row.misses:
            row.reason = REASONS.get(spec.kernel, "")
        rows.append(row)
    return rows


# ---- CUDA -------------------------------------------------------------------------------------

CUDA_DTYPES = {"c10::BFloat16": "bf16", "c10::Half": "fp16", "double": "fp64", "float": "fp32"}


def _cuda_dtype(demangled: str) -> str:
    """The data dtype of a kernel instantiation: its narrowest floating template argument."""
    args = [a.strip() for a in demangled[demangled.find("<") + 1:demangled.find(">(")].split(",")]
    return next((dtype for name, dtype in CUDA_DTYPES.items() if name in args), "fp32")


def _demangle(names: list[str]) -> dict[str, str]:
    filt = shutil.which("c++filt")
    if not filt:
        return {n: n for n in names}
    out = subprocess.run([filt], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(names, out))


def _nvcc() -> str | None:
    home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    path = Path(home) / "bin" / "nvcc"
    return str(path) if path.exists() else shutil.which("nvcc")


def _block_threads(source: str, kernel: str) -> int | None:
    """Threads per block of `kernel`'s launch in `source` (its constants kBlockW/kBlockH/kThreads)."""
    consts = {k: int(v) for k, v in re.findall(r"constexpr\s+int(?:64_t)?\s+(\w+)\s*=\s*(\d+);", source)}
    m = re.search(rf"\b{kernel}\b(?:<[^<>]*>)?<<<[^,]+,\s*([^,]+?),", source)
    block = m.group(1).strip() if m else "dim3(kBlockW, kBlockH)"
    if block in consts:
        return consts[block]
    dims = re.match(r"dim3\((\w+)(?:,\s*(\w+))?\)", block)
    if dims and all(d is None or d in consts for d in dims.groups()):
        return math.prod(consts[d] for d in dims.groups() if d)
    if "kBlockW" in consts and "kBlockH" in consts:
        return consts["kBlockW"] * consts["kBlockH"]
    return None


def cuda_rows(only: str | None, workdir: Path) -> tuple[list[Row], str]:
    nvcc = _nvcc()
    if nvcc is None:
        return [], "nvcc not found: CUDA kernels not reported"
    import torch.utils.cpp_extension as cpp

    includes = [f"-I{p}" for p in cpp.include_paths()] + [f"-I{ROOT / 'csrc'}"]
    rows = []
    for cu in sorted((ROOT / "csrc" / "cuda").glob("*_kernels.cu")):
        source = cu.read_text()
        kernels = sorted(set(re.findall(r"__global__\s+void\s+(\w+)", source)))
        if only and not any(only in k for k in kernels):
            continue
        cubin = workdir / (cu.stem + ".cubin")
        log = _run([nvcc, f"-arch=sm_{ARCH}", "-cubin", "-O3", "-lineinfo", "-std=c++20", "-Xptxas", "-v",
                    *includes, "-o", str(cubin), str(cu)])
        usage, sass, spilled = resources(cubin), sass_by_function(cubin), spills(log)
        demangled = _demangle(list(usage))
        for mangled, res in usage.items():
            kernel = next((k for k in kernels if f"::{k}<" in demangled[mangled] or f"::{k}(" in demangled[mangled]),
                          None)
            if kernel is None or (only and only not in kernel):
                continue
            dtype = _cuda_dtype(demangled[mangled])
            if dtype not in ("fp32", "bf16"):
                continue
            threads = _block_threads(source, kernel)
            loads, stores = access_widths(sass.get(mangled, ""))
            row = Row("cuda", kernel, "", dtype, threads, res["REG"], spilled.get(mangled, 0), res["SHARED"],
                      loads, stores)
            row.occupancy = occupancy(row.registers, threads, row.shared_bytes) if threads else None
            row.bytes_per_launch = traffic(kernel, 2 if dtype == "bf16" else 4,
                                           {"DOMAIN": 0, "GIVEN": False, "WRITE_NOISE": False})
            judge(row)
            if row.misses:
                row.reason = "csrc/ change needed: " + CUDA_ADVICE
            rows.append(row)
    return rows, f"nvcc {nvcc}"


# ---- output -----------------------------------------------------------------------------------

def _widths(counts: dict) -> str:
    return " ".join(f"{bits}b:{n}" for bits, n in sorted(counts.items(), key=lambda kv: -int(kv[0]))) or "-"


def markdown(rows: list[Row], notes: list[str]) -> str:
    lines = [
        f"# Static performance report, sm_{ARCH} (H100/H200), from compiled code only",
        "",
        "Generated by `python -m benchmarks.static_report`; nothing here ran on a GPU. Registers, spills and "
        "shared memory from ptxas / cuobjdump; load/store widths count the LDG/STG instructions of the SASS "
        "by bits; occupancy is theoretical (65536 registers, 2048 threads, 64 warps, 32 blocks per SM, "
        "registers allocated per warp in units of 256). Bytes: the compulsory traffic of one launch at "
        f"{'x'.join(map(str, SHAPE))}; time: those bytes at {COPY_RATE / 1e12:.1f} TB/s.",
        "",
        *[f"- {note}" for note in notes],
        "",
        "| backend | kernel | variant | dtype | threads/block | regs | spill B | smem B | occupancy | LDG widths "
        "| STG widths | MB/launch | us at copy rate | misses | reason |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        occ = f"{r.occupancy:.0%}" if r.occupancy is not None else "?"
        mb = f"{r.bytes_per_launch / 1e6:.0f}" if r.bytes_per_launch else "?"
        us = f"{r.time_us_at_copy_rate:.0f}" if r.time_us_at_copy_rate else "?"
        lines.append(f"| {r.backend} | `{r.kernel}` | {r.variant.replace('|', '/')} | {r.dtype} | "
                     f"{r.threads_per_block} | {r.registers} | {r.spill_bytes} | {r.shared_bytes} | {occ} | "
                     f"{_widths(r.loads)} | {_widths(r.stores)} | {mb} | {us} | {'; '.join(r.misses) or 'none'} | "
                     f"{r.reason} |")
    lines += ["", TRAFFIC_DOC.replace("\n", " "), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of static-sm90.{json,md}")
    parser.add_argument("--only", help="only kernels whose name contains this (e.g. laplacian)")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("TRITON_INTERPRET=1 is set: the Triton compiler is replaced by its interpreter; unset it")
    with tempfile.TemporaryDirectory() as tmp:
        rows = triton_rows(args.only, Path(tmp))
        cuda, cuda_note = cuda_rows(args.only, Path(tmp))
    rows += cuda
    for row in rows:
        if row.bytes_per_launch:
            row.time_us_at_copy_rate = row.bytes_per_launch / COPY_RATE * 1e6
    notes = [f"Triton {__import__('triton').__version__}, target sm_{ARCH}a; CUDA: {cuda_note}"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.json").write_text(json.dumps(
        {"arch": ARCH, "shape": SHAPE, "copy_rate_bytes_per_s": COPY_RATE, "notes": notes,
         "rows": [asdict(r) for r in rows]}, indent=1))
    (args.out / f"{NAME}.md").write_text(markdown(rows, notes))
    print(markdown(rows, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
