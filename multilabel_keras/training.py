"""Training: compile, fit with exact-mAP callbacks, and write the run directory."""

import dataclasses
import datetime
import os
import warnings

import keras
import numpy as np

from multilabel_keras.callbacks import (
    BestCheckpoint,
    ExactMAP,
    HistoryCSV,
    inference_copy,
    predict_batches,
    save_inference_model,
)
from multilabel_keras.data.check import DEFAULT_MAX_PIXELS, check_images
from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.data.splits import split_samples
from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.diagnostics import unseen_combinations
from multilabel_keras.io import write_json
from multilabel_keras import losses as loss_registry
from multilabel_keras.losses import default_loss
from multilabel_keras.metrics import multilabel_report
from multilabel_keras.models import build_model
from multilabel_keras.plots import plot_history, plot_pr_curves
from multilabel_keras.schedule import find_backbone, freeze_backbone, resolve_start, unfreeze_from
from multilabel_keras.thresholds import DEFAULT_THRESHOLD, choose_decision, save_thresholds

RUN_FILES = (
    "model.keras",
    "labels.json",
    "thresholds.json",
    "config.json",
    "history.csv",
    "plot.png",
    "metrics.json",
    "pr_curves.png",
)


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


def compile_model(model, learning_rate=1e-3, epochs=None, steps_per_epoch=None, loss=None):
    """Compiles a model for multi-label training (Adam + binary cross-entropy).

    With ``epochs`` and ``steps_per_epoch`` the learning rate decays as
    ``lr / (1 + (lr / epochs) * step)``, the classic recipe's
    ``Adam(lr, decay=lr / epochs)``.

    Args:
        model: an uncompiled ``keras.Model`` with sigmoid outputs (or a
            per-label 2-way softmax).
        learning_rate: initial learning rate.
        epochs: planned epochs (enables the decay).
        steps_per_epoch: batches per epoch (enables the decay).
        loss: a Keras loss; default ``default_loss(model)`` (binary
            cross-entropy, or ``PairwiseSoftmaxLoss`` for a 2-way head).

    Returns:
        The loss object used (the model is compiled in place).

    Example:
        >>> compile_model(model, learning_rate=1e-3)  # doctest: +SKIP
    """
    schedule = learning_rate
    if epochs and steps_per_epoch:
        schedule = keras.optimizers.schedules.InverseTimeDecay(
            learning_rate, decay_steps=1, decay_rate=learning_rate / epochs
        )
    loss = loss or default_loss(model)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    return loss


