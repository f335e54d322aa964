"""The run directory's files, written once training has ended."""

import dataclasses
import datetime
import os

import keras
import numpy as np

from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.decisions import DEFAULT_THRESHOLD, choose_decision
from multilabel_keras.io import write_json
from multilabel_keras.metrics import multilabel_report
from multilabel_keras.plots import plot_history, plot_pr_curves
from multilabel_keras.run_files import save_thresholds
from multilabel_keras.training.compile import loss_name


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
        model: the trained model with its best weights.
        vocabulary: the ``LabelVocabulary`` the model's outputs follow.
        thresholds: per-label thresholds (tuned on validation, else 0.5).
        history: list of per-epoch log dicts.
        metrics: validation metrics dict (``{}`` without validation data).
        run_dir: the run directory written.
    """

    model: keras.Model
    vocabulary: LabelVocabulary
    thresholds: np.ndarray
    history: list
    metrics: dict
    run_dir: str


def finish_run(out_dir, model, vocabulary, validation, config, checkpoint, history,
               threshold_policy="f1", threshold_kwargs=None):
    """Writes everything a run directory holds once training has ended.

    Every trainer (``train``, ``train_twin``, ``train_on_features``) ends
    here. The checkpoint's file is written with the last weights when no
    epoch was ever best (the monitored value was never finite). Thresholds
    are tuned on the validation split only (else 0.5) and the directory
    gets ``labels.json``, ``thresholds.json``, ``metrics.json``,
    ``config.json``, ``plot.png`` and ``pr_curves.png``; ``config.json``
    records the trainer's facts plus the epochs run, the best epoch and
    what was monitored.

    Args:
        out_dir: the run directory.
        model: the trained model (best weights).
        vocabulary: its ``LabelVocabulary``.
        validation: ``(y_true, probabilities)`` on the validation split, or
            ``None``.
        config: the trainer's facts for ``config.json`` (``model`` and
            ``image_size`` at least); ``weights`` paths and ``loss``
            objects are recorded by name.
        checkpoint: the run's ``BestCheckpoint``.
        history: the run's ``HistoryCSV``.
        threshold_policy: decision policy tuned on validation (see
            ``choose_decision``).
        threshold_kwargs: its arguments.

    Returns:
        A ``TrainResult``.

    Example:
        >>> finish_run("runs/x", model, vocab, (y_val, p_val), {"model": "mlp",
        ...            "image_size": 96}, checkpoint, history)  # doctest: +SKIP
    """
    # The checkpoint may watch a part of ``model`` (the head of cached-feature training).
    checkpoint.save_last_if_none(checkpoint.model if checkpoint.model is not None else model)
    thresholds = np.full(vocabulary.num_labels, DEFAULT_THRESHOLD)
    source = "default 0.5 (no validation data)"
    rule = {"policy": "fixed"}
    if threshold_policy == "top_k":  # needs no tuning, so it holds without validation data too
        rule = choose_decision(np.zeros((0, vocabulary.num_labels)), np.zeros((0, vocabulary.num_labels)),
                               "top_k", **(threshold_kwargs or {}))[1]
    metrics = {}
    if validation is not None:
        y_val, p_val = validation
        thresholds, rule = choose_decision(y_val, p_val, threshold_policy, **(threshold_kwargs or {}))
        source = f"policy {threshold_policy!r} tuned on the validation split"
        metrics = multilabel_report(y_val, p_val, thresholds, vocabulary.classes_, rule)
        metrics = {"split": "validation", "note": "thresholds were tuned on this split", **metrics}
        plot_pr_curves(y_val, p_val, vocabulary.classes_, os.path.join(out_dir, "pr_curves.png"),
                       thresholds=thresholds, rule=rule)
    vocabulary.save(os.path.join(out_dir, "labels.json"))
    save_thresholds(os.path.join(out_dir, "thresholds.json"), thresholds, vocabulary.classes_,
                    source, rule)
    write_json(os.path.join(out_dir, "metrics.json"), metrics)
    weights = config.get("weights")
    write_json(os.path.join(out_dir, "config.json"), {
        "format": "multilabel_keras.run",
        "version": 1,
        **config,
        "weights": os.fspath(weights) if isinstance(weights, (str, os.PathLike)) else None,
        "loss": loss_name(config.get("loss")),
        "epochs_run": len(history.rows),
        "best_epoch": checkpoint.best_epoch,
        "monitor": checkpoint.monitor,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"keras": keras.__version__, "backend": keras.backend.backend()},
    })
    plot_history(history.rows, os.path.join(out_dir, "plot.png"), title=config.get("model"),
                 best_epoch=checkpoint.best_epoch)
    return TrainResult(model, vocabulary, thresholds, history.rows, metrics, out_dir)
