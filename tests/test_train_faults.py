"""Training faults: kill -9 at random points, damaged checkpoints, a full disk.

Kills come from outside the training process, timed by what appears on disk
or by a seeded random delay; the library has no test hooks. A full disk is
a file size limit (`RLIMIT_FSIZE`): writes past it fail with EFBIG as they
would with ENOSPC, without needing root for a small filesystem.
"""

import contextlib
import glob
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_train_cli import REPO, TINY_FLAGS

from keras_deblur import callbacks as callbacks_lib
from keras_deblur import train

resource = pytest.importorskip("resource")

# No VGG19 and one validation batch: the same GAN step, a few seconds less per run.
FAST_FLAGS = [
    *TINY_FLAGS,
    "--epochs=4",
    "--content_weight=0",
    "--pixel_weight=1",
    "--validation_steps=1",
]
STEPS = 2  # --steps_per_epoch in TINY_FLAGS
# Runs the training CLI with writes past a file size limit failing (EFBIG) instead
# of killing the process (SIGXFSZ), as writes on a full disk fail with ENOSPC.
LIMITED = (
    "import resource, runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv.pop(1)), "
    "resource.getrlimit(resource.RLIMIT_FSIZE)[1])); "
    "runpy.run_module('keras_deblur.train', run_name='__main__', alter_sys=True)"
)


SIZE = 1 << 16  # floats in the test variable: 256 KiB, four times the size limit below


def _three_checkpoints(directory):
    """Checkpoints 1, 2, 3 of a variable holding 1, 2, 3; a fresh manager and the variable."""
    value = tf.Variable(np.zeros(SIZE, "float32"))
    checkpoint = tf.train.Checkpoint(value=value)
    manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=3)
    for number in (1, 2, 3):
        value.assign(np.full(SIZE, number, "float32"))
        manager.save(checkpoint_number=number)
    return tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=3), value


def _truncate(path):
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 2)
    return path


def _flip_bit(path, seed=0):
    data = bytearray(open(path, "rb").read())
    position = random.Random(seed).randrange(len(data) // 4, 3 * len(data) // 4)
    data[position] ^= 0x10
    open(path, "wb").write(bytes(data))
    return path


def _data_file(prefix):
    (path,) = glob.glob(prefix + ".data-*")
    return path


def _remove_checkpoint(prefix):
    for path in glob.glob(prefix + ".*"):
        os.remove(path)
    return prefix + ".index"


DAMAGE = {
    "truncated index": lambda prefix: _truncate(prefix + ".index"),
    "garbled index": lambda prefix: _flip_bit(prefix + ".index"),
    "truncated data": lambda prefix: _truncate(_data_file(prefix)),
    "garbled data": lambda prefix: _flip_bit(_data_file(prefix)),
    "state names a missing checkpoint": _remove_checkpoint,
}


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == callbacks_lib.logger.name]


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog, damage):
    manager, value = _three_checkpoints(tmp_path)
    damaged_file = DAMAGE[damage](os.path.join(tmp_path, "ckpt-3"))
    with caplog.at_level(logging.WARNING):
        prefix = callbacks_lib.newest_intact_checkpoint(manager)
    assert prefix == os.path.join(tmp_path, "ckpt-2")
    (warning,) = _warnings(caplog)
    assert warning.startswith(f"{damaged_file}: ") and "\n" not in warning
    assert warning.endswith("; skipping checkpoint ckpt-3")
    tf.train.Checkpoint(value=value).restore(prefix).assert_consumed()
    assert np.all(value.numpy() == 2)


def test_no_intact_checkpoint_is_a_one_line_error(tmp_path, caplog):
    manager, _ = _three_checkpoints(tmp_path)
    for number, damage in zip((1, 2, 3), DAMAGE.values(), strict=False):
        damage(os.path.join(tmp_path, f"ckpt-{number}"))
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError) as raised:
        callbacks_lib.newest_intact_checkpoint(manager)
    assert str(raised.value) == (
        f"{tmp_path}: no intact checkpoint to resume from (tried: ckpt-3, ckpt-2, ckpt-1)"
    )
    assert len(_warnings(caplog)) == 3