def train(
    samples,
    out_dir,
    model="smallervggnet",
    *,
    val_samples=None,
    val_split=0.2,
    vocabulary=None,
    image_size=96,
    batch_size=32,
    epochs=75,
    learning_rate=1e-3,
    augment=True,
    patience=None,
    weights=None,
    model_kwargs=None,
    schedule=None,
    loss=None,
    loss_kwargs=None,
    threshold_policy="f1",
    threshold_kwargs=None,
    on_bad_image="skip",
    max_bad_fraction=0.2,
    max_pixels=DEFAULT_MAX_PIXELS,
    seed=0,
    overwrite=False,
    verbose=1,
    train_map_samples=512,
):
    """Trains a multi-label model on image files and writes a run directory.

    Sigmoid outputs with binary cross-entropy; each epoch the exact
    validation mAP is computed, the best model so far is saved to
    ``model.keras`` and the log to ``history.csv``. After training,
    per-label thresholds are tuned for F1 on the validation split only and
    the run directory gets ``labels.json``, ``thresholds.json``,
    ``config.json``, ``plot.png`` and ``metrics.json`` (validation metrics).

    With a ``TransferSchedule`` a transfer model trains in phases: head only
    (backbone frozen, Adam), then fine-tuning from a named block (SGD with
    momentum), then optionally without augmentation. All phases log to the
    same ``history.csv`` (column ``phase``) and ``plot.png``, and the best
    epoch of any phase is the one kept.

    Args:
        samples: training ``Samples``.
        out_dir: run directory to create; it must be empty or absent unless
            ``overwrite`` is true.
        model: a registered model name or a built ``keras.Model``.
        val_samples: validation ``Samples``; if ``None``, ``val_split`` of
            ``samples`` is held out by iterative stratification.
        val_split: fraction held out when ``val_samples`` is ``None``
            (``0`` trains on everything and keeps thresholds at 0.5).
        vocabulary: a fitted ``LabelVocabulary``; default: fitted on all
            labels in ``samples`` and ``val_samples``.
        image_size: side of the square model input.
        batch_size: images per batch.
        epochs: number of epochs (ignored with a ``schedule``).
        learning_rate: Adam's initial learning rate (phase 1 of a schedule).
        augment: ``True`` for the default ``RandomAffine``, ``False``, or a
            Keras layer.
        patience: stop a phase after this many epochs without a better
            monitored mAP (``None``: never stop early).
        weights: passed to ``build_model``.
        model_kwargs: extra builder arguments (``head="softmax2"`` …).
        schedule: a ``TransferSchedule`` for the frozen → fine-tune phases.
        loss: a name (``"bce"``, ``"weighted_bce"``, ``"focal"``, ``"asl"``,
            ``"softmax2"``) or a Keras loss; default masked binary
            cross-entropy (or ``"softmax2"`` for ``head="softmax2"``).
            ``"weighted_bce"`` without ``pos_weight`` weighs each label by
            its negatives / positives in the training split.
        loss_kwargs: arguments of a loss given by name.
        threshold_policy: how decisions are tuned on validation (see
            ``choose_decision``): ``"f1"``, ``"mcc"``, ``"precision"``,
            ``"global"``, ``"fixed"``, ``"top_k"``, ``"at_least_one"``.
        threshold_kwargs: its arguments (``min_precision``, ``k``,
            ``threshold``).
        on_bad_image: ``"skip"`` (default: leave out empty, truncated,
            non-image and oversized files, naming each) or ``"error"``.
        max_bad_fraction: fail when more than this share of images is bad.
        max_pixels: images whose header claims more pixels are refused.
        seed: seed for the split, shuffling and augmentation.
        overwrite: allow writing into a non-empty ``out_dir``.
        verbose: Keras verbosity (1 = progress bar).
        train_map_samples: training images used for the per-epoch training
            mAP (0 to skip).

    Returns:
        A ``TrainResult``.

    Example:
        >>> result = train(from_folders("data/fashion"), "runs/fashion",
        ...                epochs=20, image_size=96)  # doctest: +SKIP
        >>> result.metrics["mAP"]  # doctest: +SKIP
        0.97
        >>> train(samples, "runs/tl", "mobilenetv2", weights="mnv2.weights.h5",
        ...       schedule=TransferSchedule(5, 10, "block_15"))  # doctest: +SKIP
    """
    out_dir = os.fspath(out_dir)
    check_run_dir(out_dir, overwrite)
    samples, _ = check_images(samples, on_bad_image, max_bad_fraction, max_pixels)
    if val_samples is not None:
        val_samples, _ = check_images(val_samples, on_bad_image, max_bad_fraction, max_pixels)
    if vocabulary is None:
        labels = list(samples.labels) + (list(val_samples.labels) if val_samples else [])
        vocabulary = LabelVocabulary().fit(labels)
    if val_samples is None and val_split:
        samples, val_samples = split_samples(samples, vocabulary, (1 - val_split, val_split), seed)
    if len(samples) == 0:
        raise ValueError("no training samples")
    if val_samples is not None:
        _warn_unseen(samples, val_samples)
    keras.utils.set_random_seed(seed)

    model_name = model if isinstance(model, str) else model.name
    if isinstance(model, str):
        model = build_model(
            model, vocabulary.num_labels, (image_size, image_size, 3), weights, **(model_kwargs or {})
        )
    if schedule is not None:
        # Both fail before any training on a model without a backbone or a wrong block name.
        freeze_backbone(model)
        if schedule.finetune_epochs or schedule.final_epochs:
            resolve_start(find_backbone(model), schedule.unfreeze_from)
    os.makedirs(out_dir, exist_ok=True)
    phases = schedule.phases() if schedule is not None else [(None, int(epochs), True)]
    steps = max(1, int(np.ceil(len(samples) / batch_size)))
    loss = resolve_loss(loss, loss_kwargs, samples, vocabulary)
    loss = compile_model(model, learning_rate, phases[0][1], steps, loss)

    def train_data(with_augmentation):
        return make_dataset(samples, vocabulary, image_size, batch_size,
                            augment=augment if with_augmentation else False,
                            shuffle=True, repeat=True, seed=seed)

    val_ds = (make_dataset(val_samples, vocabulary, image_size, batch_size)
              if val_samples is not None and len(val_samples) else None)
    sample_ds = None
    if train_map_samples:
        rng = np.random.default_rng(seed)
        picked = rng.choice(len(samples), min(train_map_samples, len(samples)), replace=False)
        sample_ds = make_dataset(samples.subset(np.sort(picked)), vocabulary, image_size, batch_size)

    monitor = "val_mAP" if val_ds is not None else "mAP"
    checkpoint = BestCheckpoint(os.path.join(out_dir, "model.keras"), monitor)
    history_cb = HistoryCSV(os.path.join(out_dir, "history.csv"))
    # Validation loss is computed on per-label probabilities, where binary
    # cross-entropy equals the 2-way head's loss.
    val_loss = loss if len(model.output_shape) == 2 else loss_registry.get("bce")
    callbacks = [ExactMAP(val_ds, sample_ds, val_loss), checkpoint, history_cb]
    fit_phases(model, phases, schedule, train_data, steps, callbacks, history_cb,
               {"loss": loss}, monitor, patience, verbose)
    if checkpoint.best_weights is None:
        # The monitored value was never finite (e.g. no positives): keep the last epoch.
        save_inference_model(model, checkpoint.path, twin=inference_copy(model))

    validation = predict_batches(model, val_ds) if val_ds is not None else None
    config = {
        "model": model_name,
        "model_kwargs": model_kwargs or {},
        "weights": None if weights is None or not isinstance(weights, (str, os.PathLike))
        else os.fspath(weights),
        "image_size": int(image_size),
        "batch_size": int(batch_size),
        "epochs": sum(e for _, e, _ in phases),
        "epochs_run": len(history_cb.rows),
        "schedule": dataclasses.asdict(schedule) if schedule is not None else None,
        "best_epoch": checkpoint.best_epoch,
        "monitor": monitor,
        "learning_rate": float(learning_rate),
        "loss": getattr(loss, "name", type(loss).__name__),
        "augment": bool(augment),
        "val_split": float(val_split) if val_samples is not None else 0.0,
        "num_train": len(samples),
        "num_val": len(val_samples) if val_samples is not None else 0,
        "seed": int(seed),
    }
    return finish_run(out_dir, model, vocabulary, validation, config, history_cb.rows,
                      threshold_policy, threshold_kwargs)


