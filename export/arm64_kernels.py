"""Exported models on LiteRT's ARM64 kernels, emulated: the phone's arithmetic on this machine.

    python -m export.arm64_kernels --model out/generator_int8_256x256.tflite \\
        --cpu cortex-a76 --cpu max,sme=off

On a phone (ARM64) XNNPACK runs other kernels than on x86: NEON with dot
products (ARMv8.2), i8mm and SVE (ARMv8.6+), SME matrix tiles (ARMv9). This
module runs a `.tflite` on those kernels without a phone: Debian bookworm's
arm64 Python 3.11 and the aarch64 wheels of the LiteRT and numpy versions
installed here, unpacked into a sysroot (`build_sysroot`, built once into a
cache folder and reused), run by `qemu-aarch64` (Debian's `qemu-user`) as a
chosen CPU model, and compares the outputs with this machine's LiteRT on the
same file, in 8-bit output levels.

XNNPACK reads `/proc/cpuinfo` at start-up and crashes on an x86 one, so each
run sees an ARM one, bind-mounted in a private mount namespace (`unshare
--mount`: root, or a user allowed to make mount namespaces); the instruction
sets it picks come from the hardware capabilities qemu reports for the CPU
model, the cpuinfo only names the core.

Needs: a Debian host with apt-get and dpkg (the arm64 packages are downloaded
with the host's package sources and unpacked, never installed), pip, and
qemu-aarch64. `emulation_problem()` says in one line what is missing.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import numpy as np

PYTHON_VERSION = "3.11"
# Debian bookworm's Python 3.11 and the shared libraries that it, numpy's and
# LiteRT's wheels load (manylinux wheels take libstdc++ and libgcc from the system).
DEBIAN_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "libgcc-s1",
    "libstdc++6",
    "zlib1g",
    "libexpat1",
    "libffi8",
    "libssl3",
    "libbz2-1.0",
    "liblzma5",
    "libcrypt1",
    "libuuid1",
)
# The runtime is this host's LiteRT and numpy at their installed versions, so
# the x86 and the ARM64 run differ only in their kernels.
WHEELS = ("ai-edge-litert", "numpy")
# Every manylinux tag that bookworm's glibc 2.36 runs (older pips do not
# widen one --platform to the older tags).
WHEEL_PLATFORMS = ("manylinux2014_aarch64", *(f"manylinux_2_{m}_aarch64" for m in range(17, 37)))
# MIDR_EL1 of qemu's CPU models: Arm's own for its cores, "reserved for
# software, part 'Q'" for max.
CPU_MIDRS = {"cortex-a76": 0x414FD0B1, "neoverse-n1": 0x414FD0C1, "max": 0x000F0510}
# ARMv8.2 with dot products (most phones since 2019), and ARMv8.6+ with SVE2
# and i8mm but without SME.
DEFAULT_CPUS = ("cortex-a76", "max,sme=off")
_STAMP = "keras_deblur_sysroot.json"
_RUNNER = Path(__file__).with_name("arm64_runner.py")


class EmulationUnavailable(RuntimeError):
    """One line: why ARM64 emulation cannot run on this machine."""


def default_cache_dir():
    """`$XDG_CACHE_HOME/keras-deblur/arm64-sysroot` (`~/.cache/...` without it)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "keras-deblur" / "arm64-sysroot"


def cpuinfo_text(cpu, processors=None):
    """A Linux ARM64 `/proc/cpuinfo` naming the core of a qemu `-cpu` model.

    Args:
        cpu: str. A qemu CPU model with options, e.g. `"max,sme=off"`; the
            model (before the first comma) must be in `CPU_MIDRS`.
        processors: int. Processor entries. Defaults to this machine's count.
    """
    model = cpu.split(",")[0]
    if model not in CPU_MIDRS:
        raise ValueError(f"unknown CPU model {model!r}: expected one of {sorted(CPU_MIDRS)}")
    midr = CPU_MIDRS[model]
    entry = (
        "processor\t: {index}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm cpuid\n"
        f"CPU implementer\t: 0x{midr >> 24:02x}\nCPU architecture: 8\n"
        f"CPU variant\t: 0x{midr >> 20 & 0xF:x}\nCPU part\t: 0x{midr >> 4 & 0xFFF:03x}\n"
        f"CPU revision\t: {midr & 0xF}\n\n"
    )
    return "".join(entry.format(index=i) for i in range(processors or os.cpu_count() or 1))


