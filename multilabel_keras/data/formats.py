"""Readers for published data set layouts: CelebA, MIML, per-image label files."""

import os

import numpy as np

from multilabel_keras.data.label_names import normal_label_sets, warn_unused_labels
from multilabel_keras.data.sources import IMAGE_EXTENSIONS, Samples, warn_suspicious_labels

CELEBA_SPLITS = {"train": 0, "val": 1, "test": 2}


def from_celeba(attr_file, image_dir, attributes=None, partition_file=None, split=None):
    """Reads CelebA's ``list_attr_celeba.txt``.

    The format: line 1 is the image count, line 2 the 40 attribute names,
    then one line per image, ``000001.jpg -1  1  1 -1 …`` with runs of
    spaces; ``1`` means present and ``-1`` absent. ``0`` or ``?`` marks an
    attribute as unknown for that image (partial labels).

    Args:
        attr_file: path of ``list_attr_celeba.txt``.
        image_dir: folder holding the images (``img_align_celeba/``).
        attributes: names to keep (default all); a name not in the file is
            an error.
        partition_file: optional ``list_eval_partition.txt``.
        split: with ``partition_file``, keep only ``"train"``, ``"val"`` or
            ``"test"``.

    Returns:
        ``Samples`` whose label sets hold the present attributes. Fit the
        vocabulary with ``LabelVocabulary(classes=attributes)`` so that an
        attribute absent from every image still gets its output.

    Example:
        >>> s = from_celeba("list_attr_celeba.txt", "img_align_celeba",
        ...                 attributes=["Smiling", "Eyeglasses"],
        ...                 partition_file="list_eval_partition.txt", split="train")
        >>> open("list_attr_celeba.txt").read().splitlines()[2]
        '000001.jpg  1 -1  1'
        >>> len(s), s.paths[0].endswith("000001.jpg"), sorted(s.labels[0])
        (4, True, ['Smiling'])
    """
    attr_file = os.fspath(attr_file)
    with open(attr_file, encoding="utf-8-sig") as f:
        lines = [line.rstrip("\r\n") for line in f]
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise ValueError(f"{attr_file}: line 1 must be the image count, got {lines[:1]}")
    names = lines[1].split()
    if not names:
        raise ValueError(f"{attr_file}: line 2 must list the attribute names")
    keep = list(range(len(names)))
    if attributes is not None:
        unknown = [a for a in attributes if a not in names]
        if unknown:
            raise ValueError(f"{attr_file}: unknown attributes {unknown}; the file has {names}")
        keep = [names.index(a) for a in attributes]
    wanted = _celeba_split(partition_file, split)
    paths, labels, unknown, rows = [], [], [], 0
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        rows += 1
        if len(fields) != len(names) + 1:
            raise ValueError(
                f"{attr_file}, line {number}: expected a file name and {len(names)} values, "
                f"got {len(fields)} fields"
            )
        if wanted is not None and fields[0] not in wanted:
            continue
        values = fields[1:]
        bad = [v for v in values if v not in ("1", "-1", "0", "?")]
        if bad:
            raise ValueError(
                f"{attr_file}, line {number}: values must be 1, -1 (or 0/? for unknown), "
                f"got {bad[0]!r}"
            )
        paths.append(os.path.join(os.fspath(image_dir), fields[0]))
        labels.append({names[j] for j in keep if values[j] == "1"})
        unknown.append({names[j] for j in keep if values[j] in ("0", "?")})
    if rows != int(lines[0]):
        raise ValueError(f"{attr_file}: line 1 declares {lines[0].strip()} images but {rows} are listed")
    labels = normal_label_sets(labels, attr_file)
    warn_unused_labels([names[j] for j in keep], labels, attr_file)
    _check_files(paths, attr_file)
    return Samples(paths, labels, unknown)


