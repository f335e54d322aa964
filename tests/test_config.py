"""One set of rules for settings: the Python API and the CLI refuse the same bad settings in the same words.

The oracle for "the same words" is each entry point's own output: the Python
message names the setting, the CLI's names the flag, and the rest must match.
"""

import math
import os
import threading
import time

import pytest

from multilabel_keras import Samples, TrainConfig, train, train_on_features, train_twin
from multilabel_keras.cli import main
from multilabel_keras.cli_flags import FLAGS
from multilabel_keras.training.config import ConfigError
from multilabel_keras.training.settings import NUMBERS, SETTINGS, settings_of

# (setting, value in Python, text on the command line): zero, negative, NaN and wrong type.
NUMERIC_CASES = []
for _name in ("epochs", "batch_size", "image_size", "patience", "learning_rate", "val_split",
              "mix", "recolour", "max_bad_fraction", "finetune_learning_rate", "seed",
              "layer_decay"):
    kind = NUMBERS[_name]
    for value in ((0, -1, "three") if kind is int else (-0.5, float("nan"), "half")):
        if _name == "seed" and value == 0:
            continue  # seed 0 is valid
        if _name in ("val_split", "mix", "recolour", "max_bad_fraction") and value == 0:
            continue
        NUMERIC_CASES.append((_name, value, str(value)))
NUMERIC_CASES += [("learning_rate", 0.0, "0"), ("val_split", 1.0, "1"), ("mix", 1.5, "1.5"),
                  ("learning_rate", math.inf, "inf"), ("layer_decay", 0.0, "0"),
                  ("layer_decay", 1.5, "1.5")]


def _python_words(setting, value, call):
    with pytest.raises(ConfigError) as err:
        call(**{setting: value})
    (name, text), = err.value.problems
    assert str(err.value) == f"{name} {text}"
    return name, text


def _cli_words(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    prefix = "multilabel-keras train: error: "
    assert err.startswith(prefix)
    return err[len(prefix):]


@pytest.mark.parametrize("setting,value,text", NUMERIC_CASES,
                         ids=[f"{s}={t}" for s, _, t in NUMERIC_CASES])
def test_python_and_cli_refuse_a_bad_number_in_the_same_words(setting, value, text, tmp_path, capsys):
    flag = FLAGS[setting]
    name, words = _python_words(setting, value, lambda **kw: train(
        Samples([], []), tmp_path / "py", **kw))
    assert name == setting
    cli = _cli_words(capsys, ["train", "--data", str(tmp_path / "never_read"), "--out",
                              str(tmp_path / "cli"), flag, text])
    assert cli == f"{flag} {words}"
    assert not (tmp_path / "py").exists() and not (tmp_path / "cli").exists()


def test_every_numeric_setting_is_covered():
    covered = {s for s, _, _ in NUMERIC_CASES}
    image_numbers = {n for n in NUMBERS if n in settings_of("image")} - {"max_pixels",
                                                                        "train_map_samples"}
    assert image_numbers <= covered


@pytest.mark.parametrize("trainer,setting,value,flags", [
    ("twin", "loss", "focal", ["--model", "xception_twin", "--loss", "focal"]),
    ("twin", "precision", "mixed_bfloat16", ["--model", "xception_twin", "--precision",
                                             "mixed_bfloat16"]),
    ("twin", "distribution", "data_parallel", ["--model", "xception_twin", "--distribute"]),
    ("features", "on_bad_image", "error", ["--on-bad-image", "error"]),
    ("features", "weights", "w.weights.h5", ["--weights", "w.weights.h5"]),
    ("features", "augment", False, ["--no-augment"]),
    ("features", "schedule", "lp_ft", ["--schedule", "lp_ft"]),
])
def test_a_setting_the_trainer_does_not_use_is_refused_by_name(trainer, setting, value, flags,
                                                               tmp_path, capsys):
    call = {"twin": lambda **kw: train_twin(Samples([], []), tmp_path / "py", **kw),
            "features": lambda **kw: train_on_features(tmp_path / "x", tmp_path / "py", **kw)}[trainer]
    name, words = _python_words(setting, value, call)
    assert name == setting and words.startswith(f"is not used by the {trainer} trainer")
    source = ["--features", str(tmp_path / "x")] if trainer == "features" else ["--data",
                                                                                str(tmp_path / "x")]
    cli = _cli_words(capsys, ["train", *source, "--out", str(tmp_path / "cli"), *flags])
    assert cli == f"{FLAGS[setting]} {words}"


def test_unknown_names_and_wrong_types_are_named():
    with pytest.raises(ConfigError, match=r"^epoch is not a setting .*did you mean epochs"):
        TrainConfig("image", epoch=3)
    with pytest.raises(ConfigError) as err:
        TrainConfig("image", threshold_policy="best", colour_labels="red", model=3)
    assert {name for name, _ in err.value.problems} == {"threshold_policy", "colour_labels", "model"}


def test_a_threshold_argument_of_another_policy_is_refused_from_both(tmp_path, capsys):
    name, words = _python_words("threshold_kwargs", {"k": 2}, lambda **kw: train(
        Samples([], []), tmp_path / "py", **kw))
    assert name == "threshold_kwargs.k"
    cli = _cli_words(capsys, ["train", "--data", str(tmp_path / "x"), "--out", str(tmp_path / "c"),
                              "--top-k", "2"])
    assert cli == f"--top-k {words}"


def test_defaults_are_the_configs_not_the_clis():
    from multilabel_keras.cli_flags import train_settings
    from multilabel_keras.cli_parser import build_parser

    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--model",
                                      "xception_twin"])
    trainer, settings = train_settings(args)
    assert (trainer, settings) == ("twin", {})  # nothing typed, nothing decided by the CLI
    config = TrainConfig(trainer, **settings)
    assert (config.batch_size, config.epochs) == (SETTINGS["batch_size"].defaults["twin"],
                                                  SETTINGS["epochs"].defaults["twin"])