def test_an_unreadable_state_file_falls_back_to_the_checkpoint_files(tmp_path, caplog):
    _three_checkpoints(tmp_path)
    (tmp_path / "checkpoint").write_text("model_checkpoint_path: \x00garbage {")
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(), str(tmp_path), max_to_keep=3)
    with caplog.at_level(logging.WARNING):
        assert callbacks_lib.newest_intact_checkpoint(manager) == str(tmp_path / "ckpt-3")
    assert _warnings(caplog) == [
        f"{tmp_path / 'checkpoint'}: unreadable; looking for checkpoint files instead"
    ]


@contextlib.contextmanager
def _file_size_limit(nbytes):
    """Writes past `nbytes` fail with EFBIG in this process (SIGXFSZ ignored meanwhile)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_earlier_checkpoints(tmp_path):
    manager, value = _three_checkpoints(tmp_path)
    epoch = tf.Variable(3, dtype=tf.int64)
    saver = callbacks_lib.CheckpointSaver(manager, epoch)
    value.assign(np.full(SIZE, 4, "float32"))
    with _file_size_limit(SIZE), pytest.raises(OSError) as raised:
        saver.on_epoch_end(3, logs={})
    message = str(raised.value)
    assert message.startswith(f"{tmp_path}: checkpoint 4 not saved (") and "\n" not in message
    assert "File too large" in message and "{{" not in message
    assert message.endswith(f"the earlier checkpoints are intact, latest: {tmp_path}/ckpt-3")
    assert not glob.glob(str(tmp_path / "*_temp*")), "the partial save was left behind"
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-3")
    assert callbacks_lib.checkpoint_damage(str(tmp_path / "ckpt-3")) is None


def test_generator_files_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = str(tmp_path / "best_generator.keras")
    callbacks_lib._save_keras_atomically(model, path)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~_umask())
    before = open(path, "rb").read()

    def half_written_then_full(self, filepath, **kwargs):
        open(filepath, "wb").write(before[: len(before) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", half_written_then_full)
    with pytest.raises(OSError) as raised:
        callbacks_lib._save_keras_atomically(model, path)
    assert str(raised.value) == f"{path}: not saved (No space left on device)"
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["best_generator.keras"]


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_unreadable_run_records_are_named(tmp_path, caplog):
    (tmp_path / "config.json").write_text('{"epochs": 3, "crop')
    with pytest.raises(ValueError) as raised:
        train.load_recipe(str(tmp_path))
    assert str(raised.value).startswith(f"{tmp_path}/config.json: not valid JSON (")
    (tmp_path / "best_generator.json").write_text("")
    with caplog.at_level(logging.WARNING):
        saver = callbacks_lib.BestGeneratorSaver(str(tmp_path / "best_generator.keras"))
    assert saver.best == -np.inf
    (warning,) = _warnings(caplog)
    assert warning.startswith(f"{tmp_path}/best_generator.json: unreadable (")


# ------------------------------------------------------- kill -9 and a full disk, CLI


@pytest.fixture
def start():
    """Starts the training CLI in the background; whatever still runs at the end is killed."""
    processes = []

    def start_cli(run_dir, *flags, log, limit=None):
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="1")
        command = ["-m", "keras_deblur.train"] if limit is None else ["-c", LIMITED, str(limit)]
        with open(log, "w") as stderr:
            processes.append(
                subprocess.Popen(
                    [sys.executable, *command, *flags, f"--output_dir={run_dir}"],
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    cwd=REPO,
                    env=env,
                )
            )
        return processes[-1]

    yield start_cli
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def _kill_when(process, ready, timeout=300):
    """SIGKILLs `process` as soon as `ready()` is true; False if it ended first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        assert time.monotonic() < deadline, f"not ready after {timeout} s"
        if ready():
            process.kill()
            process.wait()
            return True
        time.sleep(0.001)
    return False


