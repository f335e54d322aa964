"""The image trainer: ``train`` a model on image files, ``resume_training`` a killed run.

The flow reads top-down and never returns to a module it has left:
settings (``TrainConfig``) -> data (``inputs``) -> model (``build_model``)
-> plan (``plans.choose_plan``) -> compile -> run folder (``RunDir``) ->
phases (``Trainer``) -> finish (``finish_run``).
"""

import os  # noqa: F401  (the docstring example uses it)
import warnings

import keras
import numpy as np

from multilabel_keras.data.augment import RandomAffine
from multilabel_keras.data.pipeline import evaluation_dataset, make_dataset
from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.models import build_model
from multilabel_keras.models.outputs import predict_batches
from multilabel_keras.models.precision import (CAREFUL_FLOAT32, policy_of, resolve_precision,
                                               with_policy)
from multilabel_keras.models.surgery import find_backbone, freeze_backbone, resolve_start
from multilabel_keras.runs import RunDir, resume_state
from multilabel_keras.training.cached_front import cache_front
from multilabel_keras.training.lr_find import find_learning_rate
from multilabel_keras.training.callbacks import ExactMAP, user_callbacks
from multilabel_keras.training.compile import compile_model, head_loss
from multilabel_keras.training.config import ConfigError, TrainConfig
from multilabel_keras.training.distributed import (
    check_global_batch,
    setup_distribution,
    shard_batches,
    worker_folder,
)
from multilabel_keras.training.epoch_outputs import EpochOutputs
from multilabel_keras.training.finish import finish_run
from multilabel_keras.training.input_scaling import settle_scaling
from multilabel_keras.training.inputs import (
    colour_mask,
    prepare_splits,
    warn_random_frozen_backbone,
    warn_unseen,
)
from multilabel_keras.training.linear_probe import linear_probe
from multilabel_keras.training.plans import choose_plan
from multilabel_keras.training.recipes import resolve_recipe
from multilabel_keras.training.trainer import Trainer
from multilabel_keras.training.seeding import seed_everything


