"""What this machine's processor can do, for choices (precision) and reports (benches, runs)."""


def cpu_flags():
    """The CPU feature flags in /proc/cpuinfo, e.g. {"avx2", "avx512_bf16"} (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as file:
            return set(
                next(
                    (line.split(":", 1)[1].split() for line in file if line.startswith("flags")),
                    [],
                )
            )
    except OSError:
        return set()


def cpu_isa(flags=None):
    """A short description of the vector ISA that decides int8, bf16 and XLA speed.

    E.g. "AVX2 (no VNNI)", "AVX-512 + VNNI + BF16" or "AVX-512 + VNNI + BF16 + AMX";
    "unknown" where /proc/cpuinfo cannot be read.
    """
    flags = cpu_flags() if flags is None else set(flags)
    if not flags:
        return "unknown"
    parts = ["AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"]
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        parts.append("VNNI")
    if "avx512_bf16" in flags:
        parts.append("BF16")
    if "amx_bf16" in flags:
        parts.append("AMX")
    if len(parts) == 1:
        parts[0] += " (no VNNI)"
    return " + ".join(parts)


def bfloat16_pays(flags=None, jit_compile=False):
    """True where mixed_bfloat16 trains faster than float32 on this CPU.

    oneDNN runs bf16 convolutions on AMX tiles and on AVX512-BF16 (VDPBF16PS);
    without either it emulates them, slower than float32. On a 2-core AMD EPYC
    with AVX512-BF16 and no AMX (TensorFlow 2.21, oneDNN on, no XLA) the mobile
    preset's step took 0.107 s in bf16 against 0.180 s in float32, 1.68x
    (`bench/bench_campaign_step.py`); the issue's Intel AMX machine measured
    1.6x. XLA's CPU backend compiles convolutions itself rather than through
    oneDNN and gains nothing from bf16 without AMX (0.98x on the same CPU, in a
    run where the step without XLA gained 2.35x), which is what an earlier
    measurement, taken while the mobile preset still compiled with XLA, saw
    (0.174 against 0.176 s).

    Args:
        flags: iterable of str or None. CPU flags; None reads this machine's.
        jit_compile: bool. Whether the step is XLA-compiled. Defaults to False.
    """
    flags = cpu_flags() if flags is None else set(flags)
    if "amx_bf16" in flags:
        return True
    return "avx512_bf16" in flags and not jit_compile
