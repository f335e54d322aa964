"""The twin trainer: the twin-input multi-loss model on image pairs."""

import warnings

import numpy as np

from multilabel_keras.data.pairs import PairSampler, pair_dataset
from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.models import build_model
from multilabel_keras.models.transfer import backbone_size
from multilabel_keras.models.outputs import predict_batches
from multilabel_keras.models.surgery import find_backbone, freeze_backbone, resolve_start
from multilabel_keras.models.twin import single_branch
from multilabel_keras.runs import RunDir
from multilabel_keras.training.compile import compile_model
from multilabel_keras.training.config import ConfigError, TrainConfig
from multilabel_keras.training.finish import finish_run
from multilabel_keras.training.input_scaling import settle_scaling
from multilabel_keras.training.inputs import prepare_splits
from multilabel_keras.training.plans import choose_plan
from multilabel_keras.training.trainer import Trainer
from multilabel_keras.training.callbacks import user_callbacks
from multilabel_keras.training.seeding import seed_everything


def train_twin(samples, out_dir, *, val_samples=None, vocabulary=None, overwrite=False, verbose=1,
               config=None, callbacks=None, **settings):
    """Trains the twin model (``xception_twin``) and writes a run directory.

    Training pairs are drawn afresh every epoch from the training split by
    a ``PairSampler`` (``positive_ratio`` same-class pairs); validation
    pairs are drawn once from the validation split only. The loss is the
    weighted sum of the two category losses and the same/different loss
    (``loss_weights``, default 1, 1, 0.5); every output's loss and accuracy
    go to ``history.csv``. The best epoch by validation ``class_a``
    accuracy is kept. After training, the category head is scored on the
    validation images one at a time, as ``Predictor`` will use it.

    Settings (checked by ``TrainConfig("twin", ...)``): ``backbone``
    ("xception"), ``val_split``, ``image_size`` (None: the backbone's
    own), ``batch_size`` (16 pairs), ``epochs`` (10), ``schedule``
    ("auto": the model as built; or explicit phases), ``unfreeze_from``,
    ``finetune_learning_rate``, ``learning_rate`` (1e-3), ``loss_weights``,
    ``positive_ratio``, ``same``, ``jaccard``, ``pairs_per_epoch``,
    ``augment``, ``weights``, ``model_kwargs``, ``patience``,
    ``threshold_policy`` (default top_k with k=1 for softmax heads, else
    f1), ``threshold_kwargs``, ``on_bad_image``, ``max_bad_fraction``,
    ``max_pixels``, ``seed``. ``loss``, ``precision`` and ``distribution``
    are refused by name.

    Args:
        samples: training ``Samples``; with softmax heads (the default for
            single-label data) every image needs exactly one label.
        out_dir: run directory to create.
        val_samples: validation ``Samples`` (default: ``val_split`` held out).
        vocabulary: a fitted ``LabelVocabulary`` of the classes.
        overwrite: allow a non-empty ``out_dir``.
        verbose: Keras verbosity.
        config: a ``TrainConfig("twin", ...)`` to use instead of ``settings``.
        callbacks: your Keras callbacks, run after the library's own (as
            ``train``'s).
        **settings: the run's settings.

    Returns:
        A ``TrainResult`` (its model is the full twin).

    Example:
        >>> train_twin(from_folders("dogs"), "runs/dogs", weights="xception_notop.weights.h5",
        ...            schedule=TransferSchedule(5, 10, "last:2", final_epochs=2))  # doctest: +SKIP
    """
    if config is None:
        config = TrainConfig("twin", **settings)
    elif settings:
        raise ValueError("pass settings either as keywords or as config=, not both")
    if getattr(config.schedule, "linear_probe", False) or config.schedule == "lp_ft":
        raise ConfigError([("schedule", "cannot be 'lp_ft' for the twin: it has no linear-probe "
                            "phase; give phases with freeze_epochs (head-only epochs over image "
                            "pairs) instead")])
    callbacks = user_callbacks(callbacks)
    run = RunDir(out_dir)
    run.check_free(overwrite)
    seed = config.seed
    samples, val_samples, vocabulary = prepare_splits(
        samples, val_samples, vocabulary, config.val_split, seed,
        on_bad_image=config.on_bad_image, max_bad_fraction=config.max_bad_fraction,
        max_pixels=config.max_pixels)
    # Before seeding: measuring builds a backbone, which draws initial weights.
    scaling, config = settle_scaling(config, config.backbone, samples, val_samples, vocabulary,
                                     int(config.image_size or backbone_size(config.backbone)), seed,
                                     stacklevel=3)
    kwargs = dict(config.model_kwargs or {})
    single_label = all(len(s) == 1 for s in samples.labels)
    kwargs.setdefault("class_activation", "softmax" if single_label else "sigmoid")
    if kwargs["class_activation"] == "softmax":
        for split in (samples, val_samples):
            bad = next((p for p, s in zip(split.paths, split.labels) if len(s) != 1), None) if split else None
            if bad is not None:
                raise ValueError(f"softmax category heads need one class per image; {bad} has "
                                 f"{len(split.labels[split.paths.index(bad)])}")
    seed_everything(seed, config.deterministic)
    shape = None if config.image_size is None else (int(config.image_size),) * 2 + (3,)
    model = build_model("xception_twin", vocabulary.num_labels, shape, config.weights,
                        backbone=config.backbone, **kwargs)
    image_size = int(model.input_shape[0][1])
    plan = choose_plan(config, model, trainer="twin")
    schedule = plan.schedule
    if verbose:
        print(f"plan: {plan.reason}")
    if schedule is not None:
        freeze_backbone(model)
        if schedule.finetune_epochs or schedule.final_epochs:
            resolve_start(find_backbone(model), schedule.unfreeze_from)

    batch_size = int(config.batch_size)
    weights_by_output = dict(zip(("class_a", "class_b", "same"), map(float, config.loss_weights)))
    loss = compile_model(model, learning_rate=config.learning_rate, loss_weights=weights_by_output)
    targets = vocabulary.transform(samples.labels).astype(np.float32)
    sampler = PairSampler(samples, vocabulary, config.positive_ratio, config.same, config.jaccard,
                          seed)
    pairs = int(config.pairs_per_epoch or len(samples))
    steps = max(1, pairs // batch_size)
    augment = config.augment

    def train_data(with_augmentation, start_batch=0):
        return pair_dataset(sampler, targets, image_size, batch_size, pairs,
                            augment=augment if with_augmentation else False, repeat=True, seed=seed)

    val_pairs, monitor = None, "class_a_accuracy"
    if val_samples is not None and len(val_samples) > 1:
        try:
            val_sampler = PairSampler(val_samples, vocabulary, config.positive_ratio, config.same,
                                      config.jaccard, seed + 1)
        except ValueError:
            warnings.warn(f"no two of the {len(val_samples)} validation images share a class: "
                          f"validation pairs are all negative", UserWarning, stacklevel=2)
            val_sampler = PairSampler(val_samples, vocabulary, 0.0, config.same, config.jaccard,
                                      seed + 1)
        val_pairs = pair_dataset(val_sampler, vocabulary.transform(val_samples.labels), image_size,
                                 batch_size)
        monitor = "val_class_a_accuracy"
    phases = plan.phases(config.epochs, steps)
    with run.claim(overwrite):
        trainer = Trainer(model, monitor, run, patience=config.patience)
        trainer.fit_phases(model, phases, train_data, steps, loss, callbacks, verbose,
                           validation_data=val_pairs, loss_weights=weights_by_output)
        trainer.finish()

        validation = None
        if val_samples is not None and len(val_samples):
            val_ds = make_dataset(val_samples, vocabulary, image_size, batch_size)
            validation = predict_batches(single_branch(model), val_ds)
        facts = {
            "model": "xception_twin",
            "model_kwargs": {"backbone": config.backbone, **kwargs},
            "weights": config.weights,
            "input_scaling": None if scaling is None else scaling.record(),
            "image_size": image_size,
            "batch_size": batch_size,
            **plan.record(phases),
            "learning_rate": float(config.learning_rate),
            "loss": loss,
            "loss_weights": weights_by_output,
            "pairs": {"positive_ratio": config.positive_ratio, "same": config.same,
                      "jaccard": config.jaccard, "per_epoch": pairs},
            "augment": bool(augment),
            "num_train": len(samples),
            "num_val": len(val_samples) if val_samples is not None else 0,
            "seed": int(seed),
            "deterministic": bool(config.deterministic),
            "settings": config.to_json(),
        }
        policy, policy_kwargs = config.threshold_policy, config.threshold_kwargs
        if policy is None:
            softmax = kwargs["class_activation"] == "softmax"
            policy, policy_kwargs = ("top_k", {"k": 1}) if softmax else ("f1", policy_kwargs)
        return finish_run(run, trainer, vocabulary, validation, facts, policy, policy_kwargs,
                          calibration=config.calibration)
