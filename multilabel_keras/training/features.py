"""Cached features: run a frozen backbone once, train a small head many times."""

import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from multilabel_keras.data.check import check_images
from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.data.sources import Samples
from multilabel_keras.data.splits import check_hold_out, iterative_split
from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.io import atomic_path, read_index
from multilabel_keras.models import build_model
from multilabel_keras.models.outputs import host_batch, predict_batches
from multilabel_keras.models.transfer import PREPROCESSING, backbone_size, build_encoder
from multilabel_keras.models.weights import load_weights_file
from multilabel_keras.runs import RunDir
from multilabel_keras.progress import Progress
from multilabel_keras.training.callbacks import ExactMAP, user_callbacks
from multilabel_keras.training.compile import compile_model
from multilabel_keras.training.config import TrainConfig
from multilabel_keras.training.finish import finish_run
from multilabel_keras.training.input_scaling import check_scaling, resolve_scaling
from multilabel_keras.training.plans import Phase
from multilabel_keras.training.trainer import Trainer
from multilabel_keras.training.seeding import seed_everything

INDEX_FORMAT = "multilabel_keras.features"


def warn_random_features(backbone):
    """Says loudly that features of a randomly initialised backbone are close to noise."""
    warnings.warn(f"the {backbone} backbone has random weights (weights=None): its pooled "
                  f"features carry almost no information and a head trained on them scores near "
                  f"chance. Pass pretrained weights (a .weights.h5 file or 'imagenet').",
                  UserWarning, stacklevel=3)


def feature_extractor(backbone="inceptionv3", input_shape=None, weights=None, pooling="avg",
                      preprocessing=None):
    """Raw 0-255 pixels → the backbone's pooled features, as one model.

    The layers are named as in ``transfer_model`` (``preprocess``,
    ``backbone``, ``pooler``), so a head trained on the features joins back
    onto exactly this stack.

    Args:
        backbone: ``keras.applications`` name in lower case.
        input_shape: ``(height, width, 3)``; default the backbone's size.
        weights: ``None``, ``"imagenet"`` or a backbone weights file.
        pooling: ``"avg"`` or ``"max"``.
        preprocessing: how the weights want their pixels (see
            ``transfer_model``); ``None``: the family's own.

    Returns:
        A frozen ``keras.Model`` with output ``(batch, features)``.

    Example:
        >>> feature_extractor("mobilenetv2", (32, 32, 3)).output_shape
        (None, 1280)
    """
    return build_encoder(backbone, input_shape, weights, pooling, freeze_backbone=True,
                         name=f"{backbone}_features", preprocessing=preprocessing)


def extract_features(samples, out_dir, backbone="inceptionv3", weights=None, image_size=None,
                     batch_size=32, pooling="avg", overwrite=False, verbose=1, preprocessing=None):
    """Runs a frozen backbone once over a data set and stores pooled features.

    The folder gets ``features.npy`` (float32, one row per image, in
    ``samples`` order), ``index.json`` (paths, label sets, backbone, image
    size, pooling) and ``backbone.weights.h5``, the exact backbone weights
    used, so ``train_on_features`` can join its head back onto the same
    network whatever the weights' source was. Files are written under
    temporary names and renamed when complete.

    Args:
        samples: ``Samples`` to encode.
        out_dir: destination folder (must be empty unless ``overwrite``).
        backbone: ``keras.applications`` name in lower case.
        weights: ``None``, ``"imagenet"`` or a backbone weights file.
        image_size: side of the square input; default the backbone's size.
        batch_size: images per forward pass.
        pooling: ``"avg"`` or ``"max"``.
        overwrite: allow a non-empty ``out_dir``.
        verbose: 0 for no progress bar (one is drawn only on a terminal).
        preprocessing: how ``weights`` want their pixels (``"tf"``,
            ``"torch"``, ``"caffe"``, ``"none"``, ``"auto"``); ``None``: what
            a JSON beside the weights file says, else measured from the
            images with a warning (as ``train``; ``input_scaling.py``), and
            the family's own for ``"imagenet"``. Kept in the index, so the
            head joins back onto the same scaling.

    Returns:
        The index dict.

    Example:
        >>> from multilabel_keras import from_folders
        >>> index = extract_features(from_folders("data/fashion"), "features/new", "mobilenetv2",
        ...                          weights=None, image_size=32, verbose=0)
        >>> index["count"], index["dim"]
        (30, 1280)

        With real data pass pretrained weights (``weights="imagenet"`` or a
        file): random weights give features that carry almost no information.
    """
    folder = RunDir(out_dir)
    folder.check_free(overwrite)
    if len(samples) == 0:
        raise ValueError("extract_features: no samples")
    check_scaling(backbone, weights, preprocessing)
    if weights is None:
        warn_random_features(backbone)
    samples, _ = check_images(samples)
    image_size = int(image_size or backbone_size(backbone))
    vocabulary = LabelVocabulary().fit(samples.labels)
    scaling, preprocessing = resolve_scaling(backbone, weights, preprocessing, samples, None,
                                             vocabulary, image_size, 0, stacklevel=3)
    model = feature_extractor(backbone, (image_size, image_size, 3), weights, pooling,
                              preprocessing)
    with folder.claim(overwrite):
        return _extract(model, samples, vocabulary, folder, backbone, weights, image_size,
                        batch_size, pooling, verbose, preprocessing, scaling)


