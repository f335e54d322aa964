"""The csra and ml_decoder heads: their maths against NumPy, and each end to end."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from multilabel_keras import Predictor, build_model, from_folders, train
from multilabel_keras.data.images import load_images
from multilabel_keras.models.heads import CSRA, MLDecoder, head_spec
from multilabel_keras.models.surgery import head_of, is_transfer_model

from conftest import calibrated_backbone


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def test_csra_matches_the_papers_formula_in_numpy():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    layer = CSRA(3, lam=0.3, temperature=2.0)
    layer.build(maps.shape)
    kernel = rng.normal(size=(5, 3)).astype("float32")
    bias = rng.normal(size=(3,)).astype("float32")
    layer.set_weights([kernel, bias])
    got = keras.ops.convert_to_numpy(layer(maps))

    x = maps.reshape(2, 12, 5).astype(np.float64)
    m = kernel.T.astype(np.float64)                          # (labels, channels)
    scores = x @ (m / np.linalg.norm(m, axis=1, keepdims=True)).T   # (batch, positions, labels)
    base = scores.mean(axis=1)
    attended = (_softmax(2.0 * scores, axis=1) * scores).sum(axis=1)
    np.testing.assert_allclose(got, base + 0.3 * attended + bias, rtol=1e-5, atol=1e-5)


def test_ml_decoder_matches_a_numpy_cross_attention_decoder():
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(2, 2, 3, 6)).astype("float32")
    layer = MLDecoder(5, groups=2, dim=8, heads=2, dropout=0.0)
    layer(maps)
    # Non-trivial weights everywhere, biases and norms included.
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32")
                       for w in layer.get_weights()])
    got = keras.ops.convert_to_numpy(layer(maps, training=False))

    w = {v.path.split("/", 1)[-1]: keras.ops.convert_to_numpy(v).astype(np.float64)
         for v in layer.weights}

    def get(suffix):
        (key,) = [k for k in w if k.endswith(suffix)]
        return w[key]

    tokens = np.maximum(maps.reshape(2, 6, 6) @ get("embed/kernel") + get("embed/bias"), 0)
    queries = np.broadcast_to(get("queries"), (2, 2, 8))
    q = np.einsum("bkd,dhe->bkhe", queries, get("query/kernel")) + get("query/bias")
    k = np.einsum("btd,dhe->bthe", tokens, get("key/kernel")) + get("key/bias")
    v = np.einsum("btd,dhe->bthe", tokens, get("value/kernel")) + get("value/bias")
    attention = _softmax(np.einsum("bkhe,bthe->bhkt", q, k) / np.sqrt(4), axis=-1)
    heads = np.einsum("bhkt,bthe->bkhe", attention, v)
    attended = np.einsum("bkhe,hed->bkd", heads, get("attention_output/kernel")) + get(
        "attention_output/bias")
    x = _layer_norm(queries + attended, get("norm1/gamma"), get("norm1/beta"))
    ffn = np.maximum(x @ get("hidden/kernel") + get("hidden/bias"), 0) @ get("project/kernel")
    x = _layer_norm(x + ffn + get("project/bias"), get("norm2/gamma"), get("norm2/beta"))
    logits = np.einsum("bkd,kdg->bkg", x, get("group_kernel")).reshape(2, 6) + get("group_bias")
    np.testing.assert_allclose(got, logits[:, :5], rtol=1e-4, atol=1e-4)


def test_head_names_and_refusals():
    assert head_spec("sigmoid").name == "dense"
    with pytest.raises(ValueError, match="head must be one of dense, softmax2, csra, ml_decoder"):
        build_model("mobilenetv2", 3, (32, 32, 3), head="attention")
    with pytest.raises(ValueError, match="no hidden layer"):
        build_model("mobilenetv2", 3, (32, 32, 3), head="csra", hidden=64)
    with pytest.raises(ValueError, match="ml_decoder groups must be in"):
        build_model("mobilenetv2", 3, (32, 32, 3), head="ml_decoder", head_options={"groups": 4})
    with pytest.raises(ValueError, match="head 'csra' takes lam, temperature; got dim"):
        build_model("mobilenetv2", 3, (32, 32, 3), head="csra", head_options={"dim": 4})


@pytest.mark.parametrize("head", ["csra", "ml_decoder"])
def test_attention_heads_read_the_map_and_split_for_the_probe(head):
    model = build_model("efficientnetb0", 4, (32, 32, 3), head=head)
    assert is_transfer_model(model)
    assert "pooler" not in [layer.name for layer in model.layers]
    encoder, tail = head_of(model)
    assert len(encoder.output_shape) == 4 and tail.output_shape == (None, 4)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(tail.predict_on_batch(encoder.predict_on_batch(x)),
                               model.predict_on_batch(x), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["csra", "ml_decoder"])
def test_attention_head_end_to_end(tmp_path, folder_data, head):
    """LP-FT (probe on cached maps) two epochs, safe-mode reload, Grad-CAM, SavedModel export."""
    samples = from_folders(folder_data)
    images = load_images(samples.paths, 32)
    weights = calibrated_backbone(str(tmp_path / "backbone.weights.h5"), images)
    result = train(samples, tmp_path / "run", "mobilenetv2", image_size=32, epochs=2,
                   batch_size=8, weights=weights, model_kwargs={"head": head}, val_split=0.25,
                   verbose=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    # The backbone's batch norms were fitted on tf-scaled images: the measured scaling is tf.
    assert config["model_kwargs"] == {"head": head, "preprocessing": "tf"}
    assert config["linear_probe"]["epochs"] >= 1   # the probe trained the head on cached maps
    predictor = Predictor.load(tmp_path / "run")   # safe_mode=True
    assert predictor.model.get_layer("head_attention").__class__.__name__ == (
        "CSRA" if head == "csra" else "MLDecoder")
    scores = predictor.predict_scores(images)
    raw = np.asarray(result.model.predict_on_batch(images), np.float64)
    np.testing.assert_allclose(scores, predictor.calibrated(raw), atol=1e-5)

    from multilabel_keras.inference.explain import grad_cam

    heat, _ = grad_cam(predictor.model, images[:1], 0)
    assert np.isfinite(heat).all() and heat.max() <= 1.0 + 1e-6

    from multilabel_keras.inference.export import export_run

    out = export_run(tmp_path / "run", tmp_path / "exported", "savedmodel")
    loaded = tf.saved_model.load(out)
    served = loaded.serve(tf.constant(images))
    np.testing.assert_allclose(np.asarray(served), scores, atol=1e-4)
    assert os.path.isfile(tmp_path / "exported" / "export.json")
