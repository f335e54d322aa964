"""Export a run for serving: SavedModel, TFLite or ONNX, with the labels and decisions beside it.

The exported model takes what ``Predictor`` feeds its model (RGB, float32,
0-255, already resized to the run's square size) and returns the scores
``Predictor`` gives: one probability per label, in label order, whatever
the head (a per-label 2-way softmax is reduced to its "present" channel),
under the run's test-time augmentation and calibration. ``export.json`` in
the same folder says everything else a deployer needs: label names,
thresholds, the decision rule, the input size and pixel range, and how
images were resized.
"""

import errno
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings

import keras

from multilabel_keras.inference.predictor import Predictor
from multilabel_keras.io import check_new_path, folder_mode, write_json
from multilabel_keras.models.layers import TemperatureScaling
from multilabel_keras.runs import RunDir

# The file beside an exported model that says what it predicts (an export folder, not a run folder).
EXPORT_INFO = "export.json"

# format -> (Keras' export format, file inside the export folder, packages it needs)
FORMATS = {
    "savedmodel": ("tf_saved_model", None, ("tensorflow",)),
    "tflite": ("litert", "model.tflite", ("tensorflow",)),
    "onnx": ("onnx", "model.onnx", ("tf2onnx", "onnx")),
}
INSTALL_HINT = {"onnx": 'pip install -e ".[export]" (tf2onnx and onnx; onnxruntime to run it)'}


def probability_model(model):
    """The model with per-label probabilities as its only output.

    Args:
        model: a run's single-input model (sigmoid ``[n, L]`` or per-label
            2-way softmax ``[n, L, 2]`` output).

    Returns:
        A ``keras.Model`` with output ``[n, L]``.

    Example:
        >>> inputs = keras.Input((4, 4, 3))
        >>> pooled = keras.layers.GlobalAveragePooling2D()(inputs)
        >>> two_way = keras.layers.Reshape((2, 2))(keras.layers.Dense(4)(pooled))
        >>> probability_model(keras.Model(inputs, two_way)).output_shape
        (None, 2)
    """
    if len(model.output_shape) == 3:
        return keras.Model(model.input, model.output[..., 1], name=f"{model.name}_probabilities")
    return model


def serving_model(predictor):
    """The run's model as ``Predictor`` scores: probabilities, its test-time augmentation, calibrated.

    Args:
        predictor: the run's ``Predictor``.

    Returns:
        A ``keras.Model`` from 0-255 RGB images to ``[n, L]`` scores equal
        to ``predictor.predict_scores`` on the same pixels.

    Example:
        >>> predictor = Predictor.load("runs/fashion")
        >>> serving_model(predictor).output_shape
        (None, 6)
    """
    model = probability_model(predictor.model)
    if predictor.tta == "none" and predictor.temperatures is None:
        return model
    images = keras.Input(tuple(model.input_shape[1:]), name="image")
    scores = model(images)
    if predictor.tta == "flip":
        scores = (scores + model(keras.ops.flip(images, axis=2))) / 2.0
    if predictor.temperatures is not None:
        scores = TemperatureScaling(predictor.temperatures, name="calibration")(scores)
    return keras.Model(images, scores, name=f"{model.name}_serving")


def export_metadata(predictor, export_format, artifact):
    """What a deployer needs beside the exported model, as a JSON-ready dict.

    Args:
        predictor: the run's ``Predictor``.
        export_format: a key of ``FORMATS``.
        artifact: the model file inside the export folder (``None``: the
            folder itself, a SavedModel).

    Returns:
        A dict: labels, thresholds, decision rule, input and output.

    Example:
        >>> meta = export_metadata(Predictor.load("runs/fashion"), "onnx",
        ...                        "model.onnx")
        >>> meta["labels"]
        ['black', 'blue', 'dress', 'jeans', 'red', 'shirt']
    """
    from multilabel_keras import __version__

    names = list(predictor.vocabulary.classes_)
    size = predictor.image_size
    return {
        "format": export_format,
        "artifact": artifact or ".",
        "labels": names,
        "thresholds": {name: float(t) for name, t in zip(names, predictor.thresholds)},
        "rule": predictor.rule or {"policy": "f1"},
        "decision": "a label is predicted when its probability >= its threshold; "
                    "rule 'top_k' takes the k highest instead, 'at_least_one' adds the "
                    "highest label to an image with none",
        "input": {
            "shape": [None, size, size, 3], "dtype": "float32", "channels": "RGB",
            "pixel_range": [0, 255],
            "resize": f"to {size}x{size}, bilinear with antialiasing, aspect ratio not kept, "
                      "then rounded to whole values",
        },
        "output": {"shape": [None, len(names)], "meaning": "probability of each label, in "
                                                            "the order of 'labels'"},
        "tta": predictor.tta,
        "calibration": None if predictor.temperatures is None else {
            "method": "temperature", "included": "in the exported model's output",
            "temperatures": {name: float(t) for name, t in zip(names, predictor.temperatures)}},
        "multilabel_keras_version": __version__,
    }


