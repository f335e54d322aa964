"""Presets: a run as a shareable folder in keras-hub's layout, loaded back by path or handle.

A preset holds what keras-hub's presets hold (``config.json``: the model as
``keras.saving.serialize_keras_object`` writes it; ``model.weights.h5``;
``metadata.json``) and what a multi-label model needs besides, in the run's
own record formats: ``labels.json`` (names in output order),
``thresholds.json`` (thresholds and decision rule), ``calibration.json``
(per-label temperatures) and ``multilabel.json`` (input size, test-time
augmentation, how the model was built). ``Predictor`` scores the same from a
run and from its preset.
"""

import datetime
import os
import shutil
import tempfile

import keras

from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.inference.predictor import Predictor
from multilabel_keras.io import check_new_path, folder_mode, read_json, write_json
from multilabel_keras.runs import RunDir

CONFIG, WEIGHTS, METADATA, TASK = "config.json", "model.weights.h5", "metadata.json", "multilabel.json"
_FORMAT = "multilabel_keras.preset"


def save_preset(run_dir, preset_dir):
    """Writes a run as a preset folder (written under a temporary name, then renamed).

    Args:
        run_dir: a run folder written by a trainer.
        preset_dir: the folder to create (an existing path is refused).

    Returns:
        ``preset_dir``.

    Example:
        >>> sorted(os.listdir(save_preset("runs/fashion", "presets/fashion")))  # doctest: +NORMALIZE_WHITESPACE
        ['calibration.json', 'config.json', 'labels.json', 'metadata.json', 'model.weights.h5',
         'multilabel.json', 'thresholds.json']
    """
    preset_dir = check_new_path(preset_dir, replaceable=False, instead="a new folder for the preset")
    run = RunDir(run_dir)
    predictor = Predictor.load(run.path)
    config = run.read_config()
    parent = os.path.dirname(os.path.abspath(preset_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(preset_dir)}.", suffix=".tmp",
                               dir=parent)
    try:
        model = predictor.model
        write_json(os.path.join(staging, CONFIG), keras.saving.serialize_keras_object(model))
        model.save_weights(os.path.join(staging, WEIGHTS))
        write_json(os.path.join(staging, METADATA), {
            "keras_version": keras.__version__,
            "multilabel_keras_version": _version(),
            "parameter_count": int(model.count_params()),
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        })
        classes = list(predictor.vocabulary.classes_)
        predictor.vocabulary.save(os.path.join(staging, RunDir.LABELS))
        preset = RunDir(staging)
        preset.write_thresholds(predictor.thresholds, classes, "the run's", predictor.rule)
        if predictor.temperatures is not None:
            errors = _calibration_errors(run)
            preset.write_calibration(predictor.temperatures, classes, errors)
        write_json(os.path.join(staging, TASK), {
            "format": _FORMAT, "version": 1, "labels": classes,
            "image_size": predictor.image_size, "tta": predictor.tta,
            "model": config.get("model"), "model_kwargs": config.get("model_kwargs"),
            "weights": config.get("weights"), "source_run": os.path.abspath(run.path),
        })
        os.chmod(staging, folder_mode())
        os.rename(staging, preset_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return preset_dir


def load_preset(handle, batch_size=32, tta=None):
    """A ``Predictor`` from a preset folder or a ``hf://`` / ``kaggle://`` handle.

    Args:
        handle: a local preset folder, or a handle resolved by
            ``RESOLVERS[scheme]`` (keras-hub's own preset download by
            default; it needs ``pip install keras-hub`` and the network).
        batch_size: images per forward pass.
        tta: ``"none"`` or ``"flip"``; default the preset's own.

    Returns:
        A ``Predictor`` scoring as the run did.

    Example:
        >>> predictor = load_preset(save_preset("runs/fashion", "presets/fashion"))
        >>> predictor.image_size, predictor.vocabulary.classes_[:2]
        (32, ['black', 'blue'])
    """
    folder = resolve(handle)
    what = f"preset {handle}"
    task = read_json(os.path.join(folder, TASK), f"{what}: {TASK}")
    if not isinstance(task, dict) or task.get("format") != _FORMAT:
        raise ValueError(f"{os.path.join(folder, TASK)} is not a multilabel_keras preset file")
    image_size = task.get("image_size")
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ValueError(f"{os.path.join(folder, TASK)}: 'image_size' must be a positive integer, "
                         f"got {image_size!r}")
    config = read_json(os.path.join(folder, CONFIG), f"{what}: {CONFIG}")
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
        model.load_weights(os.path.join(folder, WEIGHTS))
    except (FileNotFoundError, OSError) as err:
        raise ValueError(f"{what}: cannot read {WEIGHTS}: {err}") from None
    except Exception as err:  # noqa: BLE001  Keras raises many types for a hostile or broken file
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{what}: the model in {CONFIG} cannot be built: {text}") from None
    vocabulary = LabelVocabulary.load(os.path.join(folder, RunDir.LABELS))
    if task.get("labels") != vocabulary.classes_:
        raise ValueError(f"{what}: {TASK} and {RunDir.LABELS} list different labels")
    record = RunDir(folder)
    thresholds, rule = record.read_thresholds(vocabulary.classes_)
    temperatures = record.read_calibration(vocabulary.classes_)
    return Predictor(model, vocabulary, thresholds, image_size, batch_size, rule, temperatures,
                     task.get("tta", "none") if tta is None else tta)


def upload_preset(preset_dir, uri):
    """Uploads a preset folder with keras-hub's ``upload_preset`` (Hugging Face or Kaggle).

    Args:
        preset_dir: a folder written by ``save_preset``.
        uri: ``hf://user/name`` or ``kaggle://user/model/keras/variant``.

    Returns:
        None.
    """
    try:
        import keras_hub
    except ImportError:
        raise ValueError(f"uploading to {uri} needs keras-hub: pip install keras-hub") from None
    keras_hub.upload_preset(uri, os.fspath(preset_dir))


def _keras_hub_folder(handle):
    """Downloads a preset's files through keras-hub's own preset loading; returns their folder."""
    try:
        from keras_hub.src.utils.preset_utils import get_file
    except ImportError:
        raise ValueError(f"loading {handle} needs keras-hub (pip install keras-hub) and the "
                         f"network; a local preset folder needs neither") from None
    try:
        path = get_file(handle, CONFIG)
        for name in (WEIGHTS, METADATA, TASK, RunDir.LABELS, RunDir.THRESHOLDS):
            get_file(handle, name)
        try:
            get_file(handle, RunDir.CALIBRATION)
        except Exception:  # noqa: BLE001  an uncalibrated preset has none
            pass
    except Exception as err:  # noqa: BLE001  no network, no such preset, refused …
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot fetch {handle}: {text}") from None
    return os.path.dirname(path)


# How a handle's scheme becomes a local folder; tests point one at a local folder.
RESOLVERS = {"hf": _keras_hub_folder, "kaggle": _keras_hub_folder}


def resolve(handle):
    """The local folder of a preset handle (a folder is itself).

    Args:
        handle: a folder, or ``scheme://…`` with a scheme in ``RESOLVERS``.

    Returns:
        The folder path.

    Example:
        >>> resolve("no/such/preset")
        Traceback (most recent call last):
        ...
        FileNotFoundError: preset folder not found: no/such/preset
    """
    handle = os.fspath(handle)
    if "://" in handle:
        scheme = handle.split("://", 1)[0]
        if scheme not in RESOLVERS:
            raise ValueError(f"unknown preset handle {handle!r}: use a folder, hf://… or "
                             f"kaggle://…")
        return RESOLVERS[scheme](handle)
    if not os.path.isdir(handle):
        raise FileNotFoundError(f"preset folder not found: {handle}")
    return handle


def _calibration_errors(run):
    data = read_json(run.file(run.CALIBRATION), "calibration file")
    return {k: data.get(k) for k in ("ece_before", "ece_after") if k in data}


def _version():
    from multilabel_keras import __version__

    return __version__
