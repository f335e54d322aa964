"""The label vocabulary: label names <-> multi-hot vectors, saved as JSON."""

import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.preprocessing import MultiLabelBinarizer

from multilabel_keras.data.label_names import label_name
from multilabel_keras.io import read_json, write_json

_FORMAT = "multilabel_keras.labels"


class LabelVocabulary(BaseEstimator):
    """Maps sets of label names to multi-hot vectors and back.

    A scikit-learn estimator (``get_params``, ``clone``) around
    ``MultiLabelBinarizer`` whose state is a sorted list of class names,
    stored as JSON (never pickle), so a saved vocabulary reads back under
    any scikit-learn version.

    Args:
        classes: optional fixed list of label names. When given, ``fit``
            keeps it (sorted) instead of learning names from the data.

    Example:
        >>> vocab = LabelVocabulary().fit([{"red", "dress"}, {"blue", "jeans"}])
        >>> vocab.classes_
        ['blue', 'dress', 'jeans', 'red']
        >>> vocab.transform([{"red", "jeans"}]).tolist()
        [[0, 0, 1, 1]]
    """

    def __init__(self, classes=None):
        self.classes = classes

    def fit(self, label_sets):
        """Learns the sorted label names.

        Args:
            label_sets: iterable of iterables of label names (strings).

        Returns:
            self.
        """
        label_sets = [_as_label_set(labels, i) for i, labels in enumerate(label_sets)]
        if self.classes is not None:
            names = sorted({_check_name(c, "classes") for c in self.classes})
        else:
            names = sorted(set().union(*label_sets)) if label_sets else []
        if not names:
            raise ValueError("cannot fit a LabelVocabulary: no labels were given")
        self._set_classes(names)
        return self

    def _set_classes(self, names):
        self.classes_ = list(names)
        self.binarizer_ = MultiLabelBinarizer(classes=self.classes_)
        self.binarizer_.fit([self.classes_])

    @property
    def num_labels(self):
        """Number of labels in the fitted vocabulary."""
        self._check_fitted()
        return len(self.classes_)

    def transform(self, label_sets, unknown=None):
        """Encodes label sets as a multi-hot ``(n, num_labels)`` int array.

        Labels not in the vocabulary are dropped with one warning that names
        them.

        Args:
            label_sets: iterable of iterables of label names.
            unknown: optional, per image, the labels whose value is not
                known (partial labels); they are encoded as ``-1``.

        Returns:
            ``np.ndarray`` of 0/1 (and -1 for unknown), dtype int64.
        """
        if unknown is not None and any(unknown):
            y = self.transform(label_sets)
            index = {name: j for j, name in enumerate(self.classes_)}
            for i, names in enumerate(unknown):
                for name in names:
                    if name in index:
                        y[i, index[name]] = -1
            return y
        self._check_fitted()
        label_sets = [_as_label_set(labels, i) for i, labels in enumerate(label_sets)]
        known = set(self.classes_)
        unknown = sorted(set().union(*label_sets) - known) if label_sets else []
        if unknown:
            warnings.warn(
                f"unknown label(s) {unknown} are not in the vocabulary and are ignored",
                UserWarning,
                stacklevel=2,
            )
            label_sets = [labels & known for labels in label_sets]
        if not label_sets:
            return np.zeros((0, len(self.classes_)), dtype=np.int64)
        return self.binarizer_.transform(label_sets).astype(np.int64)

    def fit_transform(self, label_sets):
        """``fit`` then ``transform``.

        Args:
            label_sets: iterable of iterables of label names.

        Returns:
            The multi-hot array.
        """
        label_sets = list(label_sets)
        return self.fit(label_sets).transform(label_sets)

    def inverse_transform(self, multi_hot):
        """Decodes a multi-hot (or boolean) array back to sorted label lists.

        Like scikit-learn's ``MultiLabelBinarizer``, anything but 0 and 1 is
        refused rather than guessed: a ``-1`` (unknown) must never decode as
        "present", and scores need a decision rule first (``decide``).

        Args:
            multi_hot: array of shape ``(n, num_labels)`` holding only 0/1.

        Returns:
            A list of ``n`` lists of label names.

        Example:
            >>> vocab = LabelVocabulary().fit([{"red", "dress"}])
            >>> vocab.inverse_transform([[0, 1]])
            [['red']]
            >>> vocab.inverse_transform([[1, -1]])
            Traceback (most recent call last):
            ...
            ValueError: expected only 0s and 1s, got -1 (for 'red'); decide unknown (-1) entries and scores first
        """
        self._check_fitted()
        multi_hot = np.asarray(multi_hot)
        if multi_hot.ndim != 2 or multi_hot.shape[1] != len(self.classes_):
            raise ValueError(
                f"expected an array of shape (n, {len(self.classes_)}), got {multi_hot.shape}"
            )
        bad = np.argwhere((multi_hot != 0) & (multi_hot != 1))
        if len(bad):
            i, j = bad[0]
            raise ValueError(f"expected only 0s and 1s, got {multi_hot[i, j]:g} (for "
                             f"{self.classes_[j]!r}); decide unknown (-1) entries and scores first")
        return [[self.classes_[j] for j in np.flatnonzero(row)] for row in multi_hot]

    def save(self, path):
        """Writes the vocabulary as JSON (atomically).

        Args:
            path: destination, conventionally ``labels.json``.

        Returns:
            None.
        """
        self._check_fitted()
        write_json(path, {"format": _FORMAT, "version": 1, "classes": self.classes_})

    @classmethod
    def load(cls, path):
        """Reads a vocabulary saved by ``save``, validating its shape.

        Args:
            path: a ``labels.json`` file.

        Returns:
            A fitted ``LabelVocabulary``.
        """
        data = read_json(path, "labels file")
        classes = data.get("classes") if isinstance(data, dict) else None
        if (
            not isinstance(classes, list)
            or not classes
            or not all(isinstance(c, str) and c for c in classes)
        ):
            raise ValueError(
                f"labels file {path} must hold {{'classes': [non-empty label names]}}"
            )
        duplicated = sorted({c for c in classes if classes.count(c) > 1})
        if duplicated:
            raise ValueError(f"labels file {path}: label {duplicated[0]!r} is listed twice")
        changed = next((c for c in classes if label_name(c) != c), None)
        if changed is not None:
            raise ValueError(f"labels file {path}: label {changed!r} is not a label name (white "
                             f"space around it or not in Unicode NFC form)")
        if classes != sorted(classes):
            raise ValueError(f"labels file {path}: classes must be sorted")
        vocab = cls()
        vocab._set_classes(classes)
        return vocab

    def _check_fitted(self):
        if not hasattr(self, "classes_"):
            raise RuntimeError("this LabelVocabulary is not fitted yet: call fit() first")

    def __repr__(self):
        if hasattr(self, "classes_"):
            return f"LabelVocabulary(classes_={self.classes_})"
        return "LabelVocabulary()"


def _check_name(name, where):
    """The name by the one naming rule (``label_names.label_name``); empty ones refused."""
    if not isinstance(name, str) or not label_name(name):
        raise ValueError(f"{where}: label names must be non-empty strings, got {name!r}")
    return label_name(name)


def _as_label_set(labels, index):
    if isinstance(labels, str):
        raise TypeError(
            f"sample {index}: labels must be a collection of names, not the string "
            f"{labels!r} (did you mean {{{labels!r}}}?)"
        )
    return {_check_name(label, f"sample {index}") for label in labels}