def _extract(model, samples, vocabulary, folder, backbone, weights, image_size, batch_size, pooling,
             verbose, preprocessing, scaling):
    ds = make_dataset(samples, vocabulary, image_size, batch_size)
    dim = int(model.output_shape[-1])
    with atomic_path(folder.file(folder.FEATURES)) as tmp:
        # A memory-mapped file: CelebA-sized sets never sit in memory at once.
        features = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                             shape=(len(samples), dim))
        row = 0
        bar = Progress(len(samples), "extracting features", enabled=bool(verbose))
        for x, _ in ds:
            out = np.asarray(model.predict_on_batch(host_batch(x)), dtype=np.float32)
            features[row : row + len(out)] = out
            row += len(out)
            bar.update(len(out))
        bar.close()
        features.flush()
        del features
    with atomic_path(folder.file(folder.BACKBONE)) as tmp:
        model.get_layer("backbone").save_weights(tmp)
    index = {
        "format": INDEX_FORMAT,
        "version": 1,
        "backbone": backbone,
        "weights": None if weights is None else os.fspath(weights),
        "image_size": image_size,
        "pooling": pooling,
        "preprocessing": preprocessing,
        "input_scaling": None if scaling is None else scaling.record(),
        "dim": dim,
        "count": len(samples),
        **samples.to_json(),
    }
    folder.write_json(folder.FEATURES_INDEX, index)
    return index


def load_features(folder):
    """Reads a folder written by ``extract_features``.

    Args:
        folder: the features folder.

    Returns:
        ``(features, samples, index)``: the ``(n, dim)`` float32 array
        (memory-mapped, read-only), the ``Samples`` they came from and the
        index dict.

    Example:
        >>> x, samples, index = load_features("features/fashion")
        >>> x.shape, len(samples)
        ((30, 1280), 30)
    """
    folder = RunDir(folder)
    path = folder.file(folder.FEATURES_INDEX)
    index = read_index(folder.path, folder.FEATURES_INDEX, INDEX_FORMAT, "extract_features")
    for key, kind in (("backbone", str), ("image_size", int), ("dim", int), ("paths", list),
                      ("labels", list), ("pooling", str)):
        if not isinstance(index.get(key), kind):
            raise ValueError(f"{path}: {key!r} is missing or not a {kind.__name__}")
    # Indexes written before the scaling was recorded have none: the family's own.
    if index.get("preprocessing") not in (None, *PREPROCESSING):
        raise ValueError(f"{path}: 'preprocessing' must be one of {', '.join(PREPROCESSING)}; "
                         f"got {index['preprocessing']!r}")
    # Memory-mapped: rows are read from disk as batches need them, never the whole file at once.
    features = np.load(folder.checked(folder.FEATURES, "features file"), mmap_mode="r",
                       allow_pickle=False)
    if features.shape != (len(index["paths"]), index["dim"]):
        raise ValueError(
            f"{folder.path}: {folder.FEATURES} has shape {features.shape} but the index lists "
            f"{len(index['paths'])} images of {index['dim']} features"
        )
    samples = Samples.from_json(index, path)
    return features, samples, index


