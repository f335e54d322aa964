"""Evaluating a saved run on labelled images."""

import numpy as np

from multilabel_keras.data.check import check_images
from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.inference.predictor import Predictor
from multilabel_keras.metrics import calibration_errors, multilabel_report
from multilabel_keras.models.outputs import predict_batches
from multilabel_keras.progress import Progress


def evaluate(run, samples, batch_size=32, on_bad_image="skip", max_bad_fraction=0.2, tta=None):
    """Computes multi-label metrics of a run on labelled images.

    Images stream from disk through the same preprocessing as training;
    labels come from the run's vocabulary (unknown labels are warned about
    by name and ignored) and decisions use the run's saved thresholds, on
    scores under the run's calibration and test-time augmentation (as
    ``Predictor`` gives them).

    Args:
        run: a run directory or a ``Predictor``.
        samples: labelled ``Samples`` to evaluate on (keep them apart from
            the data the thresholds were tuned on).
        batch_size: images per forward pass.
        on_bad_image: ``"skip"`` (named in a summary) or ``"error"``.
        max_bad_fraction: fail when more than this share is bad.
        tta: ``"none"`` or ``"flip"`` for a run directory (default the
            run's own; a ``Predictor`` brings its own).

    Returns:
        The metrics dict of ``multilabel_report``: ``mAP``, ``micro_f1``,
        ``macro_f1``, ``subset_accuracy``, ``hamming_loss``, ``ece`` (expected
        calibration error, also per label), ``per_label``, ``num_images``,
        ``skipped_images``, ``tta``, ``calibrated`` and, for a calibrated run,
        ``uncalibrated_ece`` …

    Example:
        >>> from multilabel_keras import from_folders
        >>> metrics = evaluate("runs/fashion", from_folders("data/test"))
        >>> metrics["num_images"], 0 <= metrics["mAP"] <= 1
        (18, True)
    """
    if isinstance(run, Predictor):
        if tta is not None and tta != run.tta:
            raise ValueError(f"this Predictor uses tta={run.tta!r}; load it with "
                             f"Predictor.load(run, tta={tta!r}) instead")
        predictor = run
    else:
        predictor = Predictor.load(run, tta=tta)
    samples, report = check_images(samples, on_bad_image, max_bad_fraction)
    dataset = make_dataset(samples, predictor.vocabulary, predictor.image_size, batch_size)
    y_true, raw = predict_batches(predictor.model, dataset, predictor.tta,
                                  Progress(len(samples), "evaluating"))
    scores = predictor.calibrated(raw)
    metrics = multilabel_report(y_true, scores, predictor.thresholds, predictor.vocabulary.classes_,
                                predictor.rule)
    extra = {"tta": predictor.tta, "calibrated": predictor.temperatures is not None}
    if predictor.temperatures is not None:
        uncalibrated = calibration_errors(y_true, raw)[0]
        extra["uncalibrated_ece"] = None if np.isnan(uncalibrated) else uncalibrated
    return {**metrics, **extra,
            "skipped_images": [{"path": p, "reason": r} for p, r in report.skipped]}
