"""The fit loop: ``train`` an image model through its phases, ``resume_training`` a killed run."""

import dataclasses
import os

import keras
import numpy as np

from multilabel_keras.data.augment import RandomAffine
from multilabel_keras.data.check import DEFAULT_MAX_PIXELS
from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.models import build_model
from multilabel_keras.models.outputs import predict_batches
from multilabel_keras.models.precision import policy_of, resolve_precision, with_policy
from multilabel_keras.training import resume
from multilabel_keras.training.cached_front import cache_front
from multilabel_keras.training.callbacks import BestCheckpoint, ExactMAP, HistoryCSV
from multilabel_keras.training.compile import compile_model, head_loss
from multilabel_keras.training.distributed import (
    check_global_batch,
    runs_distributed,
    setup_distribution,
    shard_batches,
)
from multilabel_keras.training.epoch_outputs import EpochOutputs
from multilabel_keras.training.fit_checks import (
    colour_mask,
    lp_ft_applies,
    lp_ft_start,
    prepare_splits,
    warn_random_frozen_backbone,
    warn_unseen,
)
from multilabel_keras.training.linear_probe import linear_probe
from multilabel_keras.training.recipes import resolve_recipe
from multilabel_keras.training.run_dir import finish_run
from multilabel_keras.training.run_guard import check_run_dir, claim_run_dir, release_claims
from multilabel_keras.training.phases import fit_phases
from multilabel_keras.training.schedule import (
    TransferSchedule,
    backbone_blocks,
    find_backbone,
    freeze_backbone,
    resolve_start,
)
from multilabel_keras.run_files import read_history