def train(samples, out_dir, model=None, *, val_samples=None, vocabulary=None, overwrite=False,
          verbose=1, config=None, callbacks=None, **settings):
    """Trains a multi-label model on image files and writes a run directory.

    Sigmoid outputs with binary cross-entropy by default; each epoch the
    exact validation mAP is computed, the best model so far is saved to
    ``model.keras`` and the log to ``history.csv``. After training,
    per-label thresholds are tuned on the validation split only and the run
    directory gets ``labels.json``, ``thresholds.json``, ``config.json``,
    ``plot.png``, ``pr_curves.png`` and ``metrics.json`` (validation
    metrics).

    Every setting (``epochs``, ``batch_size``, ``learning_rate``,
    ``schedule``, ``weights``, ``loss``, ``threshold_policy``, …) is checked
    by ``TrainConfig`` before anything is read or written; see ``SETTINGS``
    in ``training/config.py`` for each one's default and rule. ``epochs`` is
    the number of epochs over the images, all phases together; not given,
    it is 75, or more where the recipe asks for a least number of updates
    (SmallerVGGNet: 3000, so 200 images at batch 16 train 215 epochs). The
    transfer plan is the ``schedule`` setting: ``"auto"`` (default: LP-FT
    for a transfer model given pretrained ``weights``, else every layer
    trains; the choice and its reason are printed and kept in
    ``config.json``), ``"lp_ft"`` (linear probe on cached features, then
    ``epochs`` of fine-tuning the last 40% of the backbone's blocks),
    ``"frozen"`` (head only), ``"none"``, or explicit phases (a
    ``TransferSchedule`` or a dict of its fields).

    A weights file's pixel scaling is ``model_kwargs["preprocessing"]``, else
    what ``<weights>.json`` says, else measured from the training images
    with a warning naming the choice (``input_scaling.py``).

    ``learning_rate="find"`` (runs without a transfer plan) picks the rate
    with a range test on the training stream first (``lr_find.py``) and
    records it. Validation images are decoded once and kept in memory when
    they fit in 512 MiB (``data.pipeline.EVAL_MEMORY_BYTES``), else streamed
    every epoch.

    While it runs, the run directory holds ``resume/`` (settings, the
    exact splits with their files' fingerprints, weights and optimizer
    state after the last finished epoch); ``resume_training(run_dir)``
    continues a killed run from there, from any working folder. Runs given
    a built model or loss object (not names) cannot be resumed.

    Args:
        samples: training ``Samples``.
        out_dir: run directory to create; it must be empty or absent unless
            ``overwrite`` is true.
        model: a registered model name or a built ``keras.Model`` (the
            ``model`` setting; default ``"smallervggnet"``).
        val_samples: validation ``Samples``; if ``None``, ``val_split`` of
            ``samples`` is held out by iterative stratification.
        vocabulary: a fitted ``LabelVocabulary``; default: fitted on all
            labels in ``samples`` and ``val_samples``.
        overwrite: allow writing into a non-empty ``out_dir`` (only the
            library's own files there are replaced).
        verbose: Keras verbosity (1 = progress bar); also prints the plan.
        config: a ``TrainConfig`` to use instead of ``settings``.
        callbacks: your Keras callbacks (``keras.callbacks.TensorBoard``,
            MLflow's or W&B's Keras callback …), run after the library's
            own in every training phase, so their logs hold the exact
            ``mAP`` / ``val_mAP``. Not part of the run's settings: a
            resumed run takes them again (``resume_training``).
        **settings: the run's settings (see ``TrainConfig``).

    Returns:
        A ``TrainResult``.

    Raises:
        multilabel_keras.training.config.ConfigError: a bad setting (each one named).

    Example:
        >>> from multilabel_keras import from_folders
        >>> result = train(from_folders("data/fashion"), "runs/new",
        ...                epochs=1, image_size=32, verbose=0)
        >>> sorted(os.listdir("runs/new"))  # doctest: +NORMALIZE_WHITESPACE
        ['calibration.json', 'config.json', 'history.csv', 'labels.json', 'metrics.json',
         'model.keras', 'plot.png', 'pr_curves.png', 'reliability.png', 'thresholds.json']
        >>> train(from_folders("data/fashion"), "runs/other", epochs=0)
        Traceback (most recent call last):
        ...
        multilabel_keras.training.config.ConfigError: epochs must be a whole number >= 1, got 0

        Transfer learning from a weights file (LP-FT by default; here
        explicit phases):

        >>> train(samples, "runs/tl", "mobilenetv2", weights="mnv2.weights.h5",
        ...       schedule=TransferSchedule(5, 10, "block_15"))  # doctest: +SKIP
    """
    if config is None:
        config = TrainConfig("image", **({} if model is None else {"model": model}), **settings)
    elif model is not None or settings:
        raise ValueError("pass settings either as keywords or as config=, not both")
    if config.image_size is None:
        raise ConfigError([("image_size", "must be a whole number >= 8, got None")])
    callbacks = user_callbacks(callbacks)
    placement = setup_distribution(config.distribution) if config.distribution else None
    with worker_folder(placement) as folder:
        if folder is not None:  # only process 0 writes the run directory (and logs)
            out_dir, overwrite, verbose, callbacks = folder, True, 0, []
        return _train_images(samples, RunDir(out_dir), config, val_samples, vocabulary,
                             overwrite, verbose, placement, callbacks=callbacks)


