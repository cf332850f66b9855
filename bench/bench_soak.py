"""Soak: a folder of phone photos through `python -m keras_deblur.deblur`, then kill and resume.

    python bench/bench_soak.py [--photos 1000] [--seed 0] [--work_dir DIR] [--no_resume]

1. Writes --photos photos of mixed sizes (64-640 pixel sides, 1% of 1000-1600,
   two above 4 megapixels, which the CLI tiles) and formats (JPEG with EXIF
   orientations 1-8, RGB, RGBA and 16-bit PNG, WebP, gray JPEG) plus 1% broken
   files, reusing tests/fuzz_corpus.py's generators.
2. Deblurs the folder with the shipped model through the CLI in a subprocess,
   sampling the child's resident memory (VmRSS in /proc/<pid>/status) and the
   outputs written so far; reports the peak RSS, the drift (RSS at the end
   against after the first 50 photos: the gate is < 10%), photos/s, that every
   good photo was written and decodes, every broken one is named on stderr,
   and the exit code is 1.
3. Kill and resume: the same folder into a fresh output folder, SIGKILL once
   half the outputs exist, then the CLI again with --skip_existing; checks that
   the rest is written, no file is written twice (the files present before the
   restart keep their inode and mtime, and the two runs' counts add up) and
   every file under a final name decodes.

Not a test: it takes 10-20 minutes on 2 shared cores (run it under nice).
Exits 1 if a check fails.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from yardstick import REPO, cpu_isa  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tests"))
from fuzz_corpus import _photo as blocky_photo  # noqa: E402
from fuzz_corpus import bomb_png, rotated_jpeg  # noqa: E402

from keras_deblur.data.images import read_image, write_image  # noqa: E402

DRIFT_GATE = 0.10
DRIFT_FROM = 50  # photos written before the reference RSS is taken
BROKEN_EVERY = 100  # one broken file per hundred photos
LARGE_EVERY = 100  # one 1000-1600 pixel photo per hundred
OVER_4MP = (1836, 2448)  # a phone photo's shape above the CLI's tiling threshold


def _broken_bytes(kind, rng):
    good = rotated_jpeg(blocky_photo(120, 160, int(rng.integers(1 << 30))), 1)
    return {
        0: b"",
        1: good[: len(good) // 3],
        2: b"not a photo at all\n",
        3: bomb_png(),
    }[kind % 4]


def _write_photo(folder, index, rng):
    """Writes photo number `index` in a format picked by it; returns its file name."""
    height, width = (int(side) for side in rng.integers(64, 641, 2))
    if index % LARGE_EVERY == 50:
        height, width = (int(side) for side in rng.integers(1000, 1601, 2))
    if index in (333, 777):
        height, width = OVER_4MP
    photo = blocky_photo(height, width, index)
    kind = index % 10
    stem = os.path.join(folder, f"{index:05d}")
    if kind < 4:  # phone JPEGs, stored sideways or mirrored as the EXIF says
        name = f"{stem}.jpg"
        with open(name, "wb") as file:
            file.write(rotated_jpeg(photo, 1 + index % 8))
    elif kind == 4:
        name = f"{stem}.png"
        write_image(name, photo)
    elif kind == 5:
        name = f"{stem}_alpha.png"
        alpha = np.linspace(0, 255, width, dtype=np.uint8)[None].repeat(height, 0)
        write_image(name, np.dstack([photo, alpha]))
    elif kind == 6:
        name = f"{stem}_16bit.png"
        write_image(name, photo.astype(np.uint16) * 257)
    elif kind in (7, 8):
        name = f"{stem}.webp"
        write_image(name, photo)
    else:
        name = f"{stem}_gray.jpg"
        write_image(name, photo[:, :, 1])
    return os.path.basename(name)


def make_photo_folder(folder, count, seed=0):
    """Writes `count` files into `folder`; returns (good names, broken names)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    good, broken = [], []
    for index in range(count):
        if index % BROKEN_EVERY == BROKEN_EVERY - 1:
            name = f"{index:05d}_broken.{'jpg' if index % 3 else 'png'}"
            with open(os.path.join(folder, name), "wb") as file:
                file.write(_broken_bytes(index // BROKEN_EVERY, rng))
            broken.append(name)
        else:
            good.append(_write_photo(folder, index, rng))
    return good, broken


def final_outputs(folder):
    """Output files under their final names (not the writer's hidden temporaries)."""
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def rss_kb(pid):
    """The process's resident set size in kB (VmRSS), or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_cli(photos, output_dir, log_prefix, extra=(), kill_at=None, interval=0.5):
    """Runs the deblur CLI, sampling (seconds, RSS kB, outputs) every `interval` s.

    With `kill_at`, sends SIGKILL once that many outputs exist. Returns a dict
    with `samples`, `returncode`, `stdout`, `stderr`, `seconds`.
    """
    command = [sys.executable, "-m", "keras_deblur.deblur", f"--input={photos}"]
    command += [f"--output_dir={output_dir}", *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    with open(log_prefix + ".out", "w") as out, open(log_prefix + ".err", "w") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=REPO, env=env)
        samples = []
        while child.poll() is None:
            rss, written = rss_kb(child.pid), len(final_outputs(output_dir))
            if rss is not None:
                samples.append((time.perf_counter() - start, rss, written))
            if kill_at is not None and written >= kill_at:
                child.send_signal(signal.SIGKILL)
                child.wait()
                break
            time.sleep(interval)
        seconds = time.perf_counter() - start
    with open(log_prefix + ".out") as out, open(log_prefix + ".err") as err:
        stdout, stderr = out.read(), err.read()
    return {
        "samples": samples,
        "returncode": child.returncode,
        "stdout": stdout,
        "stderr": stderr,
        "seconds": seconds,
    }


def identity(folder, name):
    """(inode, mtime): an atomic rewrite changes the inode, any write the mtime."""
    status = os.stat(os.path.join(folder, name))
    return status.st_ino, status.st_mtime_ns


def undecodable(folder, names):
    """Names under `folder` that do not decode (a half-written file would not)."""
    bad = []
    for name in names:
        try:
            read_image(os.path.join(folder, name))
        except ValueError:
            bad.append(name)
    return bad


def memory_report(samples, expected):
    """Peak, drift after the first photos, and throughput from the samples."""
    peak = max(rss for _, rss, _ in samples)
    after = next((s for s in samples if s[2] >= DRIFT_FROM), samples[0])
    last = samples[-1]
    quarters = [next((s for s in samples if s[2] >= q * expected // 4), last) for q in (1, 2, 3)]
    rate = (last[2] - after[2]) / max(last[0] - after[0], 1e-9)
    print(f"peak RSS {peak / 1024:.0f} MB")
    print(
        f"RSS after {after[2]} photos {after[1] / 1024:.0f} MB; at 1/4, 1/2, 3/4: "
        + ", ".join(f"{s[1] / 1024:.0f}" for s in quarters)
        + f" MB; at the end ({last[2]} photos) {last[1] / 1024:.0f} MB"
    )
    drift = (last[1] - after[1]) / after[1]
    print(f"drift {drift:+.1%} (gate < {DRIFT_GATE:.0%})")
    print(f"{rate:.2f} photos/s after the first {after[2]} ({last[2] / last[0]:.2f} overall)")
    return drift < DRIFT_GATE


def soak(photos, good, broken, work, interval):
    output_dir = os.path.join(work, "out")
    run = run_cli(photos, output_dir, os.path.join(work, "soak"), interval=interval)
    print(f"soak: exit code {run['returncode']} after {run['seconds']:.0f} s")
    print(run["stdout"].strip().splitlines()[-1] if run["stdout"].strip() else "(no stdout)")
    checks = {"memory": memory_report(run["samples"], len(good))}
    written = final_outputs(output_dir)
    checks["exit code 1 (0 without broken files)"] = run["returncode"] == int(bool(broken))
    checks["every good photo written"] = sorted(good) == written
    checks["every output decodes"] = not undecodable(output_dir, written)
    errors = [line for line in run["stderr"].splitlines() if line.startswith("error: ")]
    checks["every broken file named"] = all(
        sum(f"/{name}:" in line for line in errors) == 1 for name in broken
    )
    checks["no traceback"] = "Traceback" not in run["stderr"]
    return checks


def kill_and_resume(photos, good, broken, work, interval):
    output_dir = os.path.join(work, "resume")
    half = len(good) // 2
    killed = run_cli(photos, output_dir, os.path.join(work, "killed"), kill_at=half, interval=0.1)
    before = {name: identity(output_dir, name) for name in final_outputs(output_dir)}
    temporaries = [name for name in os.listdir(output_dir) if name.startswith(".")]
    print(
        f"killed (exit code {killed['returncode']}) with {len(before)} outputs written, "
        f"{len(temporaries)} temporary file(s) left"
    )
    checks = {"killed outputs decode": not undecodable(output_dir, sorted(before))}
    resumed = run_cli(
        photos, output_dir, os.path.join(work, "resumed"), ["--skip_existing"], interval=interval
    )
    summary = resumed["stdout"].strip().splitlines()[-1] if resumed["stdout"].strip() else ""
    print(f"resumed: exit code {resumed['returncode']}: {summary}")
    written = final_outputs(output_dir)
    unchanged = [name for name in before if identity(output_dir, name) == before[name]]
    newly = int(summary.split()[1]) if summary.startswith("Deblurred ") else -1
    checks["resume exit code 1 (0 without broken files)"] = resumed["returncode"] == int(
        bool(broken)
    )
    checks["every good photo written after resume"] = sorted(good) == written
    checks["files from before the kill untouched"] = len(unchanged) == len(before)
    checks["skipped count reported"] = f"({len(before)} skipped" in summary
    checks["nothing written twice"] = newly + len(before) == len(good)
    checks["every output decodes after resume"] = not undecodable(output_dir, written)
    return checks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000, help="files in the folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work_dir", help="keep the photos and outputs here (default: temp)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--no_resume", action="store_true", help="skip the kill-and-resume check")
    args = parser.parse_args()
    print(f"CPU: {cpu_isa()}, {os.cpu_count()} cores")
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_soak_")
    try:
        photos = os.path.join(work, "photos")
        good, broken = make_photo_folder(photos, args.photos, args.seed)
        print(f"{len(good)} photos and {len(broken)} broken files in {photos}")
        checks = soak(photos, good, broken, work, args.interval)
        if not args.no_resume:
            checks |= kill_and_resume(photos, good, broken, work, args.interval)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'} {name}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