def _namespace_problem():
    """Why a fake /proc/cpuinfo cannot be bind-mounted here, or None."""
    with tempfile.NamedTemporaryFile("w", suffix=".cpuinfo") as fake:
        fake.write(cpuinfo_text("cortex-a76", 1))
        fake.flush()
        script = 'mount --bind "$0" /proc/cpuinfo && grep -q "CPU part" /proc/cpuinfo'
        result = subprocess.run(
            ["unshare", "--mount", "--", "sh", "-c", script, fake.name],
            capture_output=True,
            text=True,
        )
    if result.returncode:
        lines = (result.stderr or "no message").strip().splitlines()
        return f"cannot bind-mount a fake /proc/cpuinfo in a mount namespace: {lines[-1]}"
    return None


def emulation_problem():
    """One line saying why `run_on_arm64` cannot work here, or None when it can."""
    tools = {
        "qemu-aarch64": "apt-get install qemu-user",
        "unshare": "util-linux",
        "apt-get": "a Debian host",
        "dpkg": "a Debian host",
    }
    for tool, source in tools.items():
        if shutil.which(tool) is None:
            return f"{tool} not found ({source})"
    return _namespace_problem()


def _wheel_pins():
    return {name: metadata.version(name) for name in WHEELS}


def _expected_stamp():
    return {"python": PYTHON_VERSION, "packages": list(DEBIAN_PACKAGES), "wheels": _wheel_pins()}


def _is_current(sysroot):
    try:
        return json.loads((Path(sysroot) / _STAMP).read_text()) == _expected_stamp()
    except (OSError, ValueError):
        return False


def _check_call(command, cwd=None):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        lines = (result.stderr or result.stdout or "no message").strip().splitlines()
        raise EmulationUnavailable(f"{' '.join(command[:2])} failed: {lines[-1]}")


def _download_debs(work):
    """Downloads `DEBIAN_PACKAGES` for arm64 into `work/debs` (apt state kept in `work`)."""
    for folder in ("lists/partial", "cache/archives/partial", "debs"):
        (work / folder).mkdir(parents=True)
    # A private package list and an empty status file: nothing of the host's
    # apt or dpkg state is read or changed, and nothing is installed.
    apt = ["apt-get", "-qq"]
    for option in (
        "APT::Architecture=arm64",
        "APT::Architectures=arm64",
        f"Dir::State::Lists={work / 'lists'}",
        f"Dir::Cache={work / 'cache'}",
        "Dir::State::status=/dev/null",
        "APT::Sandbox::User=root",
    ):
        apt += ["-o", option]
    _check_call([*apt, "update"])
    _check_call([*apt, "download", *DEBIAN_PACKAGES], cwd=work / "debs")


def _download_wheels(work):
    platforms = [arg for tag in WHEEL_PLATFORMS for arg in ("--platform", tag)]
    pins = [f"{name}=={version}" for name, version in _wheel_pins().items()]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--only-binary=:all:", "--implementation", "cp", "--python-version"]
    _check_call([*command, PYTHON_VERSION, *platforms, "-d", str(work / "wheels"), *pins])