def export_run(run_dir, out, export_format="savedmodel"):
    """Exports a run's model for serving, with ``export.json`` beside it.

    The folder is written under a temporary name and renamed into place,
    so ``out`` never holds half an export; an existing ``out`` is refused.

    Args:
        run_dir: a run directory written by ``train``.
        out: the folder to create.
        export_format: ``"savedmodel"``, ``"tflite"`` or ``"onnx"``.

    Returns:
        The path of the exported model (the folder for a SavedModel).

    Example:
        >>> export_run("runs/fashion", "exported/fashion_onnx", "onnx")
        'exported/fashion_onnx/model.onnx'
    """
    if export_format not in FORMATS:
        raise ValueError(f"unknown export format {export_format!r}: choose one of "
                         f"{', '.join(FORMATS)}")
    keras_format, artifact, needs = FORMATS[export_format]
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        hint = INSTALL_HINT.get(export_format, f"pip install {' '.join(missing)}")
        raise ValueError(f"export --format {export_format} needs {', '.join(missing)}: {hint}")
    out = check_new_path(out, replaceable=False, instead="export a new --out")
    if keras.backend.backend() != "tensorflow":
        # The converters behind all three formats are TensorFlow's; a .keras model loads on
        # any backend, so a child process on TensorFlow exports it.
        return _export_on_tensorflow(run_dir, out, export_format)
    predictor = Predictor.load(run_dir)
    model = serving_model(predictor)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    _remove_stale_staging(parent, os.path.basename(out))
    # The pid in the name lets a later export tell a killed export's leftovers from a live one.
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.{os.getpid()}.", suffix=".tmp",
                               dir=parent)
    try:
        target = staging if artifact is None else os.path.join(staging, artifact)
        size = predictor.image_size
        signature = [keras.InputSpec(shape=(None, size, size, 3), dtype="float32")]
        with warnings.catch_warnings():
            # Keras' tf2onnx patch probes np.object, which NumPy 2 warns about: not the user's concern.
            warnings.filterwarnings("ignore", message=".*np.object", category=FutureWarning)
            model.export(target, format=keras_format, verbose=False, input_signature=signature)
        metadata = export_metadata(predictor, export_format, artifact)
        if export_format == "onnx":
            _embed_onnx_metadata(target, metadata)
        write_json(os.path.join(staging, EXPORT_INFO), metadata)
        os.chmod(staging, folder_mode())
        if os.path.lexists(out):  # written meanwhile (an empty folder would be replaced)
            raise FileExistsError(f"{out} was created by someone else while this export ran; "
                                  f"nothing of it was changed: give export a new --out")
        try:
            os.rename(staging, out)
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                raise
            raise FileExistsError(f"{out} was created by someone else while this export ran; "
                                  f"nothing of it was changed: give export a new --out") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out if artifact is None else os.path.join(out, artifact)


def _remove_stale_staging(parent, name):
    """Removes the staging folders of exports to ``name`` whose process is gone (killed)."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(\d+)\.[A-Za-z0-9_]+\.tmp$")
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but is not ours to signal
        return True
    return True


def _export_on_tensorflow(run_dir, out, export_format):
    run = RunDir(run_dir)
    if not run.has(run.MODEL):
        raise FileNotFoundError(f"no {run.MODEL} in run directory {run.path}")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "multilabel_keras.inference.export",
                           os.fspath(run_dir), out, export_format],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("export: ")]
        raise ValueError(lines[-1][len("export: "):] if lines else
                         f"export on the TensorFlow backend failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip().splitlines()[-1]


def _embed_onnx_metadata(path, metadata):
    # ONNX files travel alone more often than folders: the labels and
    # thresholds ride inside as metadata_props too.
    import json

    import onnx

    proto = onnx.load(path)
    onnx.helper.set_model_props(proto, {"multilabel_keras": json.dumps(metadata)})
    onnx.save(proto, path)


if __name__ == "__main__":
    try:
        print(export_run(*sys.argv[1:4]))
    except Exception as err:  # noqa: BLE001  the parent process shows this one line
        print(f"export: {err}", file=sys.stderr)
        sys.exit(2)
