import json
import os
import warnings

import pytest

from multilabel_keras import LabelVocabulary, Samples, from_folders, train
from multilabel_keras.cli import main
from multilabel_keras.data.diagnostics import (
    inspect_data,
    label_statistics,
    rare_labels,
    unseen_combinations,
)


def _samples():
    labels = [{"red", "dress"}, {"red", "dress"}, {"blue", "dress"}, {"blue", "shirt"},
              {"red"}, set(), {"black", "shirt"}]
    return Samples([f"{i}.jpg" for i in range(len(labels))], labels)


def test_label_statistics():
    stats = label_statistics(_samples())
    assert stats["support"] == {"black": 1, "blue": 2, "dress": 3, "red": 3, "shirt": 2}
    assert stats["cardinality"] == pytest.approx(11 / 7)
    assert stats["density"] == pytest.approx(11 / 7 / 5)
    assert stats["images_without_labels"] == 1 and stats["distinct_label_sets"] == 6
    names = LabelVocabulary().fit(_samples().labels).classes_
    cooc = stats["cooccurrence"]
    assert cooc[names.index("red")][names.index("dress")] == 2
    assert cooc[names.index("dress")][names.index("dress")] == 3


def test_unseen_combinations_and_rare_labels():
    train_part = _samples().subset([0, 2, 3, 4])
    test_part = Samples(["a", "b", "c"], [{"black", "dress"}, {"black", "dress"}, {"red", "dress"}])
    assert unseen_combinations(train_part, test_part) == [{"labels": ["black", "dress"], "count": 2}]
    assert rare_labels(_samples(), (0.5, 0.5)) == {"black": 1}
    assert set(rare_labels(_samples(), (0.8, 0.2))) == {"black", "blue", "dress", "red", "shirt"}


def test_inspect_command_writes_report_and_heatmap(folder_data, tmp_path, capsys):
    out = tmp_path / "inspect"
    assert main(["inspect", "--data", str(folder_data), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "24 images, 4 labels" in printed and "cardinality 2.00" in printed
    report = json.load(open(out / "inspect.json"))
    assert report["support"] == {"blue": 12, "circle": 12, "red": 12, "square": 12}
    assert os.path.getsize(out / "cooccurrence.png") > 1000
    assert inspect_data(from_folders(folder_data))["unseen_in_training"] == []


def test_train_warns_about_combinations_never_seen(folder_data, tmp_path):
    samples = from_folders(folder_data)
    no_red_square = [i for i, s in enumerate(samples.labels) if s != {"red", "square"}]
    only_red_square = [i for i, s in enumerate(samples.labels) if s == {"red", "square"}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        train(samples.subset(no_red_square), tmp_path / "run",
              val_samples=samples.subset(only_red_square), image_size=32, epochs=1, verbose=0,
              train_map_samples=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("never occur in training: red+square x6" in m for m in messages), messages