def build_sysroot(cache_dir=None):
    """The arm64 sysroot, built on first use (about 40 MB of downloads) and then reused.

    Args:
        cache_dir: str or Path. Where the sysroot lives. Defaults to
            `default_cache_dir()`. Rebuilt when its packages or the installed
            LiteRT or numpy version differ from the ones it was built with.

    Returns:
        Path of the sysroot (`usr/bin/python3.11` inside).

    Raises:
        EmulationUnavailable: one line, when a download or unpacking fails.
    """
    sysroot = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if _is_current(sysroot):
        return sysroot
    sysroot.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=sysroot.name + ".", dir=sysroot.parent))
    try:
        _download_debs(work)
        _download_wheels(work)
        root = work / "root"
        for deb in sorted((work / "debs").glob("*.deb")):
            _check_call(["dpkg", "--extract", str(deb), str(root)])
        # Debian's Python looks for packages in dist-packages.
        site_packages = root / "usr" / "lib" / "python3" / "dist-packages"
        for wheel in sorted((work / "wheels").glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(site_packages)
        (root / _STAMP).write_text(json.dumps(_expected_stamp()))
        shutil.rmtree(sysroot, ignore_errors=True)
        try:
            os.rename(root, sysroot)
        except OSError:
            if not _is_current(sysroot):  # Not a concurrent build that finished first.
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sysroot


def run_on_arm64(jobs, cpu, sysroot=None, num_threads=1, timeout=1800):
    """Runs `.tflite` generators on LiteRT's ARM64 kernels under `qemu-aarch64 -cpu <cpu>`.

    Args:
        jobs: list of `(model_path, images)`: float-I/O `.tflite` files and
            float32 `(N, H, W, 3)` inputs in [-1, 1] of their input size.
        cpu: str. A qemu CPU model with options (`qemu-aarch64 -cpu help`),
            e.g. `"cortex-a76"`, `"max,sme=off"`, `"max"`.
        sysroot: Path from `build_sysroot`. Defaults to building or reusing
            the default one.
        num_threads: int. XNNPACK threads.
        timeout: float. Seconds before the emulated run is stopped.

    Returns:
        list of float32 outputs, one per job, shaped like its images.

    Raises:
        RuntimeError: one line, when the emulated run fails.
    """
    sysroot = Path(sysroot) if sysroot is not None else build_sysroot()
    with tempfile.TemporaryDirectory(prefix="keras_deblur_arm64_") as tmp:
        tmp = Path(tmp)
        (tmp / "cpuinfo").write_text(cpuinfo_text(cpu))
        arguments = [str(tmp / "outputs.npz"), str(num_threads)]
        for index, (model_path, images) in enumerate(jobs):
            np.save(tmp / f"inputs_{index}.npy", np.asarray(images, np.float32))
            arguments += [os.path.abspath(model_path), str(tmp / f"inputs_{index}.npy")]
        python = sysroot / "usr" / "bin" / f"python{PYTHON_VERSION}"
        qemu = ["qemu-aarch64", "-cpu", cpu, "-L", str(sysroot), str(python), "-I", str(_RUNNER)]
        script = 'mount --bind "$0" /proc/cpuinfo && exec "$@"'
        command = ["unshare", "--mount", "--", "sh", "-c", script, str(tmp / "cpuinfo"), *qemu]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(tmp)}
        try:
            result = subprocess.run(
                [*command, *arguments], capture_output=True, text=True, env=env, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"-cpu {cpu}: the emulated run took over {timeout} s") from None
        if result.returncode:
            lines = (result.stderr or "no message").strip().splitlines()
            raise RuntimeError(f"-cpu {cpu}: the emulated run failed: {lines[-1]}")
        with np.load(tmp / "outputs.npz") as outputs:
            return [outputs[str(index)] for index in range(len(jobs))]


def level_difference(a, b):
    """Largest difference, in 8-bit output levels, between two `[-1, 1]` model outputs."""
    from keras_deblur.inference import from_model_range

    return int(np.max(np.abs(from_model_range(a).astype(np.int16) - from_model_range(b))))


def psnr_against(outputs, reference):
    """PSNR in dB between two batches of `[-1, 1]` model outputs, on their 8-bit levels."""
    from keras_deblur.inference import from_model_range
    from keras_deblur.metrics import psnr

    # The batch's images stacked into one tall image: the mean over every pixel.
    a, b = (from_model_range(x).reshape(-1, *x.shape[-2:]) for x in (outputs, reference))
    return psnr(a, b)


class Comparison(NamedTuple):
    """One model on one emulated CPU: how far from x86, and how accurate on each.

    `levels`: the largest output difference from x86, in 8-bit levels;
    `arm_db`, `x86_db`: PSNR of the ARM64 and the x86 output against the
    float Keras generator's output on the same images.
    """

    levels: int
    arm_db: float
    x86_db: float


def compare_with_host(jobs, reference_outputs, cpus=DEFAULT_CPUS, sysroot=None, num_threads=1):
    """Each model on ARM64 emulation against this machine's LiteRT and the float model.

    Args:
        jobs: list of `(model_path, images)`, as for `run_on_arm64`.
        reference_outputs: list of the float Keras generator's outputs on each
            job's images: what every exported file approximates.
        cpus: qemu CPU models to emulate. Defaults to `DEFAULT_CPUS`.
        sysroot: as for `run_on_arm64`.
        num_threads: int. XNNPACK threads, on both sides.

    Returns:
        dict `{cpu: {model_path: Comparison}}`.
    """
    from export.runtime import TFLiteGenerator

    host = [TFLiteGenerator(path, num_threads).predict_on_batch(images) for path, images in jobs]
    sysroot = sysroot if sysroot is not None else build_sysroot()
    results = {}
    for cpu in cpus:
        arm64 = run_on_arm64(jobs, cpu, sysroot, num_threads)
        results[cpu] = {
            path: Comparison(
                level_difference(arm, x86), psnr_against(arm, ref), psnr_against(x86, ref)
            )
            for (path, _), arm, x86, ref in zip(jobs, arm64, host, reference_outputs, strict=True)
        }
    return results


