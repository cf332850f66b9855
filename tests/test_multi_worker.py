"""Two-worker training on localhost: `--strategy=multi_worker` with TF_CONFIG.

One run of two worker processes is killed (SIGKILL to the non-chief) after
its first checkpoint, then resumed by two workers to one more epoch. The
workers go through a wrapper that saves each one's generator weights when
`fit` returns, so that the two can be compared; the library has no test hooks.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_train_cli import REPO, TINY_FLAGS

from keras_deblur import callbacks as callbacks_lib
from keras_deblur import multi_worker, train
from keras_deblur.recipe import Recipe

STEPS = 2  # --steps_per_epoch in TINY_FLAGS
# Content-only (no critic, no VGG19) and one validation batch: the cheapest step
# the CLI trains. Many epochs: the first run is killed long before its end.
FLAGS = [
    *TINY_FLAGS,
    "--strategy=multi_worker",
    "--batch_size=2",  # one crop per worker
    "--epochs=100",
    "--warmup_epochs=100",
    "--content_weight=0",
    "--pixel_weight=1",
    "--validation_steps=1",
    "--validation_every=100",  # validates at the last epoch only
    "--max_cpu_minutes=1000",  # never spent, but the workers agree on it every epoch
]
# Runs the training CLI, then saves the generator's weights (to argv[1]) when fit returns.
# One thread per op and one op at a time: the two workers share two cores, and an op
# split over threads waits for both to be scheduled; these tiny ops gain nothing from it.
DUMPING = """
import runpy, sys
import numpy as np
import tensorflow as tf
from keras_deblur.gan import DeblurGAN

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

path, fit = sys.argv.pop(1), DeblurGAN.fit

def fit_and_dump(self, *args, **kwargs):
    history = fit(self, *args, **kwargs)
    np.savez(path, *self.generator.get_weights())
    return history

