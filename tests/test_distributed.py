"""Data-parallel training on keras.distribution: two local processes against one.

Oracle: the same run in one process with the same global batch. Each run
is a fresh Python process on the JAX backend (CPU), talking over
127.0.0.1; every subprocess has a time limit.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import make_folder_data

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import jax"], capture_output=True).returncode != 0,
    reason="the [backends] extra (jax) is not installed")

SCRIPT = r"""
import json, os, sys
import numpy as np
from multilabel_keras import from_folders, train

data, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
result = train(from_folders(data), out, "smallervggnet", image_size=32, batch_size=8, epochs=2,
               model_kwargs={"dropout": 0.0}, augment=True, recolour=0.0, val_split=0.25,
               distribution=None if mode == "single" else "data_parallel", verbose=0)
weights = [np.asarray(w, np.float64) for w in result.model.get_weights()]
np.savez(out.rstrip("/") + ".weights.npz", *weights)
print("RESULT " + json.dumps({"files": sorted(os.listdir(out)) if os.path.isdir(out) else None}))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_DISTRIBUTION_")}
    env.update(KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)
    return env


def _start(tmp_path, out, mode, env):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "data"), str(out), mode],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=400):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"a training process ran past {timeout} s:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    # A library may print to stdout without a newline: find the marker anywhere in a line.
    lines = [x[x.index("RESULT ") + len("RESULT "):] for x in out.splitlines() if "RESULT " in x]
    assert lines, f"no RESULT line (exit 0); stdout:\n{out[-2000:]}\nstderr:\n{err[-2000:]}"
    return json.loads(lines[-1])


def _weights(path):
    with np.load(path) as stored:
        return [stored[k] for k in sorted(stored.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path, devices_per_process=2):
    # Two processes of two devices each: the batch is split within and across processes.
    make_folder_data(tmp_path / "data", per_folder=8)
    single = _finish(_start(tmp_path, tmp_path / "single", "single", _env(1)))
    port = _free_port()
    procs = [
        _start(tmp_path, tmp_path / f"proc{i}", "data_parallel", _env(
            devices_per_process, KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
            KERAS_DISTRIBUTION_NUM_PROCESSES="2", KERAS_DISTRIBUTION_PROCESS_ID=str(i)))
        for i in range(2)
    ]
    results = [_finish(p) for p in procs]

    # Process 0 wrote a complete run; process 1 left nothing behind.
    assert "model.keras" in results[0]["files"] and "thresholds.json" in results[0]["files"]
    assert results[1]["files"] is None or results[1]["files"] == []
    assert "model.keras" in single["files"]

    # The sums over devices run in another order, so gradients differ in the
    # last float bits. Adam divides a gradient by its own running size, so on
    # a parameter whose gradient is near zero (a first-layer bias of a unit
    # that rarely fires) that noise becomes a step of up to the learning rate
    # (1e-3). Hence: nearly every parameter agrees to 1e-4, none by more than
    # one Adam step, and the two models compute the same function.
    expected = _weights(tmp_path / "single.weights.npz")
    total = sum(a.size for a in expected)
    for i in range(2):
        got = _weights(tmp_path / f"proc{i}.weights.npz")
        assert [a.shape for a in got] == [b.shape for b in expected]
        diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(got, expected)])
        assert (diffs > 1e-4).sum() <= total // 10000, (diffs > 1e-4).sum()
        assert diffs.max() < 1e-3, diffs.max()
    images = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    scores = [keras.saving.load_model(tmp_path / name / "model.keras").predict(images, verbose=0)
              for name in ("single", "proc0")]
    np.testing.assert_allclose(scores[1], scores[0], atol=1e-4)
    # The runs really trained: the weights moved away from a fresh model's.
    assert max(np.abs(a).max() for a in expected) > 0

    # Validation predictions (per-epoch mAP, thresholds) agree too.
    history = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("single", "proc0")]
    assert history[0]["mAP"] == pytest.approx(history[1]["mAP"], abs=1e-4)


def test_distribution_needs_jax_and_an_even_global_batch(tmp_path):
    code = ("from multilabel_keras.training.distributed import setup_distribution\n"
            "try:\n    setup_distribution('data_parallel')\n"
            "except ValueError as err:\n    print('ERR', err)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_DISTRIBUTION_")}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120).stdout
    assert "ERR" in out and "JAX backend" in out and "20585" in out

    env = _env(2, KERAS_DISTRIBUTION_JOB_ADDRESSES="127.0.0.1:1", KERAS_DISTRIBUTION_NUM_PROCESSES="2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120).stdout
    assert "ERR" in out and "KERAS_DISTRIBUTION_PROCESS_ID" in out

    make_folder_data(tmp_path / "data", per_folder=2)
    code = ("from multilabel_keras import from_folders, train\n"
            "try:\n    train(from_folders(%r), %r, 'smallervggnet', image_size=32, batch_size=7, "
            "epochs=1, distribution='data_parallel', verbose=0)\n"
            "except ValueError as err:\n    print('ERR', err)\n") % (str(tmp_path / "data"),
                                                                    str(tmp_path / "run"))
    out = subprocess.run([sys.executable, "-c", code], env=_env(2), capture_output=True, text=True,
                         timeout=300).stdout
    assert "ERR --batch-size 7 is the global batch" in out and "2 devices" in out
    assert not (tmp_path / "run").exists()