def _after(log, text, delay):
    """A `ready` for `_kill_when`: `delay` seconds after `text` first appears in `log`."""
    seen = []

    def ready():
        if not seen and text in open(log).read():
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() >= seen[0] + delay

    return ready


def _latest_is_intact(checkpoints):
    latest = tf.train.get_checkpoint_state(checkpoints).model_checkpoint_path
    assert callbacks_lib.checkpoint_damage(latest) is None, latest
    return latest


def _errors(log):
    """TensorFlow's (and absl's) ERROR and FATAL lines in `log`."""
    return [line for line in open(log).read().splitlines() if re.match(r"[EF]\d{4} ", line)]


def _checkpoint_value(path, fragment):
    reader = tf.train.load_checkpoint(path)
    (name,) = [name for name in reader.get_variable_to_shape_map() if fragment in name]
    return int(reader.get_tensor(name))


def test_killed_and_out_of_space_runs_resume_to_the_same_end(tmp_path, start):
    run_dir, rng = tmp_path / "run", random.Random(15)
    checkpoints = str(run_dir / "checkpoints")
    logs = [str(tmp_path / f"run_{n}.log") for n in range(4)]

    # 1. kill -9 while checkpoint 3 is being written.
    process = start(run_dir, *FAST_FLAGS, log=logs[0])
    assert _kill_when(process, lambda: glob.glob(checkpoints + "/ckpt-3*")), open(logs[0]).read()
    latest = _latest_is_intact(checkpoints)
    assert latest.endswith(("ckpt-2", "ckpt-3"))

    # 2. The disk fills up at the next checkpoint: one line, the earlier ones kept.
    process = start(run_dir, "--resume", log=logs[1], limit=4 << 20)
    assert process.wait(timeout=300) == 2, open(logs[1]).read()[-3000:]
    number = int(latest.rsplit("-", 1)[1]) + 1
    last_line = open(logs[1]).read().splitlines()[-1]
    assert last_line.startswith(f"error: {checkpoints}: checkpoint {number} not saved (")
    assert last_line.endswith(
        f"File too large); the earlier checkpoints are intact, latest: {latest}"
    )
    assert _latest_is_intact(checkpoints) == latest
    assert not glob.glob(checkpoints + "/*_temp")

    # 3. kill -9 at a random moment of the resumed run's first epoch.
    process = start(run_dir, "--resume", log=logs[2])
    assert _kill_when(process, _after(logs[2], "Resumed ", rng.uniform(0.0, 2.0)))
    latest = _latest_is_intact(checkpoints)

    # 4. The newest checkpoint is then damaged on disk: resume from the one before, to the end.
    damaged = _flip_bit(_data_file(latest), seed=rng.randrange(100))
    process = start(run_dir, "--resume", log=logs[3])
    assert process.wait(timeout=300) == 0, open(logs[3]).read()[-3000:]
    skipped = [line for line in open(logs[3]).read().splitlines() if "skipping checkpoint" in line]
    assert len(skipped) == 1 and f"] {damaged}: " in skipped[0], skipped
    assert skipped[0].endswith(f"; skipping checkpoint {os.path.basename(latest)}")

    final = _latest_is_intact(checkpoints)
    assert final.endswith("ckpt-4") and _checkpoint_value(final, "epoch/") == 4
    assert _checkpoint_value(final, "g_optimizer/_iterations") == 4 * STEPS
    assert _checkpoint_value(final, "d_optimizer/_iterations") == 4 * STEPS
    for name in ("best_generator.keras", "final_generator.keras"):
        keras.saving.load_model(run_dir / name)
    json.loads((run_dir / "config.json").read_text())
    json.loads((run_dir / "best_generator.json").read_text())
    assert not glob.glob(checkpoints + "/*_temp") and not glob.glob(str(run_dir / ".tmp_*"))
    assert [_errors(log) for log in logs] == [[], [], [], []]