def test_a_config_round_trips_through_json():
    config = TrainConfig("image", epochs=4, weights="w.weights.h5", schedule="lp_ft",
                         threshold_policy="top_k", threshold_kwargs={"k": 2})
    again = TrainConfig.from_json(config.to_json())
    assert again.as_dict() == config.as_dict() and again.given == config.given


@pytest.mark.parametrize("name,make", [
    ("fifo", lambda path: os.mkfifo(path)),
    ("endless link", lambda path: os.symlink("/dev/zero", path)),
    ("link loop", lambda path: os.symlink(os.path.basename(path), path)),
])
@pytest.mark.parametrize("target", ["thresholds.json", "labels.json", "config.json"])
def test_a_hostile_run_file_is_refused_by_name_within_a_second(name, make, target, tmp_path, capsys):
    from multilabel_keras import Predictor

    run = tmp_path / "run"
    _tiny_run(run)
    os.remove(run / target)
    make(str(run / target))
    outcome = {}

    def load():
        try:
            Predictor.load(run)
        except (ValueError, FileNotFoundError) as err:
            outcome["error"] = str(err)

    worker = threading.Thread(target=load, daemon=True)
    start = time.monotonic()
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "loading hung"
    assert time.monotonic() - start < 1.0 + _LOAD_SECONDS[0]
    assert str(run / target) in outcome["error"]
    assert main(["predict", "--run", str(run), str(run / "plot.png")]) == 2
    assert target in capsys.readouterr().err


_LOAD_SECONDS = [0.0]


def _tiny_run(run):
    """A run folder with every file, made without training (a tiny Keras model)."""
    import keras

    from multilabel_keras import LabelVocabulary, RunDir

    folder = RunDir(run)
    os.makedirs(run)
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="sigmoid", name="predictions")(pooled))
    model.save(folder.file(folder.MODEL))
    vocabulary = LabelVocabulary().fit([{"a"}, {"b"}])
    vocabulary.save(folder.file(folder.LABELS))
    folder.write_thresholds([0.5, 0.5], vocabulary.classes_, "test")
    folder.write_json(folder.CONFIG, {"image_size": 8})
    from multilabel_keras.plots import plot_history

    plot_history([{"epoch": 1, "loss": 1.0}], folder.file(folder.PLOT))
    start = time.monotonic()
    from multilabel_keras import Predictor

    Predictor.load(run)
    _LOAD_SECONDS[0] = time.monotonic() - start


def test_epochs_is_the_total_over_explicit_phases():
    from multilabel_keras import build_model
    from multilabel_keras.training.plans import choose_plan

    model = build_model("mobilenetv2", 3, (32, 32, 3))
    plan = choose_plan(TrainConfig("image", epochs=5, schedule={"finetune_epochs": 3}), model)
    assert [(p.number, p.epochs) for p in plan.phases(5, 4)] == [(1, 2), (2, 3)]
    with pytest.raises(ConfigError, match="epochs is 10 but the schedule's phases add up to 4"):
        TrainConfig("image", epochs=10, schedule={"freeze_epochs": 2, "finetune_epochs": 2})
    auto = choose_plan(TrainConfig("image", weights="w.weights.h5", epochs=4), model)
    assert auto.name == "lp_ft" and sum(p.epochs for p in auto.phases(4, 4)) == 4
    with pytest.raises(ConfigError) as err:
        choose_plan(TrainConfig("image", epochs=4, unfreeze_from="last:2"), model)
    assert err.value.problems[0][0] == "unfreeze_from" and "plan 'none'" in str(err.value)


def test_the_features_trainer_refuses_a_model_flag(tmp_path, capsys):
    cli = _cli_words(capsys, ["train", "--features", str(tmp_path / "x"), "--out",
                              str(tmp_path / "o"), "--model", "mobilenetv2"])
    assert cli == "--model is not used by the features trainer"
