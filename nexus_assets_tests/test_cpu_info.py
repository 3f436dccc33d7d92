"""How figures and engine choices name a CPU: its class by flags, its generation by family and model."""

import pytest

from nexus_assets.lib.core.cpu_info import (
    ISA_CAP_VARIABLES,
    cpu_generation,
    cpu_identity,
    cpu_kind,
    isa_caps,
    onednn_isas,
)

AVX512 = frozenset({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"})


def test_the_class_of_a_cpu_is_its_widest_matrix_path() -> None:
    assert cpu_kind(AVX512 | {"amx_tile", "amx_bf16", "amx_int8", "avx512_bf16"}, "Intel(R) Xeon(R) Platinum") == (
        "Intel Xeon (AMX)"
    )
    assert cpu_kind(AVX512 | {"avx512_bf16"}, "AMD EPYC") == "AMD EPYC (AVX-512 with bf16, no AMX)"
    assert cpu_kind(frozenset({"avx2", "fma"}), "AMD EPYC 7B13") == "AMD EPYC (AVX2 only)"
    assert onednn_isas(frozenset({"avx2", "fma"})) == ["AVX2"]


def test_the_generation_tells_apart_cpus_a_hypervisor_names_alike() -> None:
    """Two hosts both shown as "AMD EPYC" with the same bf16 flags ran the bf16 engine 1.8x apart."""

    def generation(vendor: str, family: int, model: int) -> str:
        return cpu_generation({"vendor_id": vendor, "cpu family": str(family), "model": str(model)})

    assert generation("AuthenticAMD", 25, 17) == "AuthenticAMD family 25 model 17: Zen 4"
    assert generation("AuthenticAMD", 25, 1).endswith(": Zen 3")
    assert generation("AuthenticAMD", 26, 2).endswith(": Zen 5")
    assert generation("GenuineIntel", 6, 143).endswith(": Sapphire Rapids")
    assert generation("GenuineIntel", 6, 999) == "GenuineIntel family 6 model 999", "unknown: numbers, no guess"
    assert cpu_generation({}) == "", "no /proc/cpuinfo fields: nothing claimed"


def test_an_instruction_set_cap_in_the_environment_makes_another_cpu_for_cached_measurements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine choice is cached by `cpu_identity`: a choice measured on AMX must not be reused by a
    process whose math libraries were capped to AVX2, where that engine may not even load."""
    for name in ISA_CAP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    plain = cpu_identity()
    assert isa_caps() == "" and cpu_identity() == plain
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert isa_caps() == "ONEDNN_MAX_CPU_ISA=AVX2"
    capped = cpu_identity()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert len({plain, capped, cpu_identity()}) == 3
