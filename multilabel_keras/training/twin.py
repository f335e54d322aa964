"""Training the twin-input multi-loss model on image pairs."""

import dataclasses
import os
import warnings

import keras
import numpy as np

from multilabel_keras.data.pairs import PairSampler, pair_dataset
from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.models import build_model
from multilabel_keras.models.outputs import predict_batches
from multilabel_keras.models.twin import single_branch
from multilabel_keras.training.callbacks import BestCheckpoint, HistoryCSV
from multilabel_keras.training.compile import compile_model
from multilabel_keras.training.fit_checks import prepare_splits
from multilabel_keras.training.run_dir import finish_run
from multilabel_keras.training.run_guard import check_run_dir, claim_run_dir, release_claims
from multilabel_keras.training.phases import fit_phases
from multilabel_keras.training.schedule import find_backbone, freeze_backbone, resolve_start


@release_claims
def train_twin(
    samples,
    out_dir,
    *,
    backbone="xception",
    val_samples=None,
    val_split=0.2,
    vocabulary=None,
    image_size=None,
    batch_size=16,
    epochs=10,
    schedule=None,
    learning_rate=1e-3,
    loss_weights=(1.0, 1.0, 0.5),
    positive_ratio=0.5,
    same="identical",
    jaccard=0.5,
    pairs_per_epoch=None,
    augment=True,
    weights=None,
    model_kwargs=None,
    seed=0,
    overwrite=False,
    verbose=1,
):
    """Trains the twin model (``xception_twin``) and writes a run directory.

    Training pairs are drawn afresh every epoch from the training split by
    a ``PairSampler`` (``positive_ratio`` same-class pairs); validation
    pairs are drawn once from the validation split only. The loss is the
    weighted sum of the two category losses and the same/different loss
    (weights 1, 1, 0.5); every output's loss and accuracy go to
    ``history.csv``. The best epoch by validation ``class_a`` accuracy is
    kept. After training, the category head is scored on the validation
    images one at a time, as ``Predictor`` will use it.

    Args:
        samples: training ``Samples``; with softmax heads (the default for
            single-label data) every image needs exactly one label.
        out_dir: run directory to create.
        backbone: any ``keras.applications`` name in lower case.
        val_samples: validation ``Samples`` (default: ``val_split`` held out).
        val_split: fraction held out when ``val_samples`` is ``None``.
        vocabulary: a fitted ``LabelVocabulary`` of the classes.
        image_size: input side (default: the backbone's own).
        batch_size: pairs per batch.
        epochs: epochs without a schedule.
        schedule: a ``TransferSchedule`` (frozen → fine-tune → no augmentation).
        learning_rate: Adam's learning rate (phase 1).
        loss_weights: weights of ``class_a``, ``class_b`` and ``same``.
        positive_ratio: share of same-class pairs.
        same: ``"identical"`` label sets or ``"jaccard"`` (see ``PairSampler``).
        jaccard: threshold for ``same="jaccard"``.
        pairs_per_epoch: default: one per training image.
        augment: augmentation of both images of a pair.
        weights: backbone weights (``None``, ``"imagenet"``, a file).
        model_kwargs: more ``twin_model`` arguments (``distance`` …).
        seed: split, pair and augmentation seed.
        overwrite: allow a non-empty ``out_dir``.
        verbose: Keras verbosity.

    Returns:
        A ``TrainResult`` (its model is the full twin).

    Example:
        >>> train_twin(from_folders("dogs"), "runs/dogs", weights="xception_notop.weights.h5",
        ...            schedule=TransferSchedule(5, 10, "last:2", final_epochs=2))  # doctest: +SKIP
    """
    out_dir = os.fspath(out_dir)
    if schedule is not None and schedule.linear_probe:
        raise ValueError("train_twin has no linear-probe phase; pass a TransferSchedule with "
                         "freeze_epochs (head-only epochs over image pairs) instead")
    check_run_dir(out_dir, overwrite)
    samples, val_samples, vocabulary = prepare_splits(samples, val_samples, vocabulary, val_split,
                                                      seed)
    kwargs = dict(model_kwargs or {})
    single_label = all(len(s) == 1 for s in samples.labels)
    kwargs.setdefault("class_activation", "softmax" if single_label else "sigmoid")
    if kwargs["class_activation"] == "softmax":
        for split in (samples, val_samples):
            bad = next((p for p, s in zip(split.paths, split.labels) if len(s) != 1), None) if split else None
            if bad is not None:
                raise ValueError(f"softmax category heads need one class per image; {bad} has "
                                 f"{len(split.labels[split.paths.index(bad)])}")
    keras.utils.set_random_seed(seed)
    shape = None if image_size is None else (int(image_size), int(image_size), 3)
    model = build_model("xception_twin", vocabulary.num_labels, shape, weights, backbone=backbone,
                        **kwargs)
    image_size = int(model.input_shape[0][1])
    if schedule is not None:
        freeze_backbone(model)
        if schedule.finetune_epochs or schedule.final_epochs:
            resolve_start(find_backbone(model), schedule.unfreeze_from)
    claim_run_dir(out_dir, overwrite)

    weights_by_output = dict(zip(("class_a", "class_b", "same"), map(float, loss_weights)))
    loss = compile_model(model, learning_rate=learning_rate, loss_weights=weights_by_output)
    targets = vocabulary.transform(samples.labels).astype(np.float32)
    sampler = PairSampler(samples, vocabulary, positive_ratio, same, jaccard, seed)
    pairs = int(pairs_per_epoch or len(samples))
    steps = max(1, pairs // batch_size)

    def train_data(with_augmentation, start_batch=0):
        return pair_dataset(sampler, targets, image_size, batch_size, pairs,
                            augment=augment if with_augmentation else False, repeat=True, seed=seed)

    val_pairs, monitor = None, "class_a_accuracy"
    if val_samples is not None and len(val_samples) > 1:
        try:
            val_sampler = PairSampler(val_samples, vocabulary, positive_ratio, same, jaccard, seed + 1)
        except ValueError:
            warnings.warn(f"no two of the {len(val_samples)} validation images share a class: "
                          f"validation pairs are all negative", UserWarning, stacklevel=2)
            val_sampler = PairSampler(val_samples, vocabulary, 0.0, same, jaccard, seed + 1)
        val_pairs = pair_dataset(val_sampler, vocabulary.transform(val_samples.labels), image_size,
                                 batch_size)
        monitor = "val_class_a_accuracy"
    checkpoint = BestCheckpoint(os.path.join(out_dir, "model.keras"), monitor)
    history = HistoryCSV(os.path.join(out_dir, "history.csv"))
    phases = schedule.phases() if schedule is not None else [(None, int(epochs), True)]
    fit_phases(model, phases, schedule, train_data, steps, [checkpoint, history], history, loss,
               monitor, None, verbose, validation_data=val_pairs, loss_weights=weights_by_output)

    validation = None
    if val_samples is not None and len(val_samples):
        val_ds = make_dataset(val_samples, vocabulary, image_size, batch_size)
        validation = predict_batches(single_branch(model), val_ds)
    config = {
        "model": "xception_twin",
        "model_kwargs": {"backbone": backbone, **kwargs},
        "weights": weights,
        "image_size": image_size,
        "batch_size": int(batch_size),
        "epochs": sum(e for _, e, _ in phases),
        "schedule": dataclasses.asdict(schedule) if schedule is not None else None,
        "learning_rate": float(learning_rate),
        "loss": loss,
        "loss_weights": weights_by_output,
        "pairs": {"positive_ratio": positive_ratio, "same": same, "jaccard": jaccard,
                  "per_epoch": pairs},
        "augment": bool(augment),
        "num_train": len(samples),
        "num_val": len(val_samples) if val_samples is not None else 0,
        "seed": int(seed),
    }
    policy, policy_kwargs = ("top_k", {"k": 1}) if kwargs["class_activation"] == "softmax" else ("f1", {})
    return finish_run(out_dir, model, vocabulary, validation, config, checkpoint, history, policy,
                      policy_kwargs)
