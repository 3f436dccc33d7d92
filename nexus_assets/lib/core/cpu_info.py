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


@cache
def _cpuinfo() -> tuple[str, frozenset[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    model, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return model or platform.machine(), flags


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


def cpu_identity() -> str:
    """A short digest that changes when the CPU model, its flags or the cores available change."""
    model, flags = _cpuinfo()
    text = f"{platform.machine()}|{model}|{' '.join(sorted(flags))}|{cpu_threads()}"
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
