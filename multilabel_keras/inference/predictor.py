"""Prediction from a saved run: model + labels + thresholds + preprocessing."""

import os

import keras
import numpy as np
import tensorflow as tf

from multilabel_keras.data.arrays import as_images, resized
from multilabel_keras.data.images import checked_orientation, decode_image, load_images
from multilabel_keras.decisions import apply_temperatures, decide
from multilabel_keras.models.outputs import TTA, num_model_labels, tta_probabilities
from multilabel_keras.models.twin import is_twin, single_branch
from multilabel_keras.runs import RunDir


class Predictor:
    """Predicts label sets for images with everything a run directory saved.

    Preprocessing is the pipeline's own ``decode_image`` (decode, RGB,
    resize), so predictions see exactly what training saw. Files are read
    and checked in Python; decoding, resizing and the model run as one
    compiled TensorFlow function (under JAX or PyTorch the decoding is
    compiled and the model runs with ``predict_on_batch``), so one image
    costs little more than the model's own forward pass.

    Args:
        model: a Keras model with one sigmoid output per label (or a
            per-label 2-way softmax, ``[batch, labels, 2]``).
        vocabulary: the fitted ``LabelVocabulary``.
        thresholds: one threshold per label (or a float).
        image_size: side of the square model input.
        batch_size: images per forward pass.
        rule: decision rule (``{"policy": "top_k", "k": 2}`` …; default:
            per-label thresholds), see ``choose_decision``.
        temperatures: per-label calibration temperatures (``None``: the
            model's scores as they are), see ``decisions.fit_temperatures``.
        tta: ``"none"`` or ``"flip"``: average each image's scores with its
            mirror image's (before calibration).

    Example:
        >>> predictor = Predictor.load("runs/fashion")
        >>> result = predictor.predict(["dress.jpg"])[0]
        >>> sorted(result), sorted(result["scores"]) == list(predictor.vocabulary.classes_)
        (['labels', 'path', 'scores'], True)
    """

    def __init__(self, model, vocabulary, thresholds=0.5, image_size=96, batch_size=32, rule=None,
                 temperatures=None, tta="none"):
        # A twin model predicts from one image through one branch and its category head.
        self.twin = model if is_twin(model) else None
        if self.twin is not None:
            model = single_branch(model)
        outputs = num_model_labels(model)
        if outputs != vocabulary.num_labels:
            raise ValueError(
                f"the model has {outputs} outputs but the vocabulary has "
                f"{vocabulary.num_labels} labels"
            )
        self.model = model
        self.vocabulary = vocabulary
        self.thresholds = np.broadcast_to(
            np.asarray(thresholds, dtype=np.float64), (vocabulary.num_labels,)
        ).copy()
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.rule = rule
        if tta not in TTA:
            raise ValueError(f"tta must be one of {', '.join(TTA)}; got {tta!r}")
        self.tta = tta
        self.temperatures = None
        if temperatures is not None:
            self.temperatures = np.broadcast_to(
                np.asarray(temperatures, dtype=np.float64), (vocabulary.num_labels,)).copy()
            if not (np.isfinite(self.temperatures).all() and (self.temperatures > 0).all()):
                raise ValueError("temperatures must be finite numbers > 0")
        self._compiled = None

    @classmethod
    def load(cls, run_dir, batch_size=32, tta=None):
        """Loads a run directory written by ``train``.

        The model loads with ``safe_mode=True``; the label file, thresholds,
        calibration and config are checked against the model and each other.

        Args:
            run_dir: folder with ``model.keras``, ``labels.json``,
                ``config.json`` and (optionally) ``thresholds.json`` and
                ``calibration.json``.
            batch_size: images per forward pass.
            tta: ``"none"`` or ``"flip"``; default the run's own (the
                thresholds were tuned under it).

        Returns:
            A ``Predictor``.
        """
        run = RunDir(run_dir)
        run_dir = run.path
        if not run.has(run.MODEL):
            raise FileNotFoundError(f"no {run.MODEL} in run directory {run_dir}")
        model_path = run.checked(run.MODEL, "run model")
        vocabulary = run.read_labels()
        config = run.read_config()
        image_size = config.get("image_size")
        if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
            raise ValueError(f"{run.file(run.CONFIG)}: 'image_size' must be a positive integer, "
                             f"got {image_size!r}")
        model = load_run_model(model_path)
        branch = single_branch(model) if is_twin(model) else model
        outputs = num_model_labels(branch)
        if outputs != vocabulary.num_labels:
            raise ValueError(
                f"run {run_dir} is inconsistent: {run.MODEL} has {outputs} outputs but "
                f"{run.LABELS} lists {vocabulary.num_labels} labels"
            )
        shape = branch.input_shape
        if shape[1] is not None and shape[1:3] != (image_size, image_size):
            raise ValueError(
                f"run {run_dir} is inconsistent: {run.CONFIG} says image_size {image_size} but "
                f"{run.MODEL} takes {shape[1]}x{shape[2]} images"
            )
        thresholds, rule = run.read_thresholds(vocabulary.classes_)
        temperatures = run.read_calibration(vocabulary.classes_)
        if tta is None:
            tta = config.get("tta", "none")
            if tta not in TTA:
                raise ValueError(f"{run.file(run.CONFIG)}: 'tta' must be one of {', '.join(TTA)}, "
                                 f"got {tta!r}")
        return cls(model, vocabulary, thresholds, image_size, batch_size, rule, temperatures, tta)

    def predict_scores(self, images):
        """Returns the ``(n, num_labels)`` probabilities for images.

        Args:
            images: one image path or a list of them, or pixels (0-255): one
                image ``(H, W[, 3])`` or a batch ``(n, H, W[, 3])``, resized
                to the model's side as training's decoding does (see
                ``data.arrays.as_images``).

        Returns:
            ``np.ndarray`` of probabilities.

        Example:
            >>> Predictor.load("runs/fashion").predict_scores("photo.jpg").shape
            (1, 6)
        """
        images = as_images(images)
        if isinstance(images, np.ndarray) and images.shape[1:3] != (self.image_size,) * 2:
            images = resized(images, self.image_size)
        scores = []
        # One batch of decoded images in memory at a time, however many paths.
        for i in range(0, len(images), self.batch_size):
            chunk = images[i : i + self.batch_size]
            if isinstance(chunk, list):
                scores.append(self._from_files(chunk))
            else:
                scores.append(tta_probabilities(self.model.predict_on_batch,
                                                chunk.astype(np.float32), self.tta))
        if not scores:
            return np.zeros((0, self.vocabulary.num_labels))
        return self.calibrated(np.concatenate(scores))

    def calibrated(self, scores):
        """The run's calibration applied to model probabilities ``(n, L)`` (as they are without one).

        Example:
            >>> predictor = Predictor.load("runs/fashion")
            >>> predictor.calibrated(np.full((1, 6), 0.5)).round(3).tolist()
            [[0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]
        """
        return apply_temperatures(scores, self.temperatures)

    def _from_files(self, paths):
        """Model outputs for image files: read here, decoded and predicted in one graph."""
        data, turns = [], []
        for path in paths:
            path = os.fspath(path)
            turns.append(checked_orientation(path))
            try:
                with open(path, "rb") as f:
                    data.append(f.read())
            except OSError as err:
                raise ValueError(f"cannot read image {path}: {err.strerror or err}") from None
        if self._compiled is None:
            self._compiled = compiled_forward(self.model, self.image_size, self.tta)
        try:
            return self._compiled(data, turns)
        except tf.errors.OpError:  # a file that passed the probe but does not decode
            # Decoding one at a time names the file at fault.
            load_images(paths, self.image_size)
            raise

    def similarity(self, image1, image2):
        """Probability that two images show the same class (twin runs only).

        Args:
            image1: an image file path.
            image2: an image file path.

        Returns:
            The ``same`` head's probability, a float in [0, 1].

        Example:
            >>> Predictor.load("runs/dogs").similarity("a.jpg", "b.jpg")  # doctest: +SKIP
            0.93
        """
        if self.twin is None:
            raise ValueError("similarity() needs a run of a twin model (xception_twin)")
        pair = load_images([image1, image2], self.image_size)
        outputs = self.twin.predict_on_batch({"image_a": pair[:1], "image_b": pair[1:]})
        same = outputs["same"] if isinstance(outputs, dict) else outputs[2]
        return float(np.asarray(same).ravel()[0])

    def predict(self, images):
        """Predicts labels for images.

        Args:
            images: one path, a list of paths, one image or a batch of
                images (0-255 pixels), as for ``predict_scores``.

        Returns:
            One dict per image: ``path`` (paths only), ``labels`` (names the
            decision rule picks, highest score first) and
            ``scores`` (every label's probability).

        Example:
            >>> [result["path"] for result in Predictor.load("runs/fashion").predict("photo.jpg")]
            ['photo.jpg']
        """
        images = as_images(images)
        paths = None if isinstance(images, np.ndarray) else images
        scores = self.predict_scores(images)
        on = decide(scores, self.thresholds, self.rule)
        names = self.vocabulary.classes_
        results = []
        for i, row in enumerate(scores):
            chosen = sorted(np.flatnonzero(on[i]), key=lambda j: -row[j])
            result = {
                "labels": [names[j] for j in chosen],
                "scores": {name: round(float(s), 6) for name, s in zip(names, row)},
            }
            if paths is not None:
                result = {"path": paths[i], **result}
            results.append(result)
        return results


