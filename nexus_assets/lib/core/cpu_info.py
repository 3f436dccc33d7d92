"""What the CPU this process runs on can do, as named in benchmark output and engine choices.

Why one module: the embedding engines, the benchmarks and the README's figures all have to say
which kind of CPU a number came from (a Xeon with AMX, an EPYC with AVX-512, an AVX2-only machine),
and oneDNN's instruction-set paths (`ONEDNN_MAX_CPU_ISA`) are named from the same flags.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path

from nexus_assets.lib.core import hashing

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # x86 flags of native bf16 dot products

# oneDNN's ISA names (the values of ONEDNN_MAX_CPU_ISA), from the oldest to the newest, with the
# x86 flags each needs. A process may be capped to any of them that this CPU has.
ONEDNN_ISAS: tuple[tuple[str, frozenset[str]], ...] = (
    ("AVX2", frozenset({"avx2", "fma"})),
    ("AVX512_CORE", frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq"})),
    ("AVX512_CORE_VNNI", frozenset({"avx512_vnni"})),
    ("AVX512_CORE_BF16", frozenset({"avx512_bf16"})),
    ("AVX512_CORE_AMX", frozenset({"amx_tile", "amx_bf16", "amx_int8"})),
)


# x86 (family, model range) -> core generation, for the hosts this project runs on. A hypervisor may
# show only "AMD EPYC" as the model name: two such hosts with the same flags ran the bf16 engine 1.8x
# apart (2026-12-05 and -06; Zen 4 runs AVX-512 in two 256-bit halves, Zen 5 in one pass), so figures
# name the generation where it is known.
GENERATIONS: tuple[tuple[str, int, range, str], ...] = (
    ("AuthenticAMD", 23, range(0x00, 0x30), "Zen/Zen+"),
    ("AuthenticAMD", 23, range(0x30, 0x100), "Zen 2"),
    ("AuthenticAMD", 25, range(0x00, 0x10), "Zen 3"),
    ("AuthenticAMD", 25, range(0x10, 0x20), "Zen 4"),
    ("AuthenticAMD", 25, range(0x20, 0x60), "Zen 3"),
    ("AuthenticAMD", 25, range(0x60, 0x80), "Zen 4"),
    ("AuthenticAMD", 25, range(0xA0, 0xB0), "Zen 4c"),
    ("AuthenticAMD", 26, range(0x00, 0x100), "Zen 5"),
    ("GenuineIntel", 6, range(0x55, 0x56), "Skylake/Cascade Lake"),
    ("GenuineIntel", 6, range(0x6A, 0x6B), "Ice Lake"),
    ("GenuineIntel", 6, range(0x8F, 0x90), "Sapphire Rapids"),
    ("GenuineIntel", 6, range(0xCF, 0xD0), "Emerald Rapids"),
    ("GenuineIntel", 6, range(0xAD, 0xAE), "Granite Rapids"),
)


@cache
def _cpuinfo() -> tuple[str, frozenset[str], dict[str, str]]:
    """(model name, flags, the first processor's other fields) from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), frozenset(), {}
    model, flags, fields = "", frozenset[str](), dict[str, str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
        elif key and key not in fields:
            fields[key] = value.strip()
    return model or platform.machine(), flags, fields


def cpu_generation(fields: dict[str, str] | None = None) -> str:
    """Vendor, family and model numbers, with the core generation where known (e.g. "AuthenticAMD family
    25 model 17: Zen 4"); "" where /proc/cpuinfo does not say. `fields`: /proc/cpuinfo's, by default."""
    fields = _cpuinfo()[2] if fields is None else fields
    vendor = fields.get("vendor_id", "")
    try:
        family, model = int(fields["cpu family"]), int(fields["model"])
    except (KeyError, ValueError):
        return ""
    names = [name for v, f, models, name in GENERATIONS if (v, f) == (vendor, family) and model in models]
    return f"{vendor} family {family} model {model}" + (f": {names[0]}" if names else "")


def cpu_flags() -> frozenset[str]:
    """CPU feature flags as the kernel reports them (empty where /proc/cpuinfo does not exist)."""
    return _cpuinfo()[1]


def cpu_model() -> str:
    return _cpuinfo()[0]


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True where bf16 matrix products run in hardware: x86 AVX512-BF16/AMX, Arm's BF16 extension."""
    flags = cpu_flags() if flags is None else flags
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool(BF16_CPU_FLAGS & flags)


def cpu_kind(flags: frozenset[str] | None = None, model: str | None = None) -> str:
    """A short name of the CPU's class, as figures are reported: vendor, then its widest matrix path."""
    flags = cpu_flags() if flags is None else flags
    model = cpu_model() if model is None else model
    vendor = "Intel Xeon" if "xeon" in model.lower() else "AMD EPYC" if "epyc" in model.lower() else model
    if {"amx_tile", "amx_bf16"} <= flags:
        path = "AMX"
    elif "avx512_bf16" in flags:
        path = "AVX-512 with bf16, no AMX"
    elif "avx512f" in flags:
        path = "AVX-512, no bf16"
    elif "avx2" in flags:
        path = "AVX2 only"
    else:
        path = "no AVX2"
    return f"{vendor} ({path})"


def cpu_threads() -> int:
    """Cores this process may run on (the affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# Variables that keep the math libraries off instruction sets the CPU has (oneDNN, ATen, MKL): with one set,
# the same CPU computes like an older one, so what was measured without it does not hold.
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def isa_caps() -> str:
    """The instruction-set caps set in this process's environment, e.g. "ONEDNN_MAX_CPU_ISA=AVX2"."""
    return ",".join(f"{name}={os.environ[name]}" for name in ISA_CAP_VARIABLES if os.environ.get(name))


def cpu_identity() -> str:
    """A short digest that changes when the CPU model (or generation), its flags, the cores available or
    the instruction-set caps set in the environment change."""
    model, flags, _ = _cpuinfo()
    text = f"{platform.machine()}|{model}|{cpu_generation()}|{' '.join(sorted(flags))}|{cpu_threads()}|{isa_caps()}"
    return hashing.sha256_text(text, 16)


def onednn_isas(flags: frozenset[str] | None = None) -> list[str]:
    """The oneDNN ISA caps this CPU can run, oldest first (each includes the ones before it)."""
    flags = cpu_flags() if flags is None else flags
    have: list[str] = []
    for name, needs in ONEDNN_ISAS:
        if not needs <= flags:
            break
        have.append(name)
    return have
