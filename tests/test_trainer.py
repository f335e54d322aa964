"""The Trainer says when a run ended while its validation score was still rising.

Oracle: score sequences written by hand, whose best epoch is known.
"""

import warnings

import keras
import pytest

from multilabel_keras.cli_flags import cli_message
from multilabel_keras.runs import RunDir
from multilabel_keras.training.trainer import Trainer


def _finish(tmp_path, values, patience=None, monitor="val_mAP", run=True):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    trainer = Trainer(model, monitor, RunDir(tmp_path / "run") if run else None, patience=patience)
    for value in values:
        trainer.end_epoch({monitor: value})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.finish()
    return [w.message for w in caught if "still improving" in str(w.message)]


def test_a_run_best_at_its_last_epoch_is_called_under_trained(tmp_path):
    (message,) = _finish(tmp_path, [0.5, 0.6, 0.7, 0.8])
    assert str(message) == ("val_mAP was still improving at the last epoch (4 of 4): the model is "
                            "likely under-trained; more epochs would likely help (epochs=8)")
    assert cli_message(message).endswith("more epochs would likely help (--epochs 8)")


@pytest.mark.parametrize("values, patience, monitor, run", [
    ([0.5, 0.8, 0.7], None, "val_mAP", True),       # best before the end
    ([0.5, 0.6], None, "val_mAP", True),            # too short to judge
    ([0.5, 0.6, 0.7], None, "mAP", True),           # a training score says nothing of fit
    ([0.5, 0.6, 0.7], None, "val_mAP", False),      # an inner fit, not a user's run
])
def test_no_word_when_the_run_is_not_under_trained(tmp_path, values, patience, monitor, run):
    assert _finish(tmp_path, values, patience, monitor, run) == []
