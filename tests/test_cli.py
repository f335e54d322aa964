import json
import os
import shutil
import subprocess
import sys

import pytest

from multilabel_keras.cli import main


def test_console_script_lists_models():
    out = subprocess.run(
        [sys.executable, "-m", "multilabel_keras.cli", "list-models"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert "smallervggnet" in out and "mlp" in out


def test_help_and_version_answer_without_loading_tensorflow():
    code = ("import sys\nfrom multilabel_keras.cli import main\n"
            "for argv in (['--help'], ['train', '--help'], ['--version']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('LOADED', 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED False False" in done.stdout
    from multilabel_keras import __version__

    assert f"multilabel-keras {__version__}" in done.stdout
    assert "(default 75;" in " ".join(done.stdout.split())  # train --epochs shows its default
    assert done.stderr == ""


@pytest.mark.slow
def test_progress_is_one_line_per_epoch_into_a_pipe(folder_data, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "multilabel_keras.cli", "train", "--data", str(folder_data),
         "--epochs", "2", "--image-size", "32", "--batch-size", "8", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout and "\x08" not in done.stdout
    epoch_lines = [line for line in done.stdout.splitlines() if line.startswith("Epoch ")]
    assert epoch_lines == ["Epoch 1/2", "Epoch 2/2"]
    assert len(done.stdout.splitlines()) < 30  # no frame per batch
    assert "oneDNN" not in done.stderr and "absl" not in done.stderr


def test_errors_are_one_clear_line(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run")])
    assert code == 2
    assert "data not found" in capsys.readouterr().err


@pytest.mark.slow
def test_train_evaluate_predict(folder_data, csv_data, tmp_path, capsys):
    run = str(tmp_path / "run")
    code = main(["train", "--data", str(folder_data), "--model", "smallervggnet", "--epochs", "2",
                 "--image-size", "32", "--batch-size", "8", "--out", run, "--val-split", "0.25",
                 "--seed", "1", "--quiet"])
    assert code == 0
    for name in ("model.keras", "labels.json", "thresholds.json", "config.json",
                 "history.csv", "plot.png", "metrics.json"):
        assert os.path.isfile(os.path.join(run, name)), name
    capsys.readouterr()

    assert main(["evaluate", "--run", run, "--data", str(folder_data)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    metrics = json.loads(out[0])
    for key in ("mAP", "micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "per_label",
                "num_images"):
        assert key in metrics
    assert metrics["num_images"] == 24
    assert set(metrics["per_label"]["red"]) >= {"precision", "recall", "f1", "ap", "support"}

    # The CSV layout evaluates too (its labels are the same names).
    assert main(["evaluate", "--run", run, "--data", str(csv_data)]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] == 8

    images = [os.path.join(folder_data, "red_square", "0.jpg"), os.path.join(folder_data, "blue_circle", "1.jpg")]
    assert main(["predict", "--run", run, *images]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["path"] for line in lines] == images
    assert set(lines[0]["scores"]) == {"blue", "circle", "red", "square"}
    assert all(set(line["labels"]) <= set(line["scores"]) for line in lines)

    # A folder stands for every image under it; a bad image is named and the rest go on.
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)
    shutil.copy(images[0], photos / "a.jpg")
    shutil.copy(images[1], photos / "more" / "b.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (photos / "notes.txt").write_text("not an image")
    assert main(["predict", "--run", run, str(photos)]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.strip().splitlines()]
    expected = [str(photos / "a.jpg"), str(photos / "broken.jpg"), str(photos / "more" / "b.jpg")]
    assert [line["path"] for line in lines] == expected
    assert "error" in lines[1] and "labels" not in lines[1]
    # Oracle: the same images predicted on their own, without the bad one beside them.
    alone = [json.loads(x) for x in _predict_alone(run, images, capsys)]
    assert [lines[0]["scores"], lines[2]["scores"]] == [alone[0]["scores"], alone[1]["scores"]]
    err = captured.err.strip().splitlines()
    assert len(err) == 2 and "broken.jpg" in err[0] and "1 of 3 images" in err[1]

    # A second train into the same folder is refused, the first run untouched.
    before = os.path.getmtime(os.path.join(run, "model.keras"))
    assert main(["train", "--data", str(folder_data), "--out", run, "--epochs", "1", "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert os.path.getmtime(os.path.join(run, "model.keras")) == before


def _predict_alone(run, images, capsys):
    assert main(["predict", "--run", run, *images]) == 0
    return capsys.readouterr().out.strip().splitlines()


@pytest.mark.slow
def test_train_with_the_transfer_schedule(folder_data, tmp_path, capsys):
    import keras

    from multilabel_keras.runs.records import read_history

    backbone = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    weights = str(tmp_path / "vgg16_notop.weights.h5")
    backbone.save_weights(weights)
    run = str(tmp_path / "run")
    code = main(["train", "--data", str(folder_data), "--model", "vgg16", "--weights", weights,
                 "--freeze-epochs", "1", "--finetune-epochs", "1", "--unfreeze-from", "block5",
                 "--head", "softmax2", "--image-size", "32", "--batch-size", "8", "--out", run,
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert [row["phase"] for row in read_history(os.path.join(run, "history.csv"))] == [1, 2]
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["schedule"]["unfreeze_from"] == "block5" and config["weights"] == weights

    code = main(["train", "--data", str(folder_data), "--model", "vgg16", "--freeze-epochs", "1",
                 "--finetune-epochs", "1", "--unfreeze-from", "block9", "--image-size", "32",
                 "--out", str(tmp_path / "bad"), "--quiet"])
    assert code == 2
    assert "no layer named 'block9'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "bad")  # refused before anything was written


@pytest.mark.slow
def test_extract_features_then_train_on_them(folder_data, tmp_path, capsys):
    feat, run = str(tmp_path / "feat"), str(tmp_path / "run")
    command = ["extract-features", "--data", str(folder_data), "--backbone", "mobilenetv2",
               "--image-size", "32", "--out", feat]
    with pytest.raises(SystemExit):  # random features score near chance: --weights is required
        main(command)
    assert "--weights" in capsys.readouterr().err and not os.path.exists(feat)
    with pytest.warns(UserWarning, match="random weights"):
        assert main(command + ["--weights", "none"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "backbone": "mobilenetv2", "image_size": 32, "dim": 1280, "count": 24}
    with pytest.warns(UserWarning, match="random weights"):
        assert main(["train", "--features", feat, "--epochs", "2", "--out", run, "--quiet"]) == 0
    capsys.readouterr()
    image = os.path.join(folder_data, "red_square", "0.jpg")
    assert main(["predict", "--run", run, image]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == image
    with pytest.raises(SystemExit):  # argparse: --features and --data exclude each other
        main(["train", "--features", feat, "--data", str(folder_data), "--out", run])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.slow
def test_recipe_flags_reach_the_run(folder_data, tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "--data", str(folder_data), "--epochs", "1", "--image-size", "32",
                 "--batch-size", "8", "--mix", "0.5", "--lr-plan", "cosine", "--pooling", "avg",
                 "--out", run, "--quiet"]) == 0
    config = json.load(open(os.path.join(run, "config.json")))
    assert (config["mix"], config["lr_plan"]) == (0.5, "cosine")
    assert config["model_kwargs"]["pooling"] == "avg"
    import keras

    model = keras.saving.load_model(os.path.join(run, "model.keras"), safe_mode=True)
    assert model.get_layer("pooler") and "flatten" not in [la.name for la in model.layers]


@pytest.mark.parametrize("flag, value", [
    ("--epochs", "0"), ("--epochs", "-2"), ("--batch-size", "0"), ("--image-size", "0"),
    ("--learning-rate", "nan"), ("--learning-rate", "-1"), ("--finetune-learning-rate", "inf"),
    ("--val-split", "1.0"), ("--val-split", "-0.1"), ("--mix", "2"), ("--finetune-epochs", "-1"),
])
def test_bad_numeric_flags_are_refused_before_anything_is_written(folder_data, tmp_path, capsys,
                                                                  flag, value):
    out = tmp_path / "run"
    code = main(["train", "--data", str(folder_data), "--out", str(out), flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and flag in err[0] and "Traceback" not in err[0]
    assert not out.exists()