def fit_phases(model, phases, schedule, train_data, steps, callbacks, history, compile_kwargs,
               monitor, patience=None, verbose=1, validation_data=None):
    """Runs the epochs of each phase, recompiling with SGD from phase 2 on.

    Args:
        model: the compiled model (phase 1 compiled by the caller).
        phases: ``(phase, epochs, augment)`` triples (phase ``None``: no
            schedule).
        schedule: the ``TransferSchedule`` or ``None``.
        train_data: ``train_data(augment)`` -> repeating dataset.
        steps: batches per epoch.
        callbacks: callbacks shared by every phase.
        history: the ``HistoryCSV`` among them (gets the ``phase`` column).
        compile_kwargs: ``model.compile`` arguments besides the optimizer.
        monitor: the key early stopping watches (maximised).
        patience: early-stopping patience per phase, or ``None``.
        verbose: Keras verbosity.
        validation_data: passed to ``fit``.

    Returns:
        None.

    Example:
        >>> fit_phases(model, schedule.phases(), schedule, data_fn, 10, cbs, hist,
        ...            {"loss": "binary_crossentropy"}, "val_mAP")  # doctest: +SKIP
    """
    done, unfrozen = 0, False
    for phase, phase_epochs, with_augmentation in phases:
        if phase is not None and phase > 1:
            if not unfrozen:
                unfreeze_from(model, schedule.unfreeze_from)
                unfrozen = True
            model.compile(optimizer=schedule.sgd(), **compile_kwargs)
        history.extra = {"phase": phase} if phase is not None else {}
        phase_callbacks = list(callbacks)
        if patience:
            phase_callbacks.append(keras.callbacks.EarlyStopping(monitor, mode="max", patience=patience))
        model.fit(train_data(with_augmentation), initial_epoch=done, epochs=done + phase_epochs,
                  steps_per_epoch=steps, callbacks=phase_callbacks, verbose=verbose, shuffle=False,
                  validation_data=validation_data)
        done += phase_epochs