DeblurGAN.fit = fit_and_dump
runpy.run_module("keras_deblur.train", run_name="__main__", alter_sys=True)
"""
RUN_FILES = {
    "best_generator.json",
    "best_generator.keras",
    "checkpoints",
    "config.json",
    "final_generator.keras",
    "logs",
    "run_info.json",
    "samples",
    "training_log.csv",
}
TIMEOUT = 240  # seconds for any one wait: a hang fails the test instead of blocking it


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _start_workers(tmp_path, name, flags_per_worker):
    """Starts one training process per flag list, as the workers of one cluster.

    Each gets its own TMPDIR (`<name>_tmp<i>`) and log files; worker i's
    generator weights go to `<name>_weights<i>.npz` when its fit returns.
    """
    hosts = [f"localhost:{port}" for port in _free_ports(len(flags_per_worker))]
    workers = []
    for index, flags in enumerate(flags_per_worker):
        config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        temporary = tmp_path / f"{name}_tmp{index}"
        temporary.mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": REPO,
            "TF_CONFIG": json.dumps(config),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TMPDIR": str(temporary),
        }
        weights = tmp_path / f"{name}_weights{index}.npz"
        with open(tmp_path / f"{name}_{index}.err", "w") as err:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-c", DUMPING, str(weights), *flags],
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
    return workers


def _stderr(tmp_path, name, index):
    return (tmp_path / f"{name}_{index}.err").read_text()


def _wait_for_checkpoint(directory, workers, stderr):
    deadline = time.monotonic() + TIMEOUT
    while tf.train.latest_checkpoint(str(directory)) is None:
        ended = [i for i, worker in enumerate(workers) if worker.poll() is not None]
        assert not ended, f"worker {ended[0]} ended early: {stderr(ended[0])[-3000:]}"
        assert time.monotonic() < deadline, f"no checkpoint: {stderr(0)[-3000:]}"
        time.sleep(0.1)


def _checkpoint_value(path, fragment):
    reader = tf.train.load_checkpoint(path)
    names = [name for name in reader.get_variable_to_shape_map() if fragment in name]
    assert len(names) == 1, names
    return int(reader.get_tensor(names[0]))


def _weights(path):
    with np.load(path) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


@pytest.fixture(scope="module")
def cluster_runs(tmp_path_factory):
    """A two-worker run killed after its first checkpoint, then resumed by two workers.

    Returns `(tmp_path, run_dir, killed_at_epoch)`. The killed run's
    non-chief has its own --output_dir (as on a machine without shared
    storage); the resumed run's workers share the chief's, which resuming needs.
    """
    tmp_path = tmp_path_factory.mktemp("cluster")
    run_dir = tmp_path / "run"
    elsewhere = tmp_path / "worker1_output"
    workers = _start_workers(
        tmp_path, "killed", [[*FLAGS, f"--output_dir={d}"] for d in (run_dir, elsewhere)]
    )
    try:
        _wait_for_checkpoint(
            run_dir / "checkpoints", workers, lambda i: _stderr(tmp_path, "killed", i)
        )
        workers[1].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=TIMEOUT)
        killed_at = _checkpoint_value(tf.train.latest_checkpoint(run_dir / "checkpoints"), "epoch/")
        epochs = killed_at + 1
        resume_flags = ["--resume", f"--output_dir={run_dir}", f"--epochs={epochs}"]
        resume_flags.append(f"--warmup_epochs={epochs}")
        workers += _start_workers(tmp_path, "resumed", [resume_flags, resume_flags])
        for worker in workers[2:]:
            worker.wait(timeout=TIMEOUT)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert workers[0].returncode == 2, _stderr(tmp_path, "killed", 0)[-3000:]
    for index in (0, 1):
        assert workers[2 + index].returncode == 0, _stderr(tmp_path, "resumed", index)[-3000:]
    return tmp_path, run_dir, killed_at


def test_a_killed_worker_is_a_one_line_error_and_the_checkpoint_stays_intact(cluster_runs):
    tmp_path, run_dir, killed_at = cluster_runs
    stderr = _stderr(tmp_path, "killed", 0)
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: training stopped: a worker of the cluster failed"), last
    assert last.endswith(
        f"the checkpoints in {run_dir / 'checkpoints'} are intact: resume with --resume"
    )
    assert killed_at >= 1
    assert (
        callbacks_lib.checkpoint_damage(str(run_dir / "checkpoints" / f"ckpt-{killed_at}")) is None
    )


def test_resuming_two_workers_ends_at_the_right_step(cluster_runs):
    tmp_path, run_dir, killed_at = cluster_runs
    latest = tf.train.latest_checkpoint(run_dir / "checkpoints")
    assert latest.endswith(f"ckpt-{killed_at + 1}")
    assert _checkpoint_value(latest, "epoch/") == killed_at + 1
    assert _checkpoint_value(latest, "g_optimizer/_iterations") == (killed_at + 1) * STEPS
    assert "Resumed" in _stderr(tmp_path, "resumed", 1)  # the non-chief restored too


def test_both_workers_end_with_the_chiefs_weights(cluster_runs):
    tmp_path, run_dir, _ = cluster_runs
    chief, other = (_weights(tmp_path / f"resumed_weights{i}.npz") for i in (0, 1))
    final = keras.saving.load_model(run_dir / "final_generator.keras").get_weights()
    assert len(chief) == len(other) == len(final)
    for a, b, c in zip(chief, other, final, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-6)


def test_the_chief_alone_writes_the_run(cluster_runs):
    tmp_path, run_dir, killed_at = cluster_runs
    assert set(os.listdir(run_dir)) == RUN_FILES
    assert not (tmp_path / "worker1_output").exists()
    # The non-chief saved to a throwaway folder, and removed it (the killed one could not).
    assert f"Saved checkpoint {tmp_path / 'resumed_tmp1'}" in _stderr(tmp_path, "resumed", 1)
    assert not list((tmp_path / "resumed_tmp1").glob("keras_deblur_worker_*"))
    # One CSV row per epoch: no second writer. Samples are drawn on validating
    # epochs, here the last one only.
    rows = (run_dir / "training_log.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + killed_at + 1
    assert os.listdir(run_dir / "samples") == [f"epoch_{killed_at + 1:03d}.png"]
    assert json.loads((run_dir / "run_info.json").read_text())["replicas"] == 2


def test_workers_draw_their_own_unsharded_training_data():
    seeds = [multi_worker.worker_seed(7, worker) for worker in range(4)]
    assert seeds[0] == 7  # worker 0 draws what one machine would
    # Distinct, and none is seed + 1, the procedural images' seed.
    assert len(set(seeds)) == 4 and 8 not in seeds
    recipe = Recipe(crop_size=32, batch_size=2, validation_steps=1, num_samples=0)
    train_ds, val_ds, _, samples = train._datasets(recipe, replicas=2, worker=1, chief=False)
    policy = tf.data.experimental.AutoShardPolicy
    assert train_ds.options().experimental_distribute.auto_shard_policy == policy.OFF
    assert val_ds.options().experimental_distribute.auto_shard_policy == policy.DATA
    assert samples == []
    first = next(iter(train_ds))[0].numpy()
    worker0 = next(iter(train._datasets(recipe, replicas=2, worker=0)[0]))[0].numpy()
    assert not np.allclose(first, worker0)  # another seed, other crops
