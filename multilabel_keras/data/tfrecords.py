"""TFRecords: encoded images + multi-hot labels in shards, read back in parallel."""

import os

import numpy as np
import tensorflow as tf

from multilabel_keras.data.check import check_images
from multilabel_keras.data.augment import batch_and_augment
from multilabel_keras.data.images import decode_image, pipeline_workers
from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.hints import Setting, hinted
from multilabel_keras.io import atomic_path, read_index, write_json

INDEX_FILE = "tfrecords.json"
INDEX_FORMAT = "multilabel_keras.tfrecords"


def write_tfrecords(samples, vocabulary, out_dir, shards=4, image_size=None, overwrite=False):
    """Writes samples to sharded TFRecord files plus an index.

    Each record holds the image file's bytes (``image``), its multi-hot
    label vector (``labels``) and its path (``path``). By default the bytes
    are copied as they are, so nothing is lost; with ``image_size`` every
    image is decoded, resized like ``make_dataset`` does and stored as a
    JPEG (quality 95), which makes CelebA-sized sets much smaller. Each
    shard is written under a temporary name and renamed when complete; the
    index ``tfrecords.json`` (label names, shard files, counts) is written
    last.

    Args:
        samples: ``Samples`` to write.
        vocabulary: the fitted ``LabelVocabulary`` (its classes are saved).
        out_dir: destination folder.
        shards: number of ``.tfrecord`` files (≥ 1); more shards let
            readers interleave more files in parallel.
        image_size: optional side to resize to before storing.
        overwrite: replace an earlier set in ``out_dir``.

    Returns:
        The index dict.

    Example:
        >>> from multilabel_keras import LabelVocabulary, from_folders
        >>> samples = from_folders("data/fashion")
        >>> vocab = LabelVocabulary().fit(samples.labels)
        >>> index = write_tfrecords(samples, vocab, "data/fashion_tfr", shards=3)
        >>> index["num_records"], len(index["shards"])
        (30, 3)
    """
    out_dir = os.fspath(out_dir)
    shards = int(shards)
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if len(samples) == 0:
        raise ValueError("write_tfrecords: no samples")
    index_path = os.path.join(out_dir, INDEX_FILE)
    if os.path.exists(index_path) and not overwrite:
        raise hinted(FileExistsError, f"{out_dir} already holds TFRecords; pass ",
                     Setting("overwrite", True), " to replace them")
    os.makedirs(out_dir, exist_ok=True)
    samples, _ = check_images(samples)
    labels = vocabulary.transform(samples.labels, samples.unknown).astype(np.float32)
    parts = np.array_split(np.arange(len(samples)), min(shards, len(samples)))
    width = len(str(len(parts)))
    entries = []
    for k, part in enumerate(parts):
        name = f"data-{k:0{width}d}-of-{len(parts):0{width}d}.tfrecord"
        with atomic_path(os.path.join(out_dir, name)) as tmp, tf.io.TFRecordWriter(tmp) as writer:
            for i in part:
                writer.write(_example(samples.paths[i], labels[i], image_size,
                                      samples.orientation[i]))
        entries.append({"file": name, "count": len(part)})
    index = {
        "format": INDEX_FORMAT,
        "version": 1,
        "classes": list(vocabulary.classes_),
        "image_size": None if image_size is None else int(image_size),
        "num_records": len(samples),
        "shards": entries,
    }
    write_json(index_path, index)
    return index


