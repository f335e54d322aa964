"""Presets: a run saved in keras-hub's layout scores the same when loaded back anywhere.

Oracle: the run's own ``Predictor`` scores, labels and thresholds, compared
with a preset loaded in a fresh process (nothing of this process's state
carried over), by folder and by a handle resolved to a local folder.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_folder_data
from multilabel_keras.cli import main


@pytest.fixture(scope="module")
def run_and_images(tmp_path_factory):
    from multilabel_keras import from_folders, train

    root = tmp_path_factory.mktemp("preset")
    samples = from_folders(make_folder_data(root / "data", per_folder=4))
    train(samples, root / "run", image_size=32, epochs=2, batch_size=8, verbose=0)
    return root / "run", samples.paths[:6]


def test_a_preset_loaded_in_a_fresh_process_scores_like_the_run(run_and_images, tmp_path):
    from multilabel_keras import Predictor, save_preset

    run, images = run_and_images
    preset = tmp_path / "preset"
    save_preset(run, preset)
    assert {"config.json", "metadata.json", "model.weights.h5", "labels.json",
            "thresholds.json", "multilabel.json"} <= set(os.listdir(preset))
    assert json.loads((preset / "metadata.json").read_text())["parameter_count"] > 0
    # The fresh process loads by handle, its resolver pointed at the local folder.
    code = ("import json, sys\nfrom multilabel_keras import load_preset\n"
            "from multilabel_keras.inference import preset\n"
            "preset.RESOLVERS['hf'] = lambda handle: sys.argv[1]\n"
            "p = load_preset('hf://colleague/garments')\n"
            "print(json.dumps({'scores': p.predict_scores(sys.argv[2:]).tolist(), "
            "'labels': p.vocabulary.classes_, 'thresholds': p.thresholds.tolist()}))\n")
    done = subprocess.run([sys.executable, "-c", code, str(preset), *images],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    reference = Predictor.load(run)
    np.testing.assert_allclose(loaded["scores"], reference.predict_scores(images), atol=1e-6)
    assert loaded["labels"] == reference.vocabulary.classes_
    np.testing.assert_allclose(loaded["thresholds"], reference.thresholds)


def test_a_handle_resolves_through_its_scheme_and_the_cli_predicts_from_it(
        run_and_images, tmp_path, monkeypatch, capsys):
    from multilabel_keras import Predictor, load_preset, save_preset
    from multilabel_keras.inference import preset as presets

    run, images = run_and_images
    folder = tmp_path / "hub" / "me" / "garments"
    save_preset(run, folder)
    monkeypatch.setitem(presets.RESOLVERS, "hf",
                        lambda handle: str(tmp_path / "hub" / handle.split("://", 1)[1]))
    np.testing.assert_allclose(load_preset("hf://me/garments").predict_scores(images[:2]),
                               Predictor.load(run).predict_scores(images[:2]), atol=1e-6)
    assert main(["predict", "--preset", "hf://me/garments", images[0]]) == 0
    printed = json.loads(capsys.readouterr().out.splitlines()[0])
    assert printed["path"] == images[0]
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "cli"),
                 "--format", "preset"]) == 0
    assert (tmp_path / "cli" / "multilabel.json").is_file()


def test_a_remote_handle_without_keras_hub_or_network_is_one_line(run_and_images, capsys):
    import importlib.util

    run, images = run_and_images
    code = main(["predict", "--preset", "hf://someone/model", images[0]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    if importlib.util.find_spec("keras_hub") is None:
        assert "needs keras-hub" in err
    else:  # installed: no network here, so the fetch fails by name
        assert "cannot fetch hf://someone/model" in err


def test_existing_preset_folder_and_missing_one_are_named(run_and_images, tmp_path):
    from multilabel_keras import load_preset, save_preset

    run, _ = run_and_images
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("kept")
    with pytest.raises(FileExistsError, match="taken already exists"):
        save_preset(run, tmp_path / "taken")
    assert os.listdir(tmp_path / "taken") == ["mine.txt"]
    with pytest.raises(FileNotFoundError, match="preset folder not found"):
        load_preset(tmp_path / "nothing")
