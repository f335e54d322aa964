"""Data: readers, the label vocabulary, splits and tf.data pipelines."""

from multilabel_keras.data.augment import RandomAffine
from multilabel_keras.data.formats import (
    from_celeba,
    from_label_files,
    from_miml,
    read_celeba_partition,
)
from multilabel_keras.data.images import load_image, load_images
from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.data.sources import Samples, from_csv, from_folders, load_samples
from multilabel_keras.data.splits import iterative_split, split_samples
from multilabel_keras.data.tfrecords import (
    read_tfrecord_index,
    tfrecord_dataset,
    tfrecord_vocabulary,
    write_tfrecords,
)
from multilabel_keras.data.vocabulary import LabelVocabulary

__all__ = [
    "LabelVocabulary",
    "RandomAffine",
    "Samples",
    "from_celeba",
    "from_csv",
    "from_folders",
    "from_label_files",
    "from_miml",
    "iterative_split",
    "load_image",
    "load_images",
    "load_samples",
    "make_dataset",
    "read_celeba_partition",
    "read_tfrecord_index",
    "split_samples",
    "tfrecord_dataset",
    "tfrecord_vocabulary",
    "write_tfrecords",
]