def compiled_forward(model, image_size, tta="none"):
    """One function from encoded image bytes to per-label probabilities.

    Under TensorFlow, decoding, resizing and the model's forward pass are
    one ``tf.function`` traced once for any batch size; under JAX and
    PyTorch the decoding is compiled and the model runs with
    ``predict_on_batch``.

    Args:
        model: the Keras model (0-255 RGB float inputs).
        image_size: side of the square model input.
        tta: ``"none"`` or ``"flip"`` (see ``tta_probabilities``).

    Returns:
        ``forward(data, orientations)``: lists of encoded bytes and EXIF
        orientations in, ``(n, L)`` NumPy probabilities out.

    Example:
        >>> inputs = keras.Input((4, 4, 3))
        >>> model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
        >>> png = tf.io.encode_png(tf.fill((8, 8, 3), tf.constant(200, tf.uint8))).numpy()
        >>> compiled_forward(model, 4)([png], [1]).round(1).tolist()
        [[200.0, 200.0, 200.0]]
    """
    size = int(image_size)

    def decode(data, turns):
        def many():
            return tf.map_fn(lambda item: decode_image(item[0], size, item[1]), (data, turns),
                             fn_output_signature=tf.TensorSpec((size, size, 3), tf.uint8))

        # One image (the latency case) skips map_fn's loop.
        return tf.cond(tf.equal(tf.size(data), 1),
                       lambda: decode_image(data[0], size, turns[0])[tf.newaxis], many)

    signature = [tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.int32)]
    if keras.backend.backend() == "tensorflow":
        def probabilities(images):
            outputs = model(images, training=False)
            return outputs[..., 1] if len(outputs.shape) == 3 else outputs

        @tf.function(input_signature=signature)
        def graph(data, turns):
            images = tf.cast(decode(data, turns), tf.float32)
            if tta == "flip":
                return (probabilities(images) + probabilities(tf.reverse(images, axis=[2]))) / 2.0
            return probabilities(images)
    else:
        decode_graph = tf.function(decode, input_signature=signature)

        def graph(data, turns):
            images = decode_graph(data, turns).numpy().astype(np.float32)
            return tta_probabilities(model.predict_on_batch, images, tta)

    def forward(data, turns):
        return np.asarray(graph(tf.constant(data, tf.string), tf.constant(turns, tf.int32)),
                          dtype=np.float64)

    return forward


def load_run_model(path):
    """Loads a ``.keras`` file in safe mode; a refused or damaged file is one ``ValueError`` naming it.

    Args:
        path: the ``model.keras`` file.

    Returns:
        The ``keras.Model`` (not compiled).

    Example:
        >>> model = load_run_model("runs/fashion/model.keras")
        >>> model.output_shape
        (None, 6)
    """
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except OSError as err:
        if err.errno is not None:
            raise
        raise ValueError(f"{path} is not a readable .keras model: {err}") from None
    except Exception as err:  # noqa: BLE001  Keras raises many types for a hostile or broken file
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "safe_mode" in text or "arbitrary code" in text:
            text = "it holds Python code (a Lambda layer or a custom object), which safe mode does not run"
        raise ValueError(f"{path} cannot be loaded: {text}") from None