def failures(comparisons, max_loss_db=0.5, tolerance=None):
    """One line per model and CPU that fails the gate; empty when all pass.

    A model fails where its ARM64 output is more than `max_loss_db` less
    accurate (PSNR against the float model) than its x86 output, or, with a
    `tolerance`, differs from x86 by more than that many 8-bit levels. Int8
    kernels may round differently on ARM at the same accuracy, so levels
    alone would fail a sound int8 model.
    """
    lines = []
    for cpu, per_model in comparisons.items():
        for path, result in per_model.items():
            if result.arm_db < result.x86_db - max_loss_db:
                lines.append(
                    f"-cpu {cpu}: {path}: {result.arm_db:.2f} dB against the float model, "
                    f"x86 {result.x86_db:.2f} dB (more than {max_loss_db} dB less accurate)"
                )
            if tolerance is not None and result.levels > tolerance:
                lines.append(
                    f"-cpu {cpu}: {path}: differs from x86 by {result.levels} levels "
                    f"(> {tolerance})"
                )
    return lines


def main(argv):
    del argv
    from absl import flags

    from export.calibration import embedded_pairs
    from export.runtime import TFLiteGenerator
    from keras_deblur import load_generator

    f = flags.FLAGS
    for cpu in f.cpu:
        try:
            cpuinfo_text(cpu)
        except ValueError as error:
            sys.exit(f"error: --cpu {cpu}: {error}")
    jobs = []
    for path in f.model:
        try:
            model = TFLiteGenerator(path)
        except FileNotFoundError as error:
            sys.exit(f"error: {error}")
        except (ValueError, RuntimeError) as error:
            sys.exit(f"error: {path}: {str(error).splitlines()[0]}")
        if model.input_size is None or model.io_dtype != np.float32:
            sys.exit(f"error: {path}: only fixed-size models with float input/output are compared")
        jobs.append(
            (path, np.stack(embedded_pairs("validation", model.input_size, f.num_images)[0]))
        )
    problem = emulation_problem()
    if problem:
        sys.exit(f"error: ARM64 emulation unavailable: {problem}")
    try:
        generator = load_generator(f.weights)
    except (OSError, ValueError) as error:
        sys.exit(f"error: --weights {f.weights}: {str(error).splitlines()[0]}")
    reference = [generator.predict_on_batch(images) for _, images in jobs]
    try:
        sysroot = build_sysroot(f.cache_dir)
        comparisons = compare_with_host(jobs, reference, f.cpu, sysroot)
    except (EmulationUnavailable, RuntimeError) as error:
        sys.exit(f"error: {error}")
    for cpu, results in comparisons.items():
        for path, result in results.items():
            print(
                f"-cpu {cpu}: {path}: max difference from x86 {result.levels} levels; "
                f"against the float model {result.arm_db:.2f} dB (x86 {result.x86_db:.2f} dB)"
            )
    problems = failures(comparisons, f.max_loss_db, f.tolerance)
    if problems:
        sys.exit("\n".join(f"error: {line}" for line in problems))


def _define_flags():
    from absl import flags

    from keras_deblur.pretrained import DEFAULT_PRESET

    flags.DEFINE_multi_string("model", None, "Fixed-size float-I/O .tflite file.", required=True)
    flags.DEFINE_multi_string(
        "cpu", list(DEFAULT_CPUS), "qemu CPU model with options, e.g. max,sme=off (repeatable)."
    )
    flags.DEFINE_integer("num_images", 1, "Embedded validation photos (blurred) to run.")
    flags.DEFINE_string(
        "weights",
        DEFAULT_PRESET,
        "The Keras generator the files were exported from (file or preset).",
    )
    flags.DEFINE_float(
        "max_loss_db",
        0.5,
        "Largest allowed loss of accuracy (PSNR against --weights) on ARM64 below x86, in dB.",
    )
    flags.DEFINE_integer(
        "tolerance", None, "Also gate on the largest difference from x86, in 8-bit levels."
    )
    flags.DEFINE_string("cache_dir", None, "Sysroot folder (default ~/.cache/keras-deblur/...).")


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