def resume_training(run_dir, verbose=1, callbacks=None):
    """Continues a killed ``train`` run from its last finished epoch.

    The same settings and the exact same train/validation split are used
    (image paths are stored absolute, so it works from any working
    folder); a run whose image files changed since it started is refused,
    naming one. Weights and optimizer state come from the end of the last
    finished epoch; ``history.csv`` keeps its rows up to that epoch and
    goes on from there, so the run ends at the planned epoch count with no
    row twice.

    Args:
        run_dir: the run directory of the killed run.
        verbose: Keras verbosity.
        callbacks: Keras callbacks for the remaining epochs (as ``train``'s).

    Returns:
        A ``TrainResult``.

    Example:
        >>> resume_training("runs/fashion")  # doctest: +SKIP
    """
    if keras.backend.backend() == "torch":
        warnings.warn("resuming under the PyTorch backend continues the run but does not "
                      "reproduce the uninterrupted run exactly (it does under TensorFlow and JAX)",
                      UserWarning, stacklevel=2)
    run = RunDir(run_dir)
    spec, samples, val_samples, state = resume_state.load_resume(run)
    try:
        config = TrainConfig.from_json(spec.get("config"), run.file(run.RESUME_SPEC))
        vocabulary = LabelVocabulary(classes=list(spec["vocabulary_classes"])).fit([])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{run.file(run.RESUME_SPEC)} is damaged ({err}): start the run "
                         f"again") from None
    return _train_images(samples, run, config, val_samples, vocabulary, False, verbose, None,
                         resume=state or {"epochs_done": 0}, callbacks=user_callbacks(callbacks))


def _train_images(samples, run, config, val_samples, vocabulary, overwrite, verbose, placement,
                  resume=None, callbacks=()):
    if resume is None:
        run.check_free(overwrite)
    samples, val_samples, vocabulary = prepare_splits(
        samples, val_samples, vocabulary, config.val_split, config.seed,
        on_bad_image=config.on_bad_image, max_bad_fraction=config.max_bad_fraction,
        max_pixels=config.max_pixels)
    if len(samples) == 0:
        raise ValueError("no training samples")
    if val_samples is not None and resume is None:
        warn_unseen(samples, val_samples)
    # The same seed on resume: the model's random state is then overwritten
    # by the saved one, and the data stream is keyed by (seed, batch index).
    seed = config.seed
    # Before seeding: measuring builds a backbone, which draws initial weights. A resumed
    # run has its scaling in its settings, or was started before scalings were measured.
    scaling, config = settle_scaling(config, config.model, samples, val_samples, vocabulary,
                                     int(config.image_size), seed, stacklevel=4,
                                     measure=resume is None)
    seed_everything(seed, config.deterministic)

    named = isinstance(config.model, str)
    model_name = config.model if named else config.model.name
    find_rate = config.learning_rate == "find"
    settings = resolve_recipe(model_name, config.recipe, batch_size=config.batch_size,
                              learning_rate=None if find_rate else config.learning_rate,
                              lr_plan=config.lr_plan,
                              mix=config.mix, recolour=config.recolour,
                              recolour_split=config.recolour_split,
                              model_kwargs=config.model_kwargs if named else None)
    batch_size, learning_rate = int(settings["batch_size"]), float(settings["learning_rate"])
    if placement is not None:
        check_global_batch(batch_size, placement)
    lr_plan, mix = settings["lr_plan"], float(settings["mix"])
    recolour, recolour_split = float(settings["recolour"]), bool(settings["recolour_split"])
    colours = colour_mask(vocabulary, config.colour_labels)
    # A built model keeps its own shape: the recipe's model arguments apply to names only.
    model_kwargs = settings["model_kwargs"] if named else dict(config.model_kwargs or {})
    augment = config.augment
    if augment is True:
        augment = RandomAffine(seed=seed, **settings["augment"])
    image_size = int(config.image_size)
    model = (build_model(config.model, vocabulary.num_labels, (image_size, image_size, 3),
                         config.weights, **model_kwargs) if named else config.model)

    plan = choose_plan(config, model)
    schedule = plan.schedule
    if verbose:
        print(f"plan: {plan.reason}")
    if placement is not None and schedule is not None:
        raise ConfigError([("distribution", f"trains without a transfer plan, and plan "
                            f"{plan.name!r} was chosen; give schedule='none' or train the "
                            f"transfer plan on one machine")])
    compute = resolve_precision(config.precision)
    if compute != "float32" and schedule is not None:
        raise ConfigError([("precision", f"applies to runs without a transfer plan (measured on "
                            f"scratch training only); plan {plan.name!r} trains in float32")])
    if schedule is not None or model_kwargs.get("freeze_backbone"):
        warn_random_frozen_backbone(model, config.weights)
    if compute != "float32" and named:
        # Batch norm, the pixels' first layers and the head stay float32 (docs/benchmarks.md).
        model = with_policy(model, compute, CAREFUL_FLOAT32)
    if schedule is not None:
        # Both fail before any training on a model without a backbone or a wrong block name.
        freeze_backbone(model)
        if schedule.finetune_epochs or schedule.final_epochs:
            resolve_start(find_backbone(model), schedule.unfreeze_from)
    steps = max(1, int(np.ceil(len(samples) / batch_size)))
    if "epochs" not in config.given and schedule is None and settings.get("min_updates"):
        needed = int(np.ceil(settings["min_updates"] / steps))
        if needed > config.epochs:
            # Kept in the run's settings: a resumed run plans the same epochs.
            config = config.replace(epochs=needed)
            if verbose:
                print(f"epochs: {needed}, for {settings['min_updates']} updates of "
                      f"{batch_size} images over {len(samples)} training images (the recipe's "
                      f"least; give epochs to choose)")
    phases = plan.phases(config.epochs, steps)

    def image_data(with_augmentation, start_batch=0):
        data = make_dataset(samples, vocabulary, image_size, batch_size,
                            augment=augment if with_augmentation else False,
                            shuffle=True, repeat=True, seed=seed, start_batch=start_batch,
                            mix=mix if with_augmentation else 0.0,
                            recolour=((colours, recolour, recolour_split)
                                      if with_augmentation else None))
        return data if placement is None else shard_batches(data, batch_size, placement)

    range_test = None
    if find_rate:
        if schedule is not None:
            raise ConfigError([("learning_rate", f"'find' applies to runs without a transfer "
                                f"plan, and plan {plan.name!r} was chosen; give a number, or "
                                f"schedule='none'")])
        range_test = find_learning_rate(
            model, image_data(True),
            compile_model(model, learning_rate, loss=config.loss, loss_kwargs=config.loss_kwargs,
                          train_targets=vocabulary.transform(samples.labels, samples.unknown)))
        learning_rate = range_test.suggestion
        # The run's settings (and a resumed run) keep the rate found, not the request.
        config = config.replace(learning_rate=learning_rate)
        if verbose:
            print(f"learning rate: {learning_rate:.2g}, from a range test over "
                  f"{len(range_test.rates)} steps (lowest loss at {range_test.lowest:.2g}, "
                  f"divided by 10)")
    # Training mAP from the training pass itself (image path, one output): no second pass.
    in_pass = (EpochOutputs(steps * batch_size, vocabulary.num_labels)
               if config.train_map_samples and schedule is None and len(model.outputs) == 1
               else None)
    loss = compile_model(model, learning_rate, phases[0].epochs, steps, config.loss, lr_plan=lr_plan,
                         loss_kwargs=config.loss_kwargs,
                         train_targets=vocabulary.transform(samples.labels, samples.unknown),
                         metrics=None if in_pass is None else [in_pass])
    spec = config.to_json()
    resumable = spec is not None and named and placement is None

    # Nothing is written before this point: a model, head or loss that cannot work
    # fails above with the run folder untouched.
    with run.claim(overwrite, fresh=resume is None):
        if resumable and resume is None:
            resume_state.save_spec(run, {"config": spec,
                                         "vocabulary_classes": list(vocabulary.classes_)},
                                   samples, val_samples)

        val_ds = (evaluation_dataset(val_samples, vocabulary, image_size, batch_size)
                  if val_samples is not None and len(val_samples) else None)
        sample_ds = picked = None
        if config.train_map_samples and in_pass is None:
            rng = np.random.default_rng(seed)
            picked = np.sort(rng.choice(len(samples), min(config.train_map_samples, len(samples)),
                                        replace=False))
            sample_ds = evaluation_dataset(samples.subset(picked), vocabulary, image_size,
                                           batch_size)
        cached = None
        if schedule is not None and schedule.cache_front and not (mix or recolour):
            # Fine-tuning trains this tail on maps of the frozen layers computed once.
            cached = cache_front(model, schedule.unfreeze_from, samples, val_samples, vocabulary,
                                 image_size, batch_size, seed, picked, schedule.cached_views)
        fit_model = cached.tail if cached is not None else model

        trainer = Trainer(model, "val_mAP" if val_ds is not None else "mAP", run,
                          patience=config.patience, resumable=resumable)
        if resume is not None:
            trainer.resume_from(resume, run.read_history())
        # Validation loss is computed on per-label probabilities, where binary
        # cross-entropy equals the 2-way head's loss.
        val_loss = loss if len(model.output_shape) == 2 else head_loss("sigmoid")
        metrics = (ExactMAP(val_ds, sample_ds, val_loss, in_pass) if cached is None else
                   ExactMAP(cached.val_data, cached.sample_data, val_loss))
        if scaling is not None:
            trainer.keep_fact("input_scaling", scaling.record())
        if range_test is not None:
            trainer.keep_fact("learning_rate_range_test", {
                "suggestion": range_test.suggestion, "lowest": range_test.lowest,
                "steps": len(range_test.rates)})
        probe = trainer.facts.get("linear_probe")
        if schedule is not None and schedule.linear_probe and not trainer.epochs_done:
            probe = linear_probe(model, make_dataset(samples, vocabulary, image_size, batch_size),
                                 val_ds, loss, seed)
            if verbose:
                shown = probe["val_mAP"] if probe["val_mAP"] is not None else "-"
                print(f"linear probe: head fitted on cached features in {probe['epochs']} "
                      f"epochs, validation mAP {shown}")
            if probe["val_mAP"] is not None:
                # Epoch 0 is the probed head: fine-tuning is kept only where it beats it.
                trainer.offer_best(probe["val_mAP"], epoch=0)
            trainer.keep_fact("linear_probe", probe)
        trainer.fit_phases(fit_model, phases, image_data if cached is None else cached.train_data,
                           steps, loss, [metrics, *callbacks], verbose)
        trainer.finish()
        model = with_policy(model, "float32")  # as saved: thresholds are tuned on the model users get

        validation = predict_batches(model, val_ds, config.tta) if val_ds is not None else None
        facts = {
            "model": model_name,
            "model_kwargs": model_kwargs or {},
            "weights": config.weights,
            "image_size": image_size,
            "batch_size": batch_size,
            **plan.record(phases),
            "linear_probe": probe,
            "cached_front": cached is not None,
            "learning_rate": learning_rate,
            "learning_rate_range_test": trainer.facts.get("learning_rate_range_test"),
            "input_scaling": trainer.facts.get("input_scaling"),
            "loss": loss,
            "recipe": settings["recipe"],
            "augment": augment.get_config() if isinstance(augment, RandomAffine) else bool(augment),
            "mix": mix,
            "recolour": recolour,
            "recolour_split": recolour_split,
            "colour_labels": [c for c, on in zip(vocabulary.classes_, colours) if on],
            "lr_plan": lr_plan,
            "val_split": float(config.val_split) if val_samples is not None else 0.0,
            "num_train": len(samples),
            "num_val": len(val_samples) if val_samples is not None else 0,
            "seed": int(seed),
            "deterministic": bool(config.deterministic),
            "precision": policy_of(fit_model),
            "tta": config.tta,
            "settings": spec,
        }
        return finish_run(run, trainer, vocabulary, validation, facts,
                          config.threshold_policy or "f1", config.threshold_kwargs, model=model,
                          calibration=config.calibration)
