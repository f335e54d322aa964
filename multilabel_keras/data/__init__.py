"""Data: readers, the label vocabulary, splits and tf.data pipelines."""

from multilabel_keras.data.augment import RandomAffine
from multilabel_keras.data.pipeline import load_image, load_images, make_dataset
from multilabel_keras.data.sources import Samples, from_csv, from_folders, load_samples
from multilabel_keras.data.splits import iterative_split, split_samples
from multilabel_keras.data.vocabulary import LabelVocabulary

__all__ = [
    "LabelVocabulary",
    "RandomAffine",
    "Samples",
    "from_csv",
    "from_folders",
    "iterative_split",
    "load_image",
    "load_images",
    "load_samples",
    "make_dataset",
    "split_samples",
]