def _warn_unseen(samples, val_samples):
    unseen = unseen_combinations(samples, val_samples)
    if unseen:
        shown = "; ".join(f"{'+'.join(u['labels']) or '(none)'} x{u['count']}" for u in unseen[:5])
        more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
        warnings.warn(
            f"{len(unseen)} label combination(s) in the validation split never occur in "
            f"training: {shown}{more}. The model will rarely predict them together.",
            UserWarning, stacklevel=3,
        )


def resolve_loss(loss, loss_kwargs, samples, vocabulary):
    """A loss object from a name (``weighted_bce`` weights come from ``samples``), or as given."""
    if loss is None or not isinstance(loss, str):
        return loss
    kwargs = dict(loss_kwargs or {})
    if loss == "weighted_bce" and "pos_weight" not in kwargs:
        y = vocabulary.transform(samples.labels, samples.unknown)
        kwargs["pos_weight"] = loss_registry.pos_weights_from_frequencies(y)
    return loss_registry.get(loss, **kwargs)


def finish_run(out_dir, model, vocabulary, validation, config, history, threshold_policy="f1",
               threshold_kwargs=None):
    """Tunes thresholds on validation and writes the rest of a run directory.

    Writes ``labels.json``, ``thresholds.json`` (per-label F1 optimum on
    the validation split, else 0.5), ``metrics.json``, ``config.json`` and
    ``plot.png``; ``model.keras`` and ``history.csv`` are the caller's.

    Args:
        out_dir: the run directory.
        model: the trained model (best weights).
        vocabulary: its ``LabelVocabulary``.
        validation: ``(y_true, probabilities)`` on the validation split, or
            ``None``.
        config: run facts for ``config.json`` (``model`` and ``image_size``
            at least); format, version, time and versions are added.
        history: the epoch rows.
        threshold_policy: decision policy tuned on validation (see
            ``choose_decision``).
        threshold_kwargs: its arguments.

    Returns:
        A ``TrainResult``.

    Example:
        >>> finish_run("runs/x", model, vocab, (y_val, p_val), {"model": "mlp",
        ...            "image_size": 96}, rows)  # doctest: +SKIP
    """
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
        plot_pr_curves(y_val, p_val, vocabulary.classes_, os.path.join(out_dir, "pr_curves.png"))
    vocabulary.save(os.path.join(out_dir, "labels.json"))
    save_thresholds(os.path.join(out_dir, "thresholds.json"), thresholds, vocabulary.classes_,
                    source, rule)
    write_json(os.path.join(out_dir, "metrics.json"), metrics)
    write_json(os.path.join(out_dir, "config.json"), {
        "format": "multilabel_keras.run",
        "version": 1,
        **config,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"keras": keras.__version__, "backend": keras.backend.backend()},
    })
    plot_history(history, os.path.join(out_dir, "plot.png"), title=config.get("model"))
    return TrainResult(model, vocabulary, thresholds, history, metrics, out_dir)


def check_run_dir(out_dir, overwrite):
    """Refuses a run directory that is a file, or non-empty without ``overwrite``."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f"run directory {out_dir} exists and is not a folder")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(
            f"run directory {out_dir} is not empty; choose a new folder or pass overwrite=True"
        )