def join_head(features_dir, head):
    """Puts a head trained on cached features back onto its backbone.

    Args:
        features_dir: the folder the head's features came from.
        head: a ``keras.Model`` taking ``(batch, dim)`` features.

    Returns:
        One ``keras.Model`` from raw 0-255 images to the head's outputs.

    Example:
        >>> head = keras.Sequential([keras.Input((1280,)), keras.layers.Dense(6, activation="sigmoid")])
        >>> model = join_head("features/fashion", head)
        >>> model.input_shape, model.output_shape
        ((None, 32, 32, 3), (None, 6))
    """
    _, _, index = load_features(features_dir)
    size = index["image_size"]
    # Indexes written before the scaling was recorded used the family's own (None).
    extractor = feature_extractor(index["backbone"], (size, size, 3), None, index["pooling"],
                                  index.get("preprocessing"))
    folder = RunDir(features_dir)
    load_weights_file(extractor.get_layer("backbone"),
                      folder.checked(folder.BACKBONE, "backbone weights"), "backbone")
    if head.input_shape[-1] != index["dim"]:
        raise ValueError(f"the head takes {head.input_shape[-1]} features, the backbone gives "
                         f"{index['dim']}")
    outputs = head(extractor.output)
    return keras.Model(extractor.input, outputs, name=f"{index['backbone']}_{head.name}")


def train_on_features(features_dir, out_dir, *, overwrite=False, verbose=1, config=None,
                      callbacks=None, **settings):
    """Trains the ``mlp`` head on cached features and writes a full run directory.

    The head trains on the feature rows (seconds per epoch where the images
    would take minutes); the best epoch by exact validation mAP is kept,
    then joined onto the backbone, so the run's ``model.keras`` predicts
    from images like any other run. ``head.keras`` keeps the head alone for
    more feature work.

    Settings (checked by ``TrainConfig("features", ...)``): ``val_split``
    (0.2), ``hidden`` ((500, 100)), ``dropout`` (0.0), ``epochs`` (50),
    ``batch_size`` (32), ``learning_rate`` (1e-3), ``loss``,
    ``loss_kwargs``, ``patience``, ``threshold_policy``,
    ``threshold_kwargs``, ``seed``. Image settings (``on_bad_image``,
    ``weights``, ``augment`` …) are refused by name: the images were read
    when the features were extracted.

    Args:
        features_dir: a folder from ``extract_features``.
        out_dir: run directory to create.
        overwrite: allow a non-empty ``out_dir``.
        verbose: Keras verbosity.
        config: a ``TrainConfig("features", ...)`` to use instead of ``settings``.
        callbacks: your Keras callbacks, run after the library's own (as
            ``train``'s).
        **settings: the run's settings.

    Returns:
        A ``TrainResult`` whose model is the joined image model.

    Example:
        >>> result = train_on_features("features/fashion", "runs/from_features", epochs=3, verbose=0)
        >>> result.model.input_shape, RunDir.MODEL in os.listdir("runs/from_features")
        ((None, 32, 32, 3), True)
        >>> train_on_features("features/fashion", "runs/bad", on_bad_image="error")
        Traceback (most recent call last):
        ...
        multilabel_keras.training.config.ConfigError: on_bad_image is not used by the features trainer (the images were read when the features were extracted)
    """
    if config is None:
        config = TrainConfig("features", **settings)
    elif settings:
        raise ValueError("pass settings either as keywords or as config=, not both")
    callbacks = user_callbacks(callbacks)
    run = RunDir(out_dir)
    run.check_free(overwrite)
    features, samples, index = load_features(features_dir)
    if index.get("weights") is None:
        warn_random_features(index["backbone"])
    vocabulary = LabelVocabulary().fit(samples.labels)
    y = vocabulary.transform(samples.labels, samples.unknown).astype(np.float32)
    seed, batch_size, epochs = config.seed, int(config.batch_size), int(config.epochs)
    seed_everything(seed, config.deterministic)
    train_idx = np.arange(len(samples))
    val_idx = np.zeros(0, int)
    if config.val_split:
        train_idx, val_idx = iterative_split(y, (1 - config.val_split, config.val_split), seed)
        check_hold_out(len(train_idx), len(val_idx), config.val_split)
    head = build_model("mlp", vocabulary.num_labels, (index["dim"],), hidden=tuple(config.hidden),
                       dropout=config.dropout)
    steps = max(1, int(np.ceil(len(train_idx) / batch_size)))
    loss = compile_model(head, config.learning_rate, epochs, steps, config.loss,
                         loss_kwargs=config.loss_kwargs, train_targets=y[train_idx])
    train_ds = rows_dataset(features, y, train_idx, batch_size, shuffle_seed=seed)
    val_ds = rows_dataset(features, y, val_idx, 256) if len(val_idx) else None
    sample_ds = rows_dataset(features, y, train_idx[:512], 256)
    with run.claim(overwrite):
        trainer = Trainer(head, "val_mAP" if val_ds is not None else "mAP", run,
                          model_file=run.HEAD, patience=config.patience)
        trainer.fit_phases(head, [Phase(None, epochs, True)], lambda *_: train_ds, None, loss,
                           [ExactMAP(val_ds, sample_ds, loss), *callbacks], verbose)
        trainer.finish()
        validation = predict_batches(head, val_ds) if val_ds is not None else None
        model = join_head(features_dir, head)
        with atomic_path(run.file(run.MODEL)) as tmp:
            model.save(tmp)
        facts = {
            "model": f"{index['backbone']}+mlp",
            "model_kwargs": {"hidden": list(config.hidden), "dropout": config.dropout},
            "features": os.path.abspath(os.fspath(features_dir)),
            "weights": index["weights"],
            "image_size": index["image_size"],
            "batch_size": batch_size,
            "epochs": epochs,
            "learning_rate": float(config.learning_rate),
            "loss": loss,
            "augment": False,
            "val_split": float(config.val_split),
            "num_train": int(len(train_idx)),
            "num_val": int(len(val_idx)),
            "seed": int(seed),
            "deterministic": bool(config.deterministic),
            "settings": config.to_json(),
        }
        return finish_run(run, trainer, vocabulary, validation, facts,
                          config.threshold_policy or "f1", config.threshold_kwargs, model=model,
                          calibration=config.calibration)


