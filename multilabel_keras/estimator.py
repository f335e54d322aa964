"""``MultiLabelImageClassifier``: the library's training and Predictor as a scikit-learn estimator.

Keras' own scikit-learn wrapper refuses multi-label targets; this one takes
them as label sets or a multi-hot matrix, trains with ``train`` (run
directory, best epoch, thresholds tuned on a validation split) and predicts
with ``Predictor``, so it fits in ``Pipeline``, ``clone`` and
``cross_val_score``.
"""

import os
import shutil
import tempfile

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from multilabel_keras.data.arrays import as_images, as_label_sets, resized


class MultiLabelImageClassifier(ClassifierMixin, BaseEstimator):
    """A multi-label image classifier with scikit-learn's interface.

    ``__init__`` only stores its arguments (scikit-learn's rule); ``fit``
    writes a run directory (``run_dir``, or a temporary folder removed with
    the estimator) and loads its ``Predictor``.

    Args:
        model: a registered model name (``list_models()``).
        image_size: side in pixels images are resized to.
        epochs: training epochs (fine-tuning epochs with ``weights``).
        batch_size: images per batch (``None``: the recipe's).
        learning_rate: Adam's (peak) rate (``None``: the recipe's).
        loss: ``None`` (binary cross-entropy) or a ``train`` loss name.
        weights: ``None``, ``"imagenet"`` or a weights file (transfer
            models then train with LP-FT).
        threshold_policy: how ``predict`` turns scores into labels (see
            ``choose_decision``), tuned on the validation split.
        head: a transfer model's head: ``"dense"``, ``"softmax2"``,
            ``"csra"`` or ``"ml_decoder"`` (``None``: the model's own).
        preprocessing: how ``weights`` want their pixels (``"tf"``,
            ``"torch"``, ``"caffe"``, ``"none"``, ``"auto"``; ``None``: as
            ``train``, a probe's choice for a weights file).
        calibration: ``"temperature"`` (per-label, fitted on the
            validation split) or ``"none"``.
        tta: ``"none"`` or ``"flip"`` (test-time augmentation).
        val_split: share of the training data held out to pick the best
            epoch and tune thresholds.
        seed: seed of the split, order and augmentation.
        run_dir: folder to write the run to (``None``: a temporary one).
        verbose: Keras verbosity while fitting.

    Attributes:
        classes_: label names (label sets), or ``0 … L-1`` (a multi-hot ``y``).
        predictor_: the fitted run's ``Predictor``.
        run_dir_: where the run was written.

    Example:
        >>> from sklearn.base import clone
        >>> clf = MultiLabelImageClassifier(epochs=2, image_size=32)
        >>> clone(clf).get_params()["epochs"]
        2
    """

    def __init__(self, model="smallervggnet", image_size=64, epochs=15, batch_size=None,
                 learning_rate=None, loss=None, weights=None, threshold_policy="f1", val_split=0.2,
                 seed=0, run_dir=None, verbose=0, head=None, preprocessing=None,
                 calibration="temperature", tta="none"):
        self.model = model
        self.image_size = image_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.loss = loss
        self.weights = weights
        self.threshold_policy = threshold_policy
        self.val_split = val_split
        self.seed = seed
        self.run_dir = run_dir
        self.verbose = verbose
        self.head = head
        self.preprocessing = preprocessing
        self.calibration = calibration
        self.tta = tta

    def fit(self, X, y):
        """Trains on images and their labels.

        Args:
            X: image file paths, or an array ``(n, H, W, 3)`` (or ``(n, H,
                W)`` grey) of finite 0-255 pixels (``data.arrays.as_images``).
            y: one set (or list) of label names per image, or an ``(n, L)``
                0/1 matrix, NumPy or SciPy sparse (``data.arrays.as_label_sets``).

        Returns:
            ``self``.
        """
        from multilabel_keras.data.sources import Samples
        from multilabel_keras.data.vocabulary import LabelVocabulary
        from multilabel_keras.inference.predictor import Predictor
        from multilabel_keras.training.image import train

        X = as_images(X, "X")
        label_sets, classes = as_label_sets(y, "y")
        if len(label_sets) != len(X):
            raise ValueError(f"X has {len(X)} images but y has {len(label_sets)} rows")
        self._drop_own_folder()
        # Our own folder holds the run unless run_dir is given, and arrays written as files.
        self._own_folder = tempfile.mkdtemp(prefix="multilabel_keras_")
        self.run_dir_ = (os.path.join(self._own_folder, "run") if self.run_dir is None
                         else os.fspath(self.run_dir))
        paths = _as_paths(X, os.path.join(self._own_folder, "images"))
        vocabulary = LabelVocabulary(classes=[str(c) for c in classes] if classes is not None else None)
        vocabulary.fit(label_sets)
        model_kwargs = {key: value for key, value in (("head", self.head),
                                                      ("preprocessing", self.preprocessing))
                        if value is not None}
        train(Samples(paths, label_sets), self.run_dir_, self.model, val_split=self.val_split,
              vocabulary=vocabulary, image_size=self.image_size, batch_size=self.batch_size,
              epochs=self.epochs, learning_rate=self.learning_rate, loss=self.loss,
              weights=self.weights, threshold_policy=self.threshold_policy, seed=self.seed,
              verbose=self.verbose, overwrite=self.run_dir is not None,
              model_kwargs=model_kwargs or None, calibration=self.calibration, tta=self.tta)
        self.predictor_ = Predictor.load(self.run_dir_)
        names = self.predictor_.vocabulary.classes_
        self.classes_ = np.asarray(names, dtype=object) if classes is None else np.asarray(classes)
        self._order = (None if classes is None
                       else np.asarray([names.index(str(c)) for c in classes]))
        self.n_labels_ = len(names)
        return self

    def predict_proba(self, X):
        """Per-label probabilities, ``(n, L)``, columns in the order of ``classes_``.

        Args:
            X: image file paths or an array, as for ``fit``.

        Returns:
            ``np.ndarray`` of floats in [0, 1].
        """
        scores = self._check_fitted().predict_scores(self._inputs(X))
        return scores if self._order is None else scores[:, self._order]

    def predict(self, X):
        """Multi-hot predictions under the tuned thresholds and decision rule.

        Args:
            X: image file paths or an array, as for ``fit``.

        Returns:
            ``(n, L)`` 0/1 ``int`` array, columns in the order of ``classes_``.
        """
        from multilabel_keras.decisions import decide

        predictor = self._check_fitted()
        on = decide(predictor.predict_scores(self._inputs(X)), predictor.thresholds, predictor.rule)
        return on if self._order is None else on[:, self._order]

    def _check_fitted(self):
        from sklearn.exceptions import NotFittedError

        if not hasattr(self, "predictor_"):
            raise NotFittedError("MultiLabelImageClassifier is not fitted yet: call fit(X, y) first")
        return self.predictor_

    def _inputs(self, X):
        X = as_images(X, "X")
        return resized(X, self.predictor_.image_size) if isinstance(X, np.ndarray) else X

    def _drop_own_folder(self):
        folder = getattr(self, "_own_folder", None)
        self._own_folder = None
        if folder:
            shutil.rmtree(folder, ignore_errors=True)

    def __del__(self):
        try:
            self._drop_own_folder()
        except Exception:  # noqa: BLE001  interpreter shutdown: nothing left to clean with
            pass

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.input_tags.two_d_array = False
        tags.non_deterministic = True
        return tags


def _as_paths(X, folder):
    """File paths for ``train``: arrays (checked by ``as_images``) are written once as PNG files."""
    if not isinstance(X, np.ndarray):
        return X
    import cv2

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, image in enumerate(np.clip(np.round(X), 0, 255).astype(np.uint8)):
        path = os.path.join(folder, f"{i:06d}.png")
        if not cv2.imwrite(path, image[..., ::-1]):
            raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths
