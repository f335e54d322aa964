"""The same promise through every command, reader and the Python API.

One clear line naming the file, label, argument or flag at fault; a named
warning where something is left out; nothing of the user's changed. Each
oracle is independent of the code under test: a file's bytes before and
after, the label list a person would write down, scikit-learn's own
``check_array`` on the same input, counts done by hand.
"""

import json
import os
import shutil
import subprocess
import sys
import unicodedata
import warnings

import numpy as np
import pytest

from conftest import draw, make_folder_data, write_rgb
from multilabel_keras.cli import main


def _cli(*argv, env=None, **kwargs):
    """The console script in a child process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "multilabel_keras.cli", *map(str, argv)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, **kwargs)


def _one_line(err):
    lines = [line for line in err.strip().splitlines() if "warning:" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny trained run (2 epochs, 32 px) and its data folder."""
    from multilabel_keras import from_folders, train

    root = tmp_path_factory.mktemp("promises")
    data = make_folder_data(root / "data", per_folder=5)
    train(from_folders(data), root / "run", image_size=32, epochs=2, batch_size=8, verbose=0)
    return root / "run"


# 1. A command never replaces a file of the user's.

def test_explain_refuses_to_replace_an_existing_file(run_dir, tmp_path, capsys):
    from multilabel_keras import explain

    image = tmp_path / "mine.jpg"
    write_rgb(str(image), draw("red", "square"))
    before = image.read_bytes()
    assert main(["explain", "--run", str(run_dir), "--label", "red", "--out", str(image),
                 str(image)]) == 2
    assert "--overwrite" in _one_line(capsys.readouterr().err)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        explain(str(run_dir), str(image), "red", out=str(image))
    assert image.read_bytes() == before
    # Several images into a folder: every target is checked before the first is written.
    folder = tmp_path / "overlays"
    folder.mkdir()
    (folder / "mine_red.png").write_bytes(b"the user's")
    other = tmp_path / "other.jpg"
    write_rgb(str(other), draw("blue", "circle"))
    assert main(["explain", "--run", str(run_dir), "--label", "red", "--out", str(folder),
                 str(other), str(image)]) == 2
    assert sorted(os.listdir(folder)) == ["mine_red.png"]
    assert (folder / "mine_red.png").read_bytes() == b"the user's"
    assert main(["explain", "--run", str(run_dir), "--label", "red", "--out", str(image),
                 "--overwrite", str(image)]) == 0
    assert image.read_bytes() != before


def test_demo_refuses_a_folder_of_the_users(tmp_path, capsys):
    from multilabel_keras.demo_job import run_demo

    out = tmp_path / "mine"
    out.mkdir()
    (out / "test.csv").write_text("my own manifest\n")
    assert main(["demo", "--out", str(out), "--quiet"]) == 2
    assert "test.csv" in _one_line(capsys.readouterr().err)
    with pytest.raises(FileExistsError, match="did not write"):
        run_demo(str(out), log=lambda line: None)
    assert os.listdir(out) == ["test.csv"] and (out / "test.csv").read_text() == "my own manifest\n"


def test_outputs_inside_the_data_folder_are_refused_and_never_read_as_data(run_dir, tmp_path,
                                                                            capsys):
    from multilabel_keras import from_folders

    data = make_folder_data(tmp_path / "data", per_folder=2)
    for command in (["train", "--data", data, "--out", data / "runs" / "a", "--epochs", "1"],
                    ["inspect", "--data", data, "--out", data / "report"]):
        assert main(list(map(str, command))) == 2
        assert "inside the data folder" in _one_line(capsys.readouterr().err)
    assert sorted(os.listdir(data)) == ["blue_circle", "blue_square", "red_circle", "red_square"]
    # A run kept there through the Python API is left out of the data, by name.
    shutil.copytree(run_dir, data / "runs")
    with pytest.warns(UserWarning, match=r"written by multilabel_keras.*runs"):
        samples = from_folders(data)
    assert set().union(*samples.labels) == {"red", "blue", "circle", "square"}


def test_inspect_refuses_to_replace_its_report_unless_asked(tmp_path, capsys):
    data = make_folder_data(tmp_path / "data", per_folder=2)
    out = tmp_path / "report"
    out.mkdir()
    (out / "inspect.json").write_text("mine")
    assert main(["inspect", "--data", str(data), "--out", str(out)]) == 2
    assert "--overwrite" in _one_line(capsys.readouterr().err)
    assert (out / "inspect.json").read_text() == "mine"
    assert main(["inspect", "--data", str(data), "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "inspect.json").read_text())["num_images"] == 8


# 2. One rule for label names, in every reader.

def _folders(root, names, per_folder=2):
    for k, name in enumerate(names):
        for i in range(per_folder):
            write_rgb(str(root / name / f"{i}.png"), draw("red", "square", seed=10 * k + i))
    return root


def test_white_space_and_unicode_forms_do_not_split_a_label(tmp_path):
    from multilabel_keras import from_csv, from_folders

    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    root = _folders(tmp_path / "data", ["red _circle", "red_circle", f"{nfc}_square",
                                        f"{nfd}_square"])
    with pytest.warns(UserWarning, match="spellings read as one label") as caught:
        samples = from_folders(root)
    assert set().union(*samples.labels) == {"red", "circle", "square", nfc}  # as a person writes
    assert "'red '" in str(caught[0].message)
    lines = ["filename,labels"] + [f"data/{os.path.relpath(p, root)},{label} square"
                                   for p, label in zip(samples.paths, [" red", "red", nfd, nfc] * 2)]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_csv_labels = set().union(*from_csv(tmp_path / "labels.csv").labels)
    assert from_csv_labels == {"red", "square", nfc}
    done = _cli("inspect", "--data", root)
    assert done.returncode == 0 and "4 labels" in done.stdout, done.stderr
    assert "spellings read as one label" in done.stderr


def test_labels_differing_only_in_case_are_kept_and_named(tmp_path):
    from multilabel_keras import from_folders

    with pytest.warns(UserWarning, match="'Red' / 'red'"):
        samples = from_folders(_folders(tmp_path / "data", ["Red_circle", "red_square"]))
    assert {"Red", "red"} <= set().union(*samples.labels)


def test_a_wide_csv_column_with_no_positive_is_named(tmp_path, capsys):
    from multilabel_keras import from_csv

    root = _folders(tmp_path, ["img"], per_folder=3)
    rows = ["filename,red,sea", "img/0.png,1,0", "img/1.png,0,0", "img/2.png,1,0"]
    (root / "wide.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match=r"no positive image.*'sea'"):
        samples = from_csv(root / "wide.csv")
    assert set().union(*samples.labels) == {"red"}
    done = _cli("inspect", "--data", root / "wide.csv")  # a child: pytest would catch the warning
    assert done.returncode == 0 and "warning:" in done.stderr and "'sea'" in done.stderr


def test_a_comma_in_a_labels_cell_is_named_and_label_sep_splits_it(tmp_path, capsys):
    from multilabel_keras import from_csv

    root = _folders(tmp_path, ["img"], per_folder=2)
    rows = ["filename,labels", 'img/0.png,"red,square"', 'img/1.png,"blue,circle"']
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match="label_sep=','"):
        from_csv(root / "labels.csv")
    done = _cli("inspect", "--data", root / "labels.csv")
    assert done.returncode == 0 and "pass --label-sep , if the commas" in done.stderr
    assert set().union(*from_csv(root / "labels.csv", label_sep=",").labels) == {
        "red", "square", "blue", "circle"}
    assert main(["inspect", "--data", str(root / "labels.csv"), "--label-sep", ","]) == 0
    assert "4 labels" in capsys.readouterr().out


# 3. A requested validation split that cannot be honoured says so.

def test_one_image_per_label_still_gets_a_validation_split():
    from multilabel_keras import iterative_split

    for n in (5, 10, 37):
        train_idx, val_idx = iterative_split(np.eye(n, dtype=int), (0.8, 0.2))
        assert len(val_idx) == round(0.2 * n) and len(train_idx) == n - round(0.2 * n)
        assert sorted(np.concatenate([train_idx, val_idx]).tolist()) == list(range(n))


@pytest.mark.slow
def test_train_holds_out_validation_when_every_label_has_one_image(tmp_path):
    root = _folders(tmp_path / "data", ["sea", "sky", "sun", "sand", "tree"], per_folder=1)
    done = _cli("train", "--data", root, "--sep", "", "--out", tmp_path / "run", "--epochs", "1",
                "--image-size", "32", "--quiet")
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["num_train"], config["num_val"]) == (4, 1)  # 0.2 x 5 images, by hand
    assert "mAP" in json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_an_empty_validation_split_is_said_with_counts(tmp_path):
    from multilabel_keras.data.splits import check_hold_out

    with pytest.warns(UserWarning, match=r"val_split=0.2 of 1 image\(s\) holds out none"):
        check_hold_out(1, 0, 0.2)
    with pytest.raises(ValueError, match="leaves none to train on"):
        check_hold_out(0, 1, 0.5)


# 4. One list of image extensions; what is left out is named.

def test_every_jpeg_extension_is_an_image_to_folders_and_predict(run_dir, tmp_path, capsys):
    from multilabel_keras import from_folders
    from multilabel_keras.cli import image_paths

    folder = tmp_path / "data" / "red_square"
    for i, ext in enumerate((".jpg", ".JPEG", ".jpe", ".jfif", ".png")):
        kind = ".png" if ext == ".png" else ".jpg"
        write_rgb(str(tmp_path / f"{i}{kind}"), draw("red", "square", seed=i))
        os.makedirs(folder, exist_ok=True)
        shutil.move(tmp_path / f"{i}{kind}", folder / f"{i}{ext}")
    shutil.copy(folder / "4.png", folder / "disguised.dat")
    with pytest.warns(UserWarning, match=r"another extension.*disguised\.dat"):
        samples = from_folders(tmp_path / "data")
    names = sorted(os.path.basename(p) for p in samples.paths)
    assert names == ["0.jpg", "1.JPEG", "2.jpe", "3.jfif", "4.png"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sorted(map(os.path.basename, image_paths([str(folder)]))) == names
    assert main(["predict", "--run", str(run_dir), str(folder)]) == 0
    printed = [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()]
    assert sorted(map(os.path.basename, printed)) == names


# 5. A run folder that is not what it seems is named, with the value.

@pytest.mark.parametrize("file, change, named", [
    ("thresholds.json", lambda d: d["thresholds"].update(red=1.5), "'red': 1.5"),
    ("thresholds.json", lambda d: d["thresholds"].update(red=-0.1), "'red': -0.1"),
    ("config.json", lambda d: d.update(image_size=0), "got 0"),
    ("config.json", lambda d: d.update(image_size="32"), "got '32'"),
    ("labels.json", lambda d: d["classes"].insert(0, d["classes"][0]), "listed twice"),
])
def test_out_of_range_run_values_are_named(run_dir, tmp_path, capsys, file, change, named):
    from multilabel_keras import Predictor

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    data = json.loads((run / file).read_text())
    change(data)
    (run / file).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=file.replace(".", r"\.")) as caught:
        Predictor.load(run)
    assert named in str(caught.value)
    image = str(next((run_dir.parent / "data" / "red_square").iterdir()))
    assert main(["predict", "--run", str(run), image]) == 2
    line = _one_line(capsys.readouterr().err)
    assert file in line and named in line


# 6. The Python API accepts what the ecosystem passes and refuses the rest by name.

def test_predictor_takes_one_path_or_one_image_as_one_image(run_dir):
    from multilabel_keras import Predictor
    from multilabel_keras.data.images import load_images

    predictor = Predictor.load(run_dir)
    image = str(next((run_dir.parent / "data" / "red_square").iterdir()))
    one = predictor.predict(image)
    assert len(one) == 1 and one[0]["path"] == image
    assert one == predictor.predict([image])
    pixels = load_images([image], 32)
    single = predictor.predict_scores(pixels[0])
    np.testing.assert_allclose(single, predictor.predict_scores(pixels), atol=1e-6)
    np.testing.assert_allclose(single, predictor.predict_scores([image]), atol=1e-5)


@pytest.mark.parametrize("bad", [np.float32(3.0), np.zeros(()), np.full((2, 32, 32, 3), np.nan),
                                 np.full((1, 32, 32, 3), np.inf), np.zeros((2, 3, 32, 32, 3)),
                                 np.zeros((1, 32, 32, 3), complex), 7, None, {"a": 1}])
def test_predictor_refuses_what_is_not_images_naming_the_argument(run_dir, bad):
    from sklearn.utils import check_array

    from multilabel_keras import Predictor

    predictor = Predictor.load(run_dir)
    with pytest.raises(ValueError, match=r"^images: "):
        predictor.predict(bad)
    if isinstance(bad, np.ndarray) and bad.ndim == 4 and bad.dtype != complex:
        with pytest.raises(ValueError):  # scikit-learn refuses the same pixels
            check_array(bad.reshape(len(bad), -1))


def test_estimator_refuses_nan_pixels_and_takes_sparse_multi_hot_y():
    from scipy.sparse import csr_matrix
    from sklearn.utils import check_array

    from multilabel_keras import MultiLabelImageClassifier
    from multilabel_keras.data.arrays import as_label_sets

    X = np.stack([draw("red" if i % 2 else "blue", "square", seed=i) for i in range(6)]).astype(
        np.float32)
    y = np.array([[i % 2, 1 - i % 2, 1] for i in range(6)])
    bad = X.copy()
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        check_array(bad.reshape(6, -1))  # the oracle refuses it too
    with pytest.raises(ValueError, match=r"^X: image 2 holds NaN"):
        MultiLabelImageClassifier(epochs=1, image_size=32).fit(bad, y)
    assert as_label_sets(csr_matrix(y)) == as_label_sets(y)
    assert as_label_sets(y.tolist()) == as_label_sets(y)
    with pytest.raises(ValueError, match="only 0 and 1"):
        as_label_sets(np.full((6, 3), 2))
    with pytest.raises(ValueError, match=r"y\[0\] is 'red'"):
        as_label_sets(["red", "blue"])


# 7. The machine's environment never shows a traceback or a riddle.

def test_an_unusable_keras_backend_is_one_line():
    done = _cli("list-models", env={"KERAS_BACKEND": "no-such-backend"})
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "KERAS_BACKEND='no-such-backend'" in line and done.stdout == ""


@pytest.mark.slow
def test_a_terminal_that_cannot_show_a_label_gets_it_escaped(tmp_path):
    root = _folders(tmp_path / "data", ["café_square", "red_square"])
    done = _cli("inspect", "--data", root, env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    assert "caf\\xe9" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_closed_pipe_ends_predict_quietly(run_dir):
    folder = run_dir.parent / "data"
    # More lines than a pipe's buffer holds, so the child is still writing when it closes.
    child = subprocess.Popen([sys.executable, "-m", "multilabel_keras.cli", "predict", "--run",
                              str(run_dir), *[str(folder)] * 20], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    first = child.stdout.readline()
    child.stdout.close()  # what `| head -1` does
    err = child.stderr.read()
    assert child.wait(timeout=300) == 141
    assert json.loads(first)["path"] and err.strip() == ""


def test_an_export_whose_out_appears_meanwhile_names_out_and_leaves_no_staging(run_dir, tmp_path,
                                                                               monkeypatch):
    from multilabel_keras.inference import export

    out = tmp_path / "exported"
    stale = tmp_path / f".exported.{2 ** 22 + 12345}.abc123.tmp"  # a killed export's leftovers
    stale.mkdir()
    real = export.export_metadata

    def racing(*args, **kwargs):
        out.mkdir()  # another export finished first
        (out / "theirs.txt").write_text("kept")
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "export_metadata", racing)
    with pytest.raises(FileExistsError, match=f"{out}.*created by someone else"):
        export.export_run(str(run_dir), str(out), "savedmodel")
    assert sorted(os.listdir(tmp_path)) == ["exported"]  # no staging folder, stale one gone
    assert os.listdir(out) == ["theirs.txt"]


# 8. A full disk names the file that could not be written.

def test_a_write_that_fails_names_the_final_file_not_its_temporary(tmp_path):
    import errno

    from multilabel_keras.io import atomic_path

    target = tmp_path / "model.keras"
    with pytest.raises(OSError) as caught:
        with atomic_path(str(target)):
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    assert caught.value.filename == str(target) and caught.value.errno == errno.EFBIG
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_a_file_size_limit_during_training_names_the_file(tmp_path):
    data = make_folder_data(tmp_path / "data", per_folder=3)
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
            "from multilabel_keras.cli import main\n"
            f"sys.exit(main(['train', '--data', {str(data)!r}, '--out', {str(tmp_path / 'run')!r},"
            " '--epochs', '1', '--image-size', '32', '--quiet']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert "File too large" in line and str(tmp_path / "run") in line
    assert ".tmp" not in line