def _example(path, labels, image_size, orientation=1):
    try:
        with open(path, "rb") as f:
            data = f.read()
        if image_size is not None:
            data = tf.io.encode_jpeg(decode_image(data, int(image_size), orientation),
                                     quality=95).numpy()
            orientation = 1  # now stored upright
    except OSError as err:
        raise FileNotFoundError(f"cannot read image {path}: {err}") from None
    except tf.errors.InvalidArgumentError as err:
        raise ValueError(f"cannot decode image {path}: {err.message}") from None
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        "labels": tf.train.Feature(float_list=tf.train.FloatList(value=labels.tolist())),
        "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[os.fspath(path).encode()])),
        "orientation": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(orientation)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def read_tfrecord_index(folder):
    """Reads and checks the index of a folder written by ``write_tfrecords``.

    Args:
        folder: the TFRecords folder.

    Returns:
        The index dict (``classes``, ``shards``, ``num_records`` …).

    Example:
        >>> read_tfrecord_index("data/celeba_tfr")["num_records"]
        30
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, INDEX_FILE)
    index = read_index(folder, INDEX_FILE, INDEX_FORMAT, "write_tfrecords")
    classes, shards = index.get("classes"), index.get("shards")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{path}: 'classes' must be a list of label names")
    if not isinstance(shards, list) or not shards:
        raise ValueError(f"{path}: 'shards' must be a non-empty list")
    for entry in shards:
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or os.path.basename(name) != name:
            raise ValueError(f"{path}: bad shard entry {entry!r}")
        if not os.path.isfile(os.path.join(folder, name)):
            raise FileNotFoundError(f"{path}: shard {name} is missing")
    return index


def tfrecord_dataset(folder, vocabulary=None, image_size=96, batch_size=32, augment=False,
                     shuffle=False, repeat=False, seed=None, with_paths=False, mix=0.0,
                     recolour=None):
    """Streams a TFRecords folder as ``(images, multi_hot)`` batches.

    Shards are read by a parallel interleave (one reader per shard, up to
    the CPU count) and decoded with the same ``decode_image`` as
    ``make_dataset``. With ``shuffle`` the shard order is reshuffled every
    pass and records pass through a 1,024-record buffer.

    Args:
        folder: a folder written by ``write_tfrecords``.
        vocabulary: ``None`` or a ``LabelVocabulary`` that must have the
            saved label names in the same order.
        image_size: side of the square images.
        batch_size: images per batch.
        augment: ``False``, ``True`` or a Keras layer (as ``make_dataset``).
        shuffle: shuffle shards and records.
        repeat: repeat forever.
        seed: shuffle and augmentation seed.
        with_paths: yield ``(images, labels, paths)`` (no augmentation).
        mix: share of each batch replaced by mosaics (as ``make_dataset``).
        recolour: ``None`` or ``(colour_mask, probability[, split])`` (as ``make_dataset``).

    Returns:
        A ``tf.data.Dataset``.

    Example:
        >>> ds = tfrecord_dataset("data/celeba_tfr", image_size=96, batch_size=8, shuffle=True)
        >>> images, labels = next(iter(ds))
        >>> tuple(images.shape), tuple(labels.shape)
        ((8, 96, 96, 3), (8, 6))
    """
    folder = os.fspath(folder)
    index = read_tfrecord_index(folder)
    classes = index["classes"]
    if vocabulary is not None and list(vocabulary.classes_) != classes:
        missing = sorted(set(classes) ^ set(vocabulary.classes_))
        detail = f"labels differ: {missing}" if missing else "same labels in another order"
        raise ValueError(f"{folder}: the TFRecords were written with another vocabulary ({detail})")
    files = [os.path.join(folder, entry["file"]) for entry in index["shards"]]
    workers = pipeline_workers()
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.FixedLenFeature([len(classes)], tf.float32),
        "path": tf.io.FixedLenFeature([], tf.string),
        "orientation": tf.io.FixedLenFeature([], tf.int64, default_value=1),
    }

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        image = decode_image(example["image"], image_size, example["orientation"])
        return image, example["labels"], example["path"]

    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), workers),
                       num_parallel_calls=min(len(files), workers), deterministic=True)
    if shuffle:
        ds = ds.shuffle(1024, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(parse, num_parallel_calls=workers, deterministic=True)
    if repeat:
        ds = ds.repeat()
    if with_paths:
        ds = ds.batch(batch_size).map(lambda x, y, p: (tf.cast(x, tf.float32), y, p))
        return ds.prefetch(2)
    return batch_and_augment(ds.map(lambda x, y, p: (x, y)), batch_size, augment, seed, mix,
                             recolour)


def tfrecord_vocabulary(folder):
    """The ``LabelVocabulary`` a TFRecords folder was written with.

    Args:
        folder: a folder written by ``write_tfrecords``.

    Returns:
        A fitted ``LabelVocabulary``.

    Example:
        >>> vocab = tfrecord_vocabulary("data/celeba_tfr")
        >>> list(vocab.classes_)
        ['black', 'blue', 'dress', 'jeans', 'red', 'shirt']
    """
    classes = read_tfrecord_index(folder)["classes"]
    vocabulary = LabelVocabulary(classes=classes).fit([])
    if vocabulary.classes_ != classes:
        raise ValueError(f"{folder}: label names in the index are not sorted and unique")
    return vocabulary
