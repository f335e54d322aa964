"""A seed fixes the run: two seeded runs of each recipe give identical weights.

The oracle is an uninterrupted second run in the same process with the same
seed: every random draw (initialisation, dropout, augmentation, mosaics,
recolouring, shuffling, the split) must follow the seed, so the two models
agree bit for bit. A different seed must give a different model, or the
test could pass with a seed that is ignored.
"""

import numpy as np
import pytest

from conftest import calibrated_backbone, make_folder_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from multilabel_keras import from_folders

    return from_folders(make_folder_data(tmp_path_factory.mktemp("seeds") / "data", per_folder=5))


@pytest.fixture(scope="module")
def weights(tmp_path_factory, data):
    from multilabel_keras.data.images import load_images

    path = str(tmp_path_factory.mktemp("weights") / "backbone.weights.h5")
    return calibrated_backbone(path, load_images(data.paths[:8], 32))


def _weights_of(run_dir):
    import keras

    import multilabel_keras  # noqa: F401  registers the library's layers

    model = keras.saving.load_model(f"{run_dir}/model.keras", safe_mode=True, compile=False)
    return [np.asarray(w) for w in model.get_weights()]


def _same(a, b):
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y)
                                    for x, y in zip(a, b))


RECIPES = {
    # scratch: augmentation, mosaics and recolouring all draw from the seed
    "scratch": dict(model="smallervggnet", image_size=32, epochs=2, batch_size=8, mix=0.5,
                    recolour=0.5),
    "transfer": dict(model="mobilenetv2", image_size=32, epochs=2, batch_size=8),
}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_two_seeded_runs_give_identical_weights(recipe, data, weights, tmp_path):
    from multilabel_keras import train

    kwargs = dict(RECIPES[recipe], seed=3, verbose=0)
    if recipe == "transfer":
        kwargs["weights"] = weights
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train(data, tmp_path / name, **{**kwargs, "seed": seed})
        runs.append(_weights_of(tmp_path / name))
    assert _same(runs[0], runs[1]), f"{recipe}: the same seed gave different weights"
    assert not _same(runs[0], runs[2]), f"{recipe}: another seed gave the same weights"


@pytest.mark.slow
def test_two_seeded_twin_runs_give_identical_weights(data, tmp_path):
    from multilabel_keras import train_twin

    runs = []  # two runs only (the twin is the slowest recipe); the others check a second seed
    for name in ("a", "b"):
        train_twin(data, tmp_path / name, backbone="mobilenetv2", image_size=32, batch_size=8,
                   epochs=1, seed=1, verbose=0)
        runs.append(_weights_of(tmp_path / name))
    assert _same(runs[0], runs[1])


@pytest.mark.slow
def test_two_seeded_feature_runs_give_identical_weights(data, tmp_path):
    import warnings

    from multilabel_keras import extract_features, train_on_features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random backbone: only the seed matters here
        extract_features(data, tmp_path / "features", "mobilenetv2", weights=None, image_size=32,
                         verbose=0)
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        train_on_features(tmp_path / "features", tmp_path / name, epochs=3, seed=seed, verbose=0)
        runs.append(_weights_of(tmp_path / name))
    assert _same(runs[0], runs[1])
    assert not _same(runs[0], runs[2])


@pytest.mark.slow
def test_two_command_line_runs_in_fresh_processes_give_identical_weights(tmp_path):
    """Two processes (different hash seeds), one with deterministic kernels: the same model."""
    import os
    import subprocess
    import sys

    data = make_folder_data(tmp_path / "data", per_folder=4)
    runs = []
    for name, extra in (("a", []), ("b", ["--deterministic"])):
        done = subprocess.run(
            [sys.executable, "-m", "multilabel_keras.cli", "train", "--data", str(data), "--out",
             str(tmp_path / name), "--epochs", "2", "--image-size", "32", "--batch-size", "8",
             "--mix", "0.5", "--seed", "7", "--quiet", *extra],
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "PYTHONHASHSEED": str(len(runs) + 1)})
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(_weights_of(tmp_path / name))
    assert _same(runs[0], runs[1])
    import json

    assert json.loads((tmp_path / "b" / "config.json").read_text())["deterministic"] is True
    assert json.loads((tmp_path / "a" / "config.json").read_text())["deterministic"] is False
