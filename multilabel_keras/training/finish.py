"""The end of every trainer: thresholds tuned on validation, metrics, plots and ``config.json``."""

import dataclasses
import datetime
import os

import keras
import numpy as np

from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.decisions import (DEFAULT_THRESHOLD, apply_temperatures, choose_decision,
                                        fit_temperatures)
from multilabel_keras.metrics import calibration_errors, multilabel_report
from multilabel_keras.plots import plot_history, plot_pr_curves, plot_reliability
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


def finish_run(run, trainer, vocabulary, validation, config, threshold_policy="f1",
               threshold_kwargs=None, model=None, calibration="temperature"):
    """Writes everything a run directory holds once training has ended.

    Every trainer (``train``, ``train_twin``, ``train_on_features``) ends
    here, after ``trainer.finish()``. With validation data, per-label
    temperatures are fitted on it first (``calibration.json``, and
    ``reliability.png`` before and after), then thresholds are tuned on the
    calibrated scores (else 0.5). The directory gets ``labels.json``,
    ``thresholds.json``, ``metrics.json``, ``config.json``, ``plot.png``
    and ``pr_curves.png``; ``config.json``
    records the trainer's facts plus the epochs run, the best epoch and
    what was monitored.

    Args:
        run: the ``RunDir``.
        trainer: the run's ``Trainer`` (its model holds the best weights).
        vocabulary: its ``LabelVocabulary``.
        validation: ``(y_true, probabilities)`` on the validation split, or
            ``None``.
        config: the trainer's facts for ``config.json`` (``model`` and
            ``image_size`` at least); ``weights`` paths and ``loss``
            objects are recorded by name.
        threshold_policy: decision policy tuned on validation (see
            ``choose_decision``).
        threshold_kwargs: its arguments.
        model: the model the run answers with, when it is not the trainer's
            (a head trained on features, joined onto its backbone).
        calibration: ``"temperature"`` or ``"none"``.

    Returns:
        A ``TrainResult``.

    Example:
        >>> finish_run(run, trainer, vocab, (y_val, p_val), {"model": "mlp",
        ...            "image_size": 96})  # doctest: +SKIP
    """
    model = model if model is not None else trainer.model
    thresholds = np.full(vocabulary.num_labels, DEFAULT_THRESHOLD)
    source = "default 0.5 (no validation data)"
    rule = {"policy": "fixed"}
    if threshold_policy == "top_k":  # needs no tuning, so it holds without validation data too
        rule = choose_decision(np.zeros((0, vocabulary.num_labels)), np.zeros((0, vocabulary.num_labels)),
                               "top_k", **(threshold_kwargs or {}))[1]
    metrics = {}
    if validation is not None:
        y_val, p_val = validation
        if calibration == "temperature":
            raw = p_val
            temperatures = fit_temperatures(y_val, raw)
            p_val = apply_temperatures(raw, temperatures)
            before, after = calibration_errors(y_val, raw)[0], calibration_errors(y_val, p_val)[0]
            run.write_calibration(temperatures, vocabulary.classes_,
                                  {"ece_before": before, "ece_after": after})
            plot_reliability(y_val, {"before calibration": raw, "after": p_val},
                             run.file(run.RELIABILITY))
        thresholds, rule = choose_decision(y_val, p_val, threshold_policy, **(threshold_kwargs or {}))
        source = f"policy {threshold_policy!r} tuned on the validation split"
        metrics = multilabel_report(y_val, p_val, thresholds, vocabulary.classes_, rule)
        metrics = {"split": "validation", "note": "thresholds were tuned on this split", **metrics}
        plot_pr_curves(y_val, p_val, vocabulary.classes_, run.file(run.PR_CURVES),
                       thresholds=thresholds, rule=rule)
    vocabulary.save(run.file(run.LABELS))
    run.write_thresholds(thresholds, vocabulary.classes_, source, rule)
    run.write_json(run.METRICS, metrics)
    weights = config.get("weights")
    run.write_json(run.CONFIG, {
        "format": "multilabel_keras.run",
        "version": 1,
        **config,
        "weights": os.fspath(weights) if isinstance(weights, (str, os.PathLike)) else None,
        "loss": loss_name(config.get("loss")),
        "epochs_run": len(trainer.rows),
        "best_epoch": trainer.best_epoch,
        "monitor": trainer.monitor,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"keras": keras.__version__, "backend": keras.backend.backend()},
    })
    plot_history(trainer.rows, run.file(run.PLOT), title=config.get("model"),
                 best_epoch=trainer.best_epoch)
    run.remove_library_files(only_resume=True)
    return TrainResult(model, vocabulary, thresholds, trainer.rows, metrics, run.path)
