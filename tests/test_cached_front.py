"""LP-FT's fine-tuning on cached maps of the frozen layers: same model, same data, cheaper epochs."""

import json
import warnings

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from multilabel_keras import LabelVocabulary, build_model, from_folders, split_samples, train
from multilabel_keras.data.images import load_images
from multilabel_keras.runs.records import read_history
from multilabel_keras.training import cached_front
from multilabel_keras.models.surgery import split_at
from multilabel_keras.training.cached_front import cache_front, image_views, map_batches

from conftest import calibrated_backbone, make_folder_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    samples = from_folders(make_folder_data(tmp_path_factory.mktemp("front") / "data", per_folder=6))
    vocab = LabelVocabulary().fit(samples.labels)
    return samples, vocab


@pytest.fixture(scope="module")
def weights(tmp_path_factory, data):
    path = str(tmp_path_factory.mktemp("w") / "mnv2.weights.h5")
    return calibrated_backbone(path, load_images(data[0].paths, 32))


def test_front_then_tail_is_the_model_and_shares_its_layers(weights):
    model = build_model("mobilenetv2", 3, (32, 32, 3), weights=weights, hidden=8)
    front, tail = split_at(model, "last:3")
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(tail.predict_on_batch(front.predict_on_batch(x)),
                               model.predict_on_batch(x), atol=1e-5)
    # Training the tail trains the model: a change to a tail layer shows in the model.
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 0.0)
    np.testing.assert_allclose(tail.predict_on_batch(front.predict_on_batch(x)),
                               model.predict_on_batch(x), atol=1e-6)
    with pytest.raises(ValueError, match="after a frozen part"):
        split_at(model, "all")


def test_batches_from_any_start_are_the_uninterrupted_batches():
    maps, targets = np.arange(10) * 10, np.arange(10)
    whole = map_batches(maps, targets, 4, seed=3)
    batches = [next(whole) for _ in range(9)]  # three passes of 4 + 4 + 2
    for first_pass in (batches[:3], batches[3:6]):
        assert sorted(np.concatenate([b[1] for b in first_pass]).tolist()) == list(range(10))
    assert [b[1].tolist() for b in batches[:3]] != [b[1].tolist() for b in batches[3:6]]
    resumed = map_batches(maps, targets, 4, seed=3, start_batch=4)
    for expected in batches[4:]:
        got = next(resumed)
        assert got[0].tolist() == expected[0].tolist() and got[1].tolist() == expected[1].tolist()


def test_each_pass_shows_one_view_of_every_image_resumably():
    targets = np.arange(12)
    views = [np.arange(12) * 10 + v for v in range(3)]  # the view is the value's last digit
    whole = map_batches(views, targets, 5, seed=1)
    batches = [next(whole) for _ in range(9)]  # three passes of 5 + 5 + 2
    seen_views = set()
    for p in range(3):
        maps = np.concatenate([b[0] for b in batches[3 * p:3 * p + 3]])
        rows = np.concatenate([b[1] for b in batches[3 * p:3 * p + 3]])
        assert sorted(rows.tolist()) == list(range(12))
        np.testing.assert_array_equal(maps // 10, rows)  # each map belongs to its own image
        seen_views |= set((maps % 10).tolist())
    assert seen_views == {0, 1, 2}
    resumed = map_batches(views, targets, 5, seed=1, start_batch=5)
    for expected in batches[5:]:
        got = next(resumed)
        assert got[0].tolist() == expected[0].tolist()
    # One view draws the same order as plain maps: runs cached before views stay as they were.
    plain, single = map_batches(views[0], targets, 5, seed=1), map_batches([views[0]], targets, 5, 1)
    for _ in range(4):
        assert next(plain)[0].tolist() == next(single)[0].tolist()


def test_cached_views_are_the_front_of_mirrored_and_moved_images(weights, data):
    samples, vocab = data
    model = build_model("mobilenetv2", 3, (32, 32, 3), weights=weights, hidden=8)
    cached = cache_front(model, "last:3", samples, None, vocab, 32, 8, seed=5, views=3)
    front, _ = split_at(model, "last:3")
    images = load_images(samples.paths, 32)
    maps = cached._maps
    assert len(maps) == 3 and all(m.shape[0] == len(samples) for m in maps)
    # Oracles: the front on the images, and on numpy's own mirror of them.
    np.testing.assert_allclose(maps[0], front.predict_on_batch(images), atol=1e-4)
    np.testing.assert_allclose(maps[1], front.predict_on_batch(images[:, :, ::-1]), atol=1e-4)
    assert np.abs(maps[2] - maps[0]).max() > 1e-3
    again = image_views(images[:8], 3, seed=5, batch_index=0)[2]
    np.testing.assert_array_equal(again, image_views(images[:8], 3, seed=5, batch_index=0)[2])
    np.testing.assert_allclose(maps[2][:8], front.predict_on_batch(again), atol=1e-4)


@pytest.mark.slow
def test_lp_ft_on_cached_maps_keeps_what_the_saved_model_scores(weights, data, tmp_path):
    samples, vocab = data
    # No validation split: the kept epoch is the fine-tuned epoch with the best training mAP,
    # measured by the tail on cached maps of every training image.
    result = train(samples, tmp_path / "run", "mobilenetv2", weights=weights, val_split=0,
                   vocabulary=vocab, image_size=32, batch_size=8, epochs=3, verbose=0,
                   train_map_samples=10_000)
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["cached_front"] is True
    assert config["schedule"]["unfreeze_from"] == "last:7"
    rows = read_history(tmp_path / "run" / "history.csv")
    assert [row["phase"] for row in rows] == [2, 2, 2]
    kept = rows[config["best_epoch"] - 1]["mAP"]
    assert kept == max(row["mAP"] for row in rows)
    # Oracle: plain Keras loads the saved model and scikit-learn scores it on the image files.
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    scores = saved.predict_on_batch(load_images(samples.paths, 32))
    expected = average_precision_score(vocab.transform(samples.labels), scores, average="macro")
    assert kept == pytest.approx(expected, abs=1e-5)
    assert result.metrics is not None


@pytest.mark.slow
def test_mosaics_or_too_many_maps_fine_tune_over_the_images(weights, data, tmp_path, monkeypatch):
    samples, vocab = data
    train_part, val = split_samples(samples, vocab, (0.75, 0.25), 0)
    common = dict(weights=weights, val_samples=val, vocabulary=vocab, image_size=32,
                  batch_size=8, epochs=1, verbose=0, train_map_samples=0,
                  model_kwargs={"preprocessing": "tf"})  # stated: nothing to measure or warn of
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no word needed: mosaics need images
        train(train_part, tmp_path / "mix", "mobilenetv2", mix=0.5, **common)
    assert json.load(open(tmp_path / "mix" / "config.json"))["cached_front"] is False
    monkeypatch.setattr(cached_front, "MAX_CACHE_BYTES", 1000)
    with pytest.warns(UserWarning, match=r"fine-tuning runs over the images: the cached maps of "
                                         r"\d+ images would take"):
        train(train_part, tmp_path / "big", "mobilenetv2", **common)
    assert json.load(open(tmp_path / "big" / "config.json"))["cached_front"] is False
