import numpy as np
import pytest
from scipy.io import savemat

from multilabel_keras import LabelVocabulary
from multilabel_keras.data import from_celeba, from_label_files, from_miml, read_celeba_partition

from conftest import draw, write_rgb

ATTRIBUTES = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Smiling", "Eyeglasses"]


@pytest.fixture
def celeba(tmp_path):
    """CelebA's real layout: count, names, then rows with runs of spaces."""
    images = tmp_path / "img_align_celeba"
    values = [[-1, 1, 1, -1], [1, -1, -1, -1], [-1, -1, 1, 1], [1, 1, -1, 1]]
    lines = [str(len(values)), " ".join(ATTRIBUTES) + " "]
    for i, row in enumerate(values, start=1):
        name = f"{i:06d}.jpg"
        write_rgb(str(images / name), draw("red", "square", seed=i))
        lines.append(name + "".join(f" {v:2d}" for v in row))  # " -1  1" spacing, as shipped
    (tmp_path / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "list_eval_partition.txt").write_text(
        "000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n"
    )
    return tmp_path


def test_celeba_reads_present_attributes(celeba):
    samples = from_celeba(celeba / "list_attr_celeba.txt", celeba / "img_align_celeba")
    assert [s.rsplit("/", 1)[-1] for s in samples.paths] == [f"{i:06d}.jpg" for i in range(1, 5)]
    assert samples.labels[0] == {"Arched_Eyebrows", "Smiling"}
    assert samples.labels[1] == {"5_o_Clock_Shadow"}
    vocab = LabelVocabulary(classes=ATTRIBUTES).fit(samples.labels)
    assert vocab.transform(samples.labels).sum(0).tolist() == [2, 2, 2, 2]


def test_celeba_attribute_subset_and_partition(celeba):
    samples = from_celeba(celeba / "list_attr_celeba.txt", celeba / "img_align_celeba",
                          attributes=["Smiling"], partition_file=celeba / "list_eval_partition.txt",
                          split="train")
    assert len(samples) == 2 and samples.labels == [{"Smiling"}, set()]
    assert read_celeba_partition(celeba / "list_eval_partition.txt")["000004.jpg"] == "test"
    with pytest.raises(ValueError, match=r"unknown attributes \['Smile'\]"):
        from_celeba(celeba / "list_attr_celeba.txt", celeba / "img_align_celeba", attributes=["Smile"])
    with pytest.raises(ValueError, match="partition_file"):
        from_celeba(celeba / "list_attr_celeba.txt", celeba / "img_align_celeba", split="val")


def test_celeba_errors_name_the_line(celeba):
    attr = celeba / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    attr.write_text("\n".join(lines[:3] + [lines[3].replace(" 1", " 2", 1)] + lines[4:]) + "\n")
    with pytest.raises(ValueError, match=r"line 4: values must be 1, -1 \(or 0/\? for unknown\), got '2'"):
        from_celeba(attr, celeba / "img_align_celeba")
    attr.write_text("\n".join(["5"] + lines[1:]) + "\n")
    with pytest.raises(ValueError, match="declares 5 images but 4 are listed"):
        from_celeba(attr, celeba / "img_align_celeba")
    attr.write_text("\n".join(lines) + "\n")
    (celeba / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000003.jpg"):
        from_celeba(attr, celeba / "img_align_celeba")


def _miml(tmp_path, targets, **extra):
    folder = tmp_path / "original"
    for i in range(1, targets.shape[1] + 1):
        write_rgb(str(folder / f"{i}.jpg"), draw("blue", "circle", seed=i))
    names = np.empty((targets.shape[0], 1), dtype=object)
    for j, name in enumerate(["desert", "mountains", "sea", "sunset", "trees"][: targets.shape[0]]):
        names[j, 0] = name
    savemat(tmp_path / "miml data.mat", {"targets": targets, "class_name": names, **extra})
    return tmp_path / "miml data.mat", folder


def test_miml_label_matrix(tmp_path):
    targets = -np.ones((5, 4))
    targets[[2, 3], 0] = 1  # sea + sunset
    targets[4, 2] = 1
    mat, folder = _miml(tmp_path, targets)
    samples = from_miml(mat, folder)
    assert samples.paths[0].endswith("1.jpg") and samples.paths[3].endswith("4.jpg")
    assert samples.labels == [{"sea", "sunset"}, set(), {"trees"}, set()]


def test_miml_unknown_entries_and_bad_values(tmp_path):
    targets = -np.ones((5, 3))
    targets[1, 2] = 0
    targets[3, 0] = np.nan
    mat, folder = _miml(tmp_path, targets)
    samples = from_miml(mat, folder)
    assert samples.unknown == [{"sunset"}, set(), {"mountains"}]
    targets[0, 1] = 2
    mat, folder = _miml(tmp_path, targets)
    with pytest.raises(ValueError, match=r"targets\[0, 1\] = 2.0"):
        from_miml(mat, folder)


def test_label_files(tmp_path):
    write_rgb(str(tmp_path / "a" / "x.jpg"), draw("red", "square"))
    (tmp_path / "a" / "x.jpg.txt").write_text("red\n\nsquare \n")
    write_rgb(str(tmp_path / "y.png"), draw("blue", "circle"))
    (tmp_path / "y.png.txt").write_text("")
    samples = from_label_files(tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in samples.paths] == ["y.png", "x.jpg"]
    assert samples.labels == [set(), {"red", "square"}]
    write_rgb(str(tmp_path / "z.jpg"), draw("blue", "circle"))
    with pytest.raises(FileNotFoundError, match="z.jpg has no label file"):
        from_label_files(tmp_path)
