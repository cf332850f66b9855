import pytest

from keras_deblur import cpu, train

AVX2 = {"fpu", "sse4_2", "avx", "avx2", "fma"}
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512_vnni", "avx_vnni"}
AVX512_BF16 = AVX512 | {"avx512_bf16"}
AMX = AVX512_BF16 | {"amx_tile", "amx_bf16", "amx_int8"}


@pytest.mark.parametrize(
    "flags, isa",
    [
        (AVX2, "AVX2 (no VNNI)"),
        (AVX512, "AVX-512 + VNNI"),
        (AVX512_BF16, "AVX-512 + VNNI + BF16"),
        (AMX, "AVX-512 + VNNI + BF16 + AMX"),
        (set(), "unknown"),
    ],
)
def test_cpu_isa_names_the_extensions(flags, isa):
    assert cpu.cpu_isa(flags) == isa


@pytest.mark.parametrize(
    "flags, eager, compiled",
    [
        (AVX2, False, False),  # bf16 emulated: slower than float32
        (AVX512, False, False),
        (AVX512_BF16, True, False),  # oneDNN's VDPBF16PS, which XLA does not use
        (AMX, True, True),
    ],
)
def test_bfloat16_pays_on_amx_and_on_avx512_bf16_without_xla(flags, eager, compiled):
    assert cpu.bfloat16_pays(flags) is eager
    assert cpu.bfloat16_pays(flags, jit_compile=True) is compiled


@pytest.mark.parametrize(
    "flags, jit_compile, policy",
    [
        (AVX2, False, "float32"),
        (AVX512_BF16, False, "mixed_bfloat16"),
        (AVX512_BF16, True, "float32"),
        (AMX, True, "mixed_bfloat16"),
    ],
)
def test_auto_precision_follows_the_cpu_flags(monkeypatch, flags, jit_compile, policy):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: set(flags))
    monkeypatch.setattr(train, "cpu_flags", lambda: set(flags))
    chosen, reason = train.resolve_precision("auto", jit_compile=jit_compile)
    assert chosen == policy
    assert reason.startswith(f"auto: CPU {cpu.cpu_isa(flags)}")
    assert train.resolve_precision("float32", jit_compile=jit_compile) == ("float32", "asked for")
