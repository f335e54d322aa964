"""Nothing runs that should not: no pickle, safe model loading, validated JSON."""

import json
import os
import pathlib
import re
import zipfile

import keras
import pytest

from multilabel_keras import Predictor
from multilabel_keras.io import write_json

from test_inference import _write_run

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "multilabel_keras"


def _sources():
    return {p: p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}


def test_no_pickle_anywhere_in_the_package():
    for path, text in _sources().items():
        code = "\n".join(line.split("#")[0] for line in text.splitlines())
        assert not re.search(r"\bimport (c?pickle|joblib|dill|marshal|shelve)\b", code), path
        assert not re.search(r"allow_pickle\s*=\s*True", code), path
        assert "Lambda(" not in code, path
        for call in re.findall(r"load_model\([^)]*\)", code, flags=re.S):
            assert "safe_mode=True" in call, (path, call)


def test_a_lambda_layer_in_a_run_is_refused(tmp_path):
    _write_run(str(tmp_path / "run"), ["a", "b"])
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Lambda(lambda x: x[:, 0, 0, :2])(inputs)
    keras.Model(inputs, outputs).save(str(tmp_path / "run" / "model.keras"))
    with pytest.raises(ValueError, match="(?i)unsafe|lambda"):
        Predictor.load(tmp_path / "run")


def test_run_files_are_checked_against_the_model(tmp_path):
    _write_run(str(tmp_path / "run"), ["a", "b"], image_size=32)
    write_json(str(tmp_path / "run" / "config.json"), {"image_size": 64})
    with pytest.raises(ValueError, match="config.json says image_size 64 but model.keras takes 32x32"):
        Predictor.load(tmp_path / "run")
    write_json(str(tmp_path / "run" / "config.json"), {"image_size": 32})
    (tmp_path / "run" / "labels.json").write_text('{"classes": "a b"}')
    with pytest.raises(ValueError, match="labels.json"):
        Predictor.load(tmp_path / "run")
    (tmp_path / "run" / "labels.json").write_text("not json")
    with pytest.raises(ValueError, match="labels.json"):
        Predictor.load(tmp_path / "run")
    _write_run(str(tmp_path / "run2"), ["a", "b"])
    write_json(str(tmp_path / "run2" / "thresholds.json"),
               {"rule": {"policy": "exec"}, "thresholds": {"a": 0.5, "b": 0.5}})
    with pytest.raises(ValueError, match="'rule' must name a policy"):
        Predictor.load(tmp_path / "run2")


def test_saved_models_hold_no_code(tmp_path):
    _write_run(str(tmp_path / "run"), ["a", "b"])
    with zipfile.ZipFile(tmp_path / "run" / "model.keras") as archive:
        config = json.loads(archive.read("config.json"))
    assert "lambda" not in json.dumps(config).lower()
    assert os.path.getsize(tmp_path / "run" / "model.keras") > 0
