"""A run's inputs: checked images, the vocabulary, the held-out split, colour labels, and warnings about them."""

import warnings

from multilabel_keras.data.check import check_images
from multilabel_keras.data.diagnostics import unseen_combinations
from multilabel_keras.data.recolour import colour_labels
from multilabel_keras.data.splits import check_hold_out, split_samples
from multilabel_keras.data.vocabulary import LabelVocabulary


def colour_mask(vocabulary, chosen):
    """A 0/1 mask over the vocabulary of the labels ``recolour`` treats as colours.

    Args:
        vocabulary: the run's fitted ``LabelVocabulary``.
        chosen: ``"auto"`` (labels named by colour words) or label names.

    Returns:
        List of floats, one per label.

    Example:
        >>> from multilabel_keras import LabelVocabulary
        >>> colour_mask(LabelVocabulary().fit([{"red", "dress"}]), "auto")
        [0.0, 1.0]
    """
    if chosen == "auto":
        chosen = colour_labels(vocabulary.classes_)
    chosen = list(chosen or [])
    unknown = [name for name in chosen if name not in vocabulary.classes_]
    if unknown:
        raise ValueError(f"colour_labels: {', '.join(map(repr, unknown))} not among the labels")
    return [1.0 if name in chosen else 0.0 for name in vocabulary.classes_]


def warn_random_frozen_backbone(model, weights):
    """Warns when a backbone with random weights is to be kept frozen (its features are noise)."""
    if weights is None and "backbone" in {layer.name for layer in model.layers}:
        warnings.warn(
            f"the backbone of {model.name} has random weights (weights=None) but is kept frozen "
            f"while the head trains: its features are noise and the model will score near "
            f"chance. Pass pretrained weights (a .weights.h5 file or 'imagenet'), or train "
            f"every layer without a schedule.", UserWarning, stacklevel=3)


def warn_unseen(samples, val_samples):
    """Warns about label combinations of the validation split that training never shows."""
    unseen = unseen_combinations(samples, val_samples)
    if unseen:
        shown = "; ".join(f"{'+'.join(u['labels']) or '(none)'} x{u['count']}" for u in unseen[:5])
        more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
        warnings.warn(
            f"{len(unseen)} label combination(s) in the validation split never occur in "
            f"training: {shown}{more}. The model will rarely predict them together.",
            UserWarning, stacklevel=3,
        )


def prepare_splits(samples, val_samples, vocabulary, val_split, seed, **check_kwargs):
    """Checks the images, fits the vocabulary and holds out validation data.

    Args:
        samples: training ``Samples``.
        val_samples: validation ``Samples`` or ``None``.
        vocabulary: a fitted ``LabelVocabulary`` or ``None`` (fitted on
            every label of both).
        val_split: fraction held out (iterative stratification) when
            ``val_samples`` is ``None``.
        seed: split seed.
        **check_kwargs: ``check_images`` options (``on_bad_image`` …).

    Returns:
        ``(samples, val_samples, vocabulary)``.

    Example:
        >>> from multilabel_keras import from_folders
        >>> samples = from_folders("data/fashion")
        >>> train_part, val, vocab = prepare_splits(samples, None, None, 0.2, 0)
        >>> len(train_part), len(val), list(vocab.classes_)
        (24, 6, ['black', 'blue', 'dress', 'jeans', 'red', 'shirt'])
    """
    samples, _ = check_images(samples, **check_kwargs)
    if val_samples is not None:
        val_samples, _ = check_images(val_samples, **check_kwargs)
    if vocabulary is None:
        labels = list(samples.labels) + (list(val_samples.labels) if val_samples else [])
        vocabulary = LabelVocabulary().fit(labels)
    if val_samples is None and val_split:
        samples, val_samples = split_samples(samples, vocabulary, (1 - val_split, val_split), seed)
        check_hold_out(len(samples), len(val_samples), val_split)
        if not len(val_samples):
            val_samples = None
    return samples, val_samples, vocabulary