def read_celeba_partition(path):
    """Reads CelebA's ``list_eval_partition.txt`` (``000001.jpg 0`` per line).

    Args:
        path: the partition file; 0 = train, 1 = val, 2 = test.

    Returns:
        Dict file name -> ``"train"``, ``"val"`` or ``"test"``.

    Example:
        >>> read_celeba_partition("list_eval_partition.txt")["000001.jpg"]
        'train'
    """
    names = {str(v): k for k, v in CELEBA_SPLITS.items()}
    partition = {}
    with open(os.fspath(path), encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in names:
                raise ValueError(f"{path}, line {number}: expected '<file> 0|1|2', got {line.strip()!r}")
            partition[fields[0]] = names[fields[1]]
    return partition


def _celeba_split(partition_file, split):
    if split is None:
        return None
    if split not in CELEBA_SPLITS:
        raise ValueError(f"split must be one of {list(CELEBA_SPLITS)}, got {split!r}")
    if partition_file is None:
        raise ValueError("split= needs partition_file= (list_eval_partition.txt)")
    return {name for name, part in read_celeba_partition(partition_file).items() if part == split}


def from_miml(mat_file, image_dir, classes=None):
    """Reads the MIML scene data set (``miml data.mat`` + ``1.jpg … 2000.jpg``).

    The MATLAB file holds ``targets``, a labels × images matrix in
    {-1, 1}, and the label names in ``class_name``; ``0`` or ``NaN``
    entries are read as unknown (partial labels). Image ``i`` (1-based
    column) is ``<image_dir>/<i>.jpg``.

    Args:
        mat_file: the ``.mat`` file (read with ``scipy.io.loadmat``, which
            runs no code).
        image_dir: folder of the numbered images.
        classes: label names, if the file has no ``class_name`` variable.

    Returns:
        ``Samples`` ordered by image number.

    Example:
        >>> s = from_miml("miml data.mat", "original")
        >>> sorted(set().union(*s.labels))
        ['desert', 'mountains', 'sea', 'sunset', 'trees']
    """
    from scipy.io import loadmat

    mat_file = os.fspath(mat_file)
    data = loadmat(mat_file)
    if "targets" not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise ValueError(f"{mat_file}: no 'targets' matrix (variables: {found})")
    targets = np.asarray(data["targets"])
    if classes is None:
        key = next((k for k in ("class_name", "class_names", "classes") if k in data), None)
        if key is None:
            raise ValueError(f"{mat_file}: no 'class_name' variable; pass classes=[...]")
        classes = [str(np.asarray(c).ravel()[0]).strip() for c in np.asarray(data[key]).ravel()]
    classes = list(classes)
    if targets.ndim != 2 or targets.shape[0] != len(classes):
        raise ValueError(
            f"{mat_file}: 'targets' must be labels x images ({len(classes)} x N), got {targets.shape}"
        )
    missing = np.isnan(targets.astype(float)) | (targets == 0)
    bad = ~np.isin(targets, (-1, 1)) & ~missing
    if bad.any():
        label, image = np.argwhere(bad)[0]
        raise ValueError(
            f"{mat_file}: targets[{label}, {image}] = {targets[label, image]}; "
            f"expected -1, 1 (or 0/NaN for unknown)"
        )
    paths = [os.path.join(os.fspath(image_dir), f"{i}.jpg") for i in range(1, targets.shape[1] + 1)]
    labels = [{classes[j] for j in np.flatnonzero(column == 1)} for column in targets.T]
    unknown = [{classes[j] for j in np.flatnonzero(column)} for column in missing.T]
    _check_files(paths, mat_file)
    labels = normal_label_sets(labels, mat_file)
    warn_unused_labels(classes, labels, mat_file)
    return Samples(paths, labels, unknown)


def from_label_files(root, suffix=".txt"):
    """Reads images that each have a sibling label file (``x.jpg`` + ``x.jpg.txt``).

    The label file lists one label per line; blank lines are ignored and an
    empty file means no positive label.

    Args:
        root: folder searched recursively for images.
        suffix: appended to the image's file name to get its label file.

    Returns:
        ``Samples`` sorted by path.

    Example:
        >>> s = from_label_files("photos")
        >>> s.paths, s.labels[1] == {"blue", "shirt"}
        (['photos/a.jpg', 'photos/b/c.png'], True)
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"data folder not found: {root}")
    paths, labels = [], []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            image = os.path.join(folder, name)
            label_file = image + suffix
            if not os.path.isfile(label_file):
                raise FileNotFoundError(f"{image} has no label file {label_file}")
            with open(label_file, encoding="utf-8-sig") as f:
                labels.append({line.strip() for line in f if line.strip()})
            paths.append(image)
    if not paths:
        raise ValueError(f"no images with {suffix} label files under {root}")
    samples = Samples(paths, normal_label_sets(labels, root))
    warn_suspicious_labels(samples, root)
    return samples


def _check_files(paths, source):
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise FileNotFoundError(f"{source}: image not found: {missing[0]}{more}")
