"""LP-FT, the default recipe for a pretrained backbone: probe the head on cached features, then fine-tune."""

import json
import os

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from multilabel_keras import (LabelVocabulary, TransferSchedule, build_model, from_folders,
                              make_dataset, split_samples, train)
from multilabel_keras.data.images import load_images
from multilabel_keras.models.surgery import head_of
from multilabel_keras.training.linear_probe import linear_probe

from conftest import calibrated_backbone, make_folder_data


@pytest.fixture(scope="module")
def weights(tmp_path_factory, data):
    path = str(tmp_path_factory.mktemp("w") / "mnv2.weights.h5")
    return calibrated_backbone(path, load_images(data[0].paths, 32))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    samples = from_folders(make_folder_data(tmp_path_factory.mktemp("lpft") / "data", per_folder=6))
    vocab = LabelVocabulary().fit(samples.labels)
    train_part, val = split_samples(samples, vocab, (0.75, 0.25), 0)
    return train_part, val, vocab


def _backbone_arrays(model):
    net = model.get_layer("backbone")
    return {f"{layer.name}/{i}": keras.ops.convert_to_numpy(v)
            for layer in net.layers for i, v in enumerate(layer.weights)}, net


def test_head_and_encoder_compose_to_the_model(weights):
    model = build_model("mobilenetv2", 3, (32, 32, 3), weights=weights, hidden=8)
    encoder, head = head_of(model)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(head.predict_on_batch(encoder.predict_on_batch(x)),
                               model.predict_on_batch(x), atol=1e-5)
    assert {la.name for la in head.layers} >= {"head_dropout", "head_hidden", "predictions"}
    with pytest.raises(ValueError, match="no 'backbone' layer; a linear probe needs a transfer"):
        head_of(build_model("smallervggnet", 3, (32, 32, 3)))


def test_linear_probe_trains_the_head_only_and_reports_exact_map(weights, data):
    train_part, val, vocab = data
    model = build_model("mobilenetv2", vocab.num_labels, (32, 32, 3), weights=weights)
    before, _ = _backbone_arrays(model)
    head_before = [np.array(w) for w in model.get_layer("predictions").get_weights()]
    summary = linear_probe(model, make_dataset(train_part, vocab, 32, 8),
                           make_dataset(val, vocab, 32, 8))
    after, _ = _backbone_arrays(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # the backbone never moved
    assert not np.allclose(head_before[0], model.get_layer("predictions").get_weights()[0])
    # The model holds the kept head: its validation AP is the one reported (oracle: sklearn).
    scores = model.predict_on_batch(load_images(val.paths, 32))
    expected = average_precision_score(vocab.transform(val.labels), scores, average="macro")
    assert summary["val_mAP"] == pytest.approx(expected, abs=1e-6)
    assert summary["epochs"] >= 1


@pytest.mark.slow
def test_weights_without_a_schedule_train_with_lp_ft(weights, data, tmp_path):
    train_part, val, vocab = data
    result = train(train_part, tmp_path / "run", "mobilenetv2", weights=weights, val_samples=val,
                   vocabulary=vocab, image_size=32, batch_size=8, epochs=2, verbose=0,
                   train_map_samples=0)
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["schedule"]["linear_probe"] and config["schedule"]["optimizer"] == "adam_cosine"
    assert config["linear_probe"]["epochs"] >= 1
    assert [row["phase"] for row in result.history] == [2, 2]  # fine-tuning epochs only
    # Epoch 0 (the probed head) is kept unless a fine-tuning epoch beats it on validation.
    best = max([config["linear_probe"]["val_mAP"]] + [r["val_mAP"] for r in result.history])
    kept = config["linear_probe"]["val_mAP"] if config["best_epoch"] == 0 else \
        result.history[config["best_epoch"] - 1]["val_mAP"]
    assert kept == best
    assert not os.path.exists(tmp_path / "run" / "resume")


@pytest.mark.slow
def test_fine_tuning_moves_only_the_unfrozen_layers_and_no_batch_norm(weights, data, tmp_path):
    train_part, val, vocab = data
    start = build_model("mobilenetv2", vocab.num_labels, (32, 32, 3), weights=weights)
    before, net = _backbone_arrays(start)
    schedule = TransferSchedule.lp_ft(2, learning_rate=1e-3, unfreeze_from="block_16")
    # No validation split: no probed "epoch 0" to keep, so the kept model is a fine-tuned one.
    train(train_part, tmp_path / "run", "mobilenetv2", weights=weights, val_split=0,
          vocabulary=vocab, image_size=32, batch_size=8, schedule=schedule, verbose=0,
          train_map_samples=8)
    tuned = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    after, _ = _backbone_arrays(tuned)
    first = [la.name for la in net.layers].index("block_16_expand")
    moved = {key.split("/")[0] for key in before if not np.array_equal(before[key], after[key])}
    allowed = {la.name for la in net.layers[first:]
               if not isinstance(la, keras.layers.BatchNormalization)}
    assert moved and moved <= allowed


def test_schedule_validates_its_optimizer_and_plans_a_warm_up():
    with pytest.raises(ValueError, match="'sgd' or 'adam_cosine'"):
        TransferSchedule(optimizer="adamw")
    plan = TransferSchedule.lp_ft(4, learning_rate=1e-3).finetune_optimizer(steps_per_epoch=10)
    rate = plan._learning_rate
    rates = [float(keras.ops.convert_to_numpy(rate(step))) for step in (0, 5, 10, 25, 40)]
    # Linear warm-up over the first epoch to the peak, then a cosine down to zero (by hand).
    assert rates[0] == pytest.approx(0.0, abs=1e-9)
    assert rates[1] == pytest.approx(5e-4, rel=1e-4)
    assert rates[2] == pytest.approx(1e-3, rel=1e-4)
    assert rates[3] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 15 / 30)), rel=1e-4)
    assert rates[4] == pytest.approx(0.0, abs=1e-9)


def test_random_frozen_backbone_warns(data, tmp_path):
    train_part, val, vocab = data
    with pytest.warns(UserWarning, match="random weights"):
        train(train_part, tmp_path / "run", "mobilenetv2", val_samples=val, vocabulary=vocab,
              image_size=32, batch_size=8, verbose=0, train_map_samples=0,
              schedule=TransferSchedule(1, 0))