def rows_dataset(features, targets, rows, batch_size, shuffle_seed=None):
    """Batches of ``(features[rows], targets[rows])`` read as the model asks for them.

    ``features`` may be a memory-mapped array: each batch reads its own
    rows (in file order), so memory holds a batch, not the data set, and
    nothing is copied into the ``tf.data`` graph.

    Args:
        features: ``(n, dim)`` array, memory-mapped or not.
        targets: ``(n, L)`` float32 targets (small: kept in memory).
        rows: the row indices to serve.
        batch_size: rows per batch.
        shuffle_seed: reshuffle the rows every pass with this seed
            (``None``: in the given order).

    Returns:
        A finite ``tf.data.Dataset`` of float32 ``(features, targets)``.

    Example:
        >>> x = np.arange(12, dtype="float32").reshape(6, 2)
        >>> y = np.eye(6, 3, dtype="float32")
        >>> [b[0].numpy().tolist() for b in rows_dataset(x, y, [4, 1], 8)]
        [[[8.0, 9.0], [2.0, 3.0]]]
    """
    rows = np.asarray(rows, np.int64)
    targets = np.asarray(targets, np.float32)
    dim, labels = int(features.shape[1]), int(targets.shape[1])

    def read(batch):
        order = np.argsort(batch, kind="stable")
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        picked = np.asarray(features[batch[order]], np.float32)[back]
        return picked, targets[batch]

    def load(batch):
        x, y = tf.numpy_function(read, [batch], (tf.float32, tf.float32), stateful=False)
        x.set_shape((None, dim))
        y.set_shape((None, labels))
        return x, y

    ds = tf.data.Dataset.from_tensor_slices(rows)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(rows), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(load).prefetch(2)
