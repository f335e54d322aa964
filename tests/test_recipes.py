"""Training recipes: what train uses for what the caller leaves out."""

import json

import pytest

from multilabel_keras import from_folders, train
from multilabel_keras.training.recipes import CLASSIC, RECIPES, resolve_recipe


def test_classic_is_the_published_recipe():
    # The blog: batch 32, Adam(1e-3, decay=lr/epochs), ImageDataGenerator's geometry, flatten.
    assert (CLASSIC["batch_size"], CLASSIC["learning_rate"], CLASSIC["lr_plan"]) == (32, 1e-3, "decay")
    assert CLASSIC["augment"] == {} and CLASSIC["model_kwargs"] == {} and CLASSIC["mix"] == 0.0


def test_model_entry_then_caller_wins():
    assert resolve_recipe("smallervggnet")["recipe"] == "smallervggnet"
    assert resolve_recipe("resnet50")["recipe"] == "classic"
    given = resolve_recipe("smallervggnet", batch_size=8, lr_plan="decay",
                           model_kwargs={"dropout": 0.3})
    assert given["batch_size"] == 8 and given["lr_plan"] == "decay"
    assert given["learning_rate"] == RECIPES["smallervggnet"]["learning_rate"]
    recipe_kwargs = RECIPES["smallervggnet"]["model_kwargs"]
    assert recipe_kwargs["pooling"] == "avg"
    assert given["model_kwargs"] == {**recipe_kwargs, "dropout": 0.3}
    assert resolve_recipe("smallervggnet", model_kwargs={"pooling": None})["model_kwargs"] == {
        **recipe_kwargs, "pooling": None}
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        resolve_recipe("smallervggnet", recipe="fast")


@pytest.mark.slow
def test_train_records_the_settings_it_used(folder_data, tmp_path):
    samples = from_folders(folder_data)
    train(samples, tmp_path / "new", image_size=32, epochs=1, verbose=0, train_map_samples=0)
    train(samples, tmp_path / "old", image_size=32, epochs=1, verbose=0, train_map_samples=0,
          recipe="classic")
    new = json.load(open(tmp_path / "new" / "config.json"))
    old = json.load(open(tmp_path / "old" / "config.json"))
    assert (new["recipe"], new["batch_size"], new["lr_plan"]) == ("smallervggnet", 16, "cosine")
    assert new["model_kwargs"] == RECIPES["smallervggnet"]["model_kwargs"]
    assert new["augment"]["rotation"] == 0.0
    assert (old["recipe"], old["batch_size"], old["lr_plan"]) == ("classic", 32, "decay")
    assert old["model_kwargs"] == {} and old["augment"]["rotation"] == 25.0


@pytest.mark.slow
def test_a_built_model_keeps_its_own_shape(folder_data, tmp_path):
    from multilabel_keras import build_model

    model = build_model("smallervggnet", 4, (32, 32, 3))  # the classic flatten shape
    train(from_folders(folder_data), tmp_path / "run", model, image_size=32, epochs=1, verbose=0,
          train_map_samples=0)
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["model_kwargs"] == {} and config["recipe"] == "smallervggnet"


def test_a_small_set_from_scratch_gets_the_recipes_least_updates(folder_data, tmp_path,
                                                                  monkeypatch, capsys):
    from multilabel_keras.training.settings import SETTINGS

    # Defaults shrunk to test size: 1 default epoch, at least 7 updates.
    monkeypatch.setitem(SETTINGS["epochs"].defaults, "image", 1)
    monkeypatch.setitem(RECIPES["smallervggnet"], "min_updates", 7)
    samples = from_folders(folder_data)
    result = train(samples, tmp_path / "run", image_size=32, batch_size=8, val_split=0.25,
                   verbose=1, train_map_samples=0)
    config = json.load(open(tmp_path / "run" / "config.json"))
    steps = -(-config["num_train"] // 8)
    epochs = -(-7 // steps)  # the fewest epochs with 7 updates, by hand
    assert epochs > 1 and len(result.history) == epochs
    assert config["settings"]["settings"]["epochs"] == epochs  # a resumed run plans the same
    assert f"epochs: {epochs}, for 7 updates" in capsys.readouterr().out
    given = train(samples, tmp_path / "given", image_size=32, batch_size=8, val_split=0.25,
                  verbose=0, train_map_samples=0, epochs=1)
    assert len(given.history) == 1  # epochs given: the user's