@release_claims
@runs_distributed
def train(
    samples,
    out_dir,
    model="smallervggnet",
    *,
    val_samples=None,
    val_split=0.2,
    vocabulary=None,
    image_size=96,
    batch_size=None,
    epochs=75,
    learning_rate=None,
    augment=True,
    mix=None,
    recolour=None,
    recolour_split=None,
    colour_labels="auto",
    lr_plan=None,
    recipe=None,
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
    precision="float32",
    distribution=None,
    resume_state=None,
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
        batch_size: images per batch (default: the recipe's).
        epochs: number of epochs (ignored with a ``schedule``). A transfer
            model given pretrained ``weights`` and no ``schedule`` trains
            with LP-FT (``TransferSchedule.lp_ft(epochs)``): its head is
            fitted on cached features first, then ``epochs`` epochs
            fine-tune the last 40% of the backbone's blocks (batch norm
            frozen) with Adam, one warm-up epoch and a cosine decay, on
            maps of the frozen layers computed once (no augmentation).
        learning_rate: Adam's initial learning rate (phase 1 of a schedule;
            default: the recipe's).
        augment: ``True`` for the recipe's ``RandomAffine``, ``False``, or a
            Keras layer.
        mix: share of each training batch replaced by 2x2 mosaics of four
            images labelled with the union of their labels (default: the
            recipe's).
        recolour: share of each training batch whose hue is turned at
            random with its colour labels marked unknown, so that object
            labels stop depending on colour (default: the recipe's; no
            effect without colour labels).
        recolour_split: the untouched share teaches colour labels only, so
            object labels learn only from recoloured images (default: the
            recipe's).
        colour_labels: the labels ``recolour`` treats as colours:
            ``"auto"`` (labels made of colour words, see
            ``colour_labels``) or a list of names.
        lr_plan: Adam's learning-rate plan: ``"decay"`` (the classic
            recipe's inverse-time decay) or ``"cosine"`` (one warm-up
            epoch, then a cosine to zero); default: the recipe's.
        recipe: the settings used for what is not given (``RECIPES`` in
            ``training/recipes.py``): default the model's own entry
            (``smallervggnet``: batch 16, Adam 1e-3 with a cosine plan,
            global average pooling, dropout 0.1 between stages, milder
            augmentation, split recolouring of 3/4 of each batch), else
            ``"classic"``, the published recipe.
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
            mAP of a transfer schedule (0 to skip it); other runs take it
            from the training pass's own outputs (``EpochOutputs``).
        precision: ``"float32"`` or ``"mixed_bfloat16"`` (bfloat16
            compute, float32 weights; runs without a transfer schedule
            only): faster on CPUs with bfloat16 instructions, less accurate
            on the accuracy suite (see ``resolve_precision``). The saved
            model is float32 whatever the training precision.
        distribution: ``None``, or ``"data_parallel"`` (or a
            ``keras.distribution.Distribution``): train on every device of
            every process with ``keras.distribution`` (JAX backend; see
            ``training/distributed.py``). ``batch_size`` is then the global
            batch; process 0 writes ``out_dir``, the others write nothing.
            Transfer schedules and resuming are single-process only.
        resume_state: set by ``resume_training`` only.

    While it runs, the run directory holds ``resume/`` (arguments, the
    exact splits, weights and optimizer state after the last finished
    epoch); ``resume_training(run_dir)`` continues a killed run from there.
    The folder is removed when training completes. Runs given a built model
    or loss object (not names) cannot be resumed.

    Returns:
        A ``TrainResult``.

    Example:
        >>> from multilabel_keras import from_folders
        >>> result = train(from_folders("data/fashion"), "runs/new",
        ...                epochs=1, image_size=32, verbose=0)
        >>> sorted(os.listdir("runs/new"))  # doctest: +NORMALIZE_WHITESPACE
        ['config.json', 'history.csv', 'labels.json', 'metrics.json', 'model.keras', 'plot.png',
         'pr_curves.png', 'thresholds.json']

        Transfer learning from a weights file (LP-FT by default; here an
        explicit schedule):

        >>> train(samples, "runs/tl", "mobilenetv2", weights="mnv2.weights.h5",
        ...       schedule=TransferSchedule(5, 10, "block_15"))  # doctest: +SKIP
    """
    out_dir = os.fspath(out_dir)
    spec = {k: v for k, v in locals().items() if k in _SPEC_KEYS}
    # Started already by runs_distributed (setup_distribution returns the same placement).
    placement = setup_distribution(distribution) if distribution is not None else None
    if resume_state is None:
        check_run_dir(out_dir, overwrite)
    samples, val_samples, vocabulary = prepare_splits(
        samples, val_samples, vocabulary, val_split, seed, on_bad_image=on_bad_image,
        max_bad_fraction=max_bad_fraction, max_pixels=max_pixels)
    if len(samples) == 0:
        raise ValueError("no training samples")
    if val_samples is not None and resume_state is None:
        warn_unseen(samples, val_samples)
    # The same seed on resume: the model's random state is then overwritten
    # by the saved one, and the data stream is keyed by (seed, batch index).
    keras.utils.set_random_seed(seed)

    model_name = model if isinstance(model, str) else model.name
    settings = resolve_recipe(model_name, recipe, batch_size=batch_size,
                              learning_rate=learning_rate, lr_plan=lr_plan, mix=mix,
                              recolour=recolour, recolour_split=recolour_split,
                              model_kwargs=model_kwargs if isinstance(model, str) else None)
    batch_size, learning_rate = int(settings["batch_size"]), float(settings["learning_rate"])
    if placement is not None:
        check_global_batch(batch_size, placement)
    lr_plan, mix = settings["lr_plan"], float(settings["mix"])
    recolour, recolour_split = float(settings["recolour"]), bool(settings["recolour_split"])
    colours = colour_mask(vocabulary, colour_labels)
    # A built model keeps its own shape: the recipe's model arguments apply to names only.
    model_kwargs = settings["model_kwargs"] if isinstance(model, str) else dict(model_kwargs or {})
    if augment is True:
        augment = RandomAffine(seed=seed, **settings["augment"])
    if isinstance(model, str):
        model = build_model(
            model, vocabulary.num_labels, (image_size, image_size, 3), weights, **model_kwargs
        )
    if schedule is None and weights is not None and lp_ft_applies(model, model_kwargs):
        schedule = TransferSchedule.lp_ft(
            epochs, unfreeze_from=lp_ft_start(backbone_blocks(find_backbone(model))))
    if placement is not None and schedule is not None:
        raise ValueError("distributed training runs without a transfer schedule: give --epochs "
                         "only, or train the transfer recipe on one machine")
    if schedule is not None or (model_kwargs or {}).get("freeze_backbone"):
        warn_random_frozen_backbone(model, weights)
    compute = resolve_precision(precision)
    if compute != "float32" and schedule is None and isinstance(spec["model"], str):
        # Measured on scratch training only: transfer schedules stay float32.
        model = with_policy(model, compute)
    if schedule is not None:
        # Both fail before any training on a model without a backbone or a wrong block name.
        freeze_backbone(model)
        if schedule.finetune_epochs or schedule.final_epochs:
            resolve_start(find_backbone(model), schedule.unfreeze_from)
    phases = schedule.phases() if schedule is not None else [(None, int(epochs), True)]
    steps = max(1, int(np.ceil(len(samples) / batch_size)))
    # Training mAP from the training pass itself (image path, one output): no second pass.
    in_pass = (EpochOutputs(steps * batch_size, vocabulary.num_labels)
               if train_map_samples and schedule is None and len(model.outputs) == 1 else None)
    loss = compile_model(model, learning_rate, phases[0][1], steps, loss, lr_plan=lr_plan,
                         loss_kwargs=loss_kwargs,
                         train_targets=vocabulary.transform(samples.labels, samples.unknown),
                         metrics=None if in_pass is None else [in_pass])
    # Nothing is written before this point: a model, head or loss that cannot work
    # fails above with the run folder untouched.
    claim_run_dir(out_dir, overwrite, fresh=resume_state is None)
    spec.update(vocabulary_classes=list(vocabulary.classes_),
                schedule=None if schedule is None else dataclasses.asdict(schedule))
    resumable = resume.dumps_ok(spec) and isinstance(spec["model"], str) and placement is None
    if resumable and resume_state is None:
        resume.save_spec(out_dir, spec, samples, val_samples)

    def train_data(with_augmentation, start_batch=0):
        if placement is not None:
            return shard_batches(image_data(with_augmentation, start_batch), batch_size, placement)
        return image_data(with_augmentation, start_batch)

    def image_data(with_augmentation, start_batch=0):
        return make_dataset(samples, vocabulary, image_size, batch_size,
                            augment=augment if with_augmentation else False,
                            shuffle=True, repeat=True, seed=seed, start_batch=start_batch,
                            mix=mix if with_augmentation else 0.0,
                            recolour=((colours, recolour, recolour_split) if with_augmentation
                                      else None))

    val_ds = (make_dataset(val_samples, vocabulary, image_size, batch_size)
              if val_samples is not None and len(val_samples) else None)
    sample_ds = picked = None
    if train_map_samples and in_pass is None:
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(len(samples), min(train_map_samples, len(samples)), replace=False))
        sample_ds = make_dataset(samples.subset(picked), vocabulary, image_size, batch_size)
    cached = None
    if schedule is not None and schedule.cache_front and not (mix or recolour):
        # Fine-tuning trains this tail on maps of the frozen layers computed once.
        cached = cache_front(model, schedule.unfreeze_from, samples, val_samples, vocabulary,
                             image_size, batch_size, seed, picked, schedule.cached_views)
    fit_model = cached.tail if cached is not None else model

    monitor = "val_mAP" if val_ds is not None else "mAP"
    checkpoint = BestCheckpoint(os.path.join(out_dir, "model.keras"), monitor, model=model)
    state = resume_state or {}
    done = state.get("epochs_done", 0)
    history_path = os.path.join(out_dir, "history.csv")
    history_cb = HistoryCSV(history_path,
                            read_history(history_path)[:state["history_rows"]] if done else None)
    if done and state.get("best_epoch") is not None:
        checkpoint.best, checkpoint.best_epoch = state["best"], state["best_epoch"]
    # Validation loss is computed on per-label probabilities, where binary
    # cross-entropy equals the 2-way head's loss.
    val_loss = loss if len(model.output_shape) == 2 else head_loss("sigmoid")
    callbacks = [ExactMAP(val_ds, sample_ds, val_loss, in_pass) if cached is None else
                 ExactMAP(cached.val_data, cached.sample_data, val_loss), checkpoint, history_cb]
    saver = resume.ResumeState(out_dir, checkpoint, history_cb) if resumable else None
    if saver is not None:
        callbacks.append(saver)
    probe = state.get("linear_probe")
    if schedule is not None and schedule.linear_probe and not done:
        probe = linear_probe(model, make_dataset(samples, vocabulary, image_size, batch_size), val_ds,
                             loss, seed)
        if verbose:
            print(f"linear probe: head fitted on cached features in {probe['epochs']} epochs, "
                  f"validation mAP {probe['val_mAP'] if probe['val_mAP'] is not None else '-'}")
        if probe["val_mAP"] is not None:
            # Epoch 0 is the probed head: fine-tuning is kept only where it beats it.
            checkpoint.set_model(model)
            checkpoint.on_epoch_end(-1, {monitor: probe["val_mAP"]})
        if saver is not None:
            saver.extra["linear_probe"] = probe
    restored = []

    def restore(fresh_optimizer, at_phase_start):
        restored.append(True)
        best = resume.restore(fit_model, out_dir, fresh_optimizer)
        if best is not None:
            checkpoint.best_weights = best
            if at_phase_start:  # as the uninterrupted run, whose last phase ended on its best
                model.set_weights(best)

    fit_phases(fit_model, phases, schedule, train_data if cached is None else cached.train_data,
               steps, callbacks, history_cb, loss,
               monitor, patience, verbose, start_epoch=done,
               before_first_fit=restore if done else None,
               patience_state=state.get("patience"), saver=saver)
    if done and not restored:
        restore(True, True)  # killed after its last epoch: every epoch is done, only the files are not
    if checkpoint.best_weights is not None:
        model.set_weights(checkpoint.best_weights)  # metrics and thresholds from the saved model
    model = with_policy(model, "float32")  # as saved: thresholds are tuned on the model users get

    validation = predict_batches(model, val_ds) if val_ds is not None else None
    config = {
        "model": model_name,
        "model_kwargs": model_kwargs or {},
        "weights": weights,
        "image_size": int(image_size),
        "batch_size": int(batch_size),
        "epochs": sum(e for _, e, _ in phases),
        "schedule": dataclasses.asdict(schedule) if schedule is not None else None,
        "linear_probe": probe,
        "cached_front": cached is not None,
        "learning_rate": float(learning_rate),
        "loss": loss,
        "recipe": settings["recipe"],
        "augment": augment.get_config() if isinstance(augment, RandomAffine) else bool(augment),
        "mix": mix,
        "recolour": recolour,
        "recolour_split": recolour_split,
        "colour_labels": [c for c, on in zip(vocabulary.classes_, colours) if on],
        "lr_plan": lr_plan,
        "val_split": float(val_split) if val_samples is not None else 0.0,
        "num_train": len(samples),
        "num_val": len(val_samples) if val_samples is not None else 0,
        "seed": int(seed),
        "precision": policy_of(fit_model),
    }
    result = finish_run(out_dir, model, vocabulary, validation, config, checkpoint, history_cb,
                        threshold_policy, threshold_kwargs)
    resume.finish(out_dir)
    return result


_SPEC_KEYS = ("model", "image_size", "batch_size", "epochs", "learning_rate", "augment", "mix",
              "recolour", "recolour_split", "colour_labels",
              "lr_plan", "recipe", "patience",
              "weights", "model_kwargs", "loss", "loss_kwargs", "threshold_policy",
              "threshold_kwargs", "seed", "train_map_samples", "precision")

