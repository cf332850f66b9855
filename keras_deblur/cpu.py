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


def has_amx(flags=None):
    """True where the CPU has AMX bf16 tiles: there mixed_bfloat16 trains ~1.6x faster.

    AVX512-BF16 alone is not enough: on an AMD AVX512-BF16 CPU the mobile
    generator's step took 0.174 s in bf16 and 0.176 s in float32.
    """
    return "amx_bf16" in (cpu_flags() if flags is None else set(flags))
