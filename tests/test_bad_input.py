"""A corpus of broken and unusual image files, made by code, and what happens to each."""

import io
import re
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from multilabel_keras import LabelVocabulary, Samples, make_dataset
from multilabel_keras.data.check import BadImageError, check_images, probe_image
from multilabel_keras.data.images import load_images


def _rgb(h=40, w=60):
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (220, 30, 30)  # left half red, right half blue
    image[:, w // 2 :] = (30, 40, 220)
    return Image.fromarray(image)


def _save(image, path, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, **kwargs)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def corpus(tmp_path):
    good, bad = {}, {}
    good["plain.jpg"] = _save(_rgb(), tmp_path / "plain.jpg", format="JPEG", quality=95)
    good["png_named_jpg.jpg"] = _save(_rgb(), tmp_path / "png_named_jpg.jpg", format="PNG")
    good["rgba.png"] = _save(_rgb().convert("RGBA"), tmp_path / "rgba.png", format="PNG")
    good["palette.png"] = _save(_rgb().convert("P"), tmp_path / "palette.png", format="PNG")
    good["gray.png"] = _save(_rgb().convert("L"), tmp_path / "gray.png", format="PNG")
    good["cmyk.jpg"] = _save(_rgb().convert("CMYK"), tmp_path / "cmyk.jpg", format="JPEG", quality=95)
    sixteen = np.asarray(_rgb().convert("L"), np.uint16) * 257
    assert cv2.imwrite(str(tmp_path / "16bit.png"), sixteen)
    assert Image.open(tmp_path / "16bit.png").mode.startswith("I")  # really 16 bits per pixel
    good["16bit.png"] = tmp_path / "16bit.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    good["exif_rotated.jpg"] = _save(_rgb(), tmp_path / "exif_rotated.jpg", format="JPEG", quality=95,
                                     exif=exif.tobytes())
    (tmp_path / "empty.jpg").write_bytes(b"")
    bad["empty.jpg"] = "empty file"
    data = good["plain.jpg"].read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    bad["truncated.jpg"] = "truncated JPEG"
    png = good["rgba.png"].read_bytes()
    (tmp_path / "truncated.png").write_bytes(png[: len(png) // 2])
    bad["truncated.png"] = "truncated PNG"
    (tmp_path / "notes.jpg").write_text("these are my notes, not a photo\n")
    bad["notes.jpg"] = "not a JPEG, PNG, GIF or BMP"
    # A valid PNG header claiming 40000 x 40000 pixels (and an IEND so it is not "truncated").
    huge = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 40000, 40000)
    (tmp_path / "huge.png").write_bytes(huge + b"\x08\x02\x00\x00\x00" + b"\0" * 4 + b"IEND")
    bad["huge.png"] = "40000x40000 pixels is over the cap"
    bad["missing.jpg"] = "file not found"
    return tmp_path, good, bad


def test_every_good_file_decodes_to_rgb(corpus):
    root, good, _ = corpus
    images = load_images([str(p) for p in good.values()], 32)
    assert images.shape == (len(good), 32, 32, 3)
    by_name = dict(zip(good, images))
    for name in ("plain.jpg", "png_named_jpg.jpg", "rgba.png", "palette.png", "cmyk.jpg"):
        left, right = by_name[name][:, :12].mean((0, 1)), by_name[name][:, 20:].mean((0, 1))
        assert left[0] > left[2] + 100 and right[2] > right[0] + 100, name  # red left, blue right
    assert by_name["gray.png"].std(axis=2).max() < 1  # grey replicated to 3 channels
    assert abs(by_name["16bit.png"].mean() - by_name["gray.png"].mean()) < 2  # scaled to 8 bits


def test_exif_orientation_is_honoured(corpus):
    root, good, _ = corpus
    assert probe_image(good["exif_rotated.jpg"]).orientation == 6
    image = load_images([str(good["exif_rotated.jpg"])], 32)[0]
    # Stored red-left/blue-right, viewed after a clockwise turn: red on top, blue below.
    top, bottom = image[:12].mean((0, 1)), image[20:].mean((0, 1))
    assert top[0] > top[2] + 100 and bottom[2] > bottom[0] + 100


@pytest.mark.parametrize("name", ["empty.jpg", "truncated.jpg", "truncated.png", "notes.jpg",
                                  "huge.png", "missing.jpg"])
def test_each_bad_file_is_refused_by_name(corpus, name):
    root, _, bad = corpus
    with pytest.raises(BadImageError, match=bad[name]) as err:
        probe_image(root / name)
    assert name in str(err.value)


def test_skip_policy_names_every_skipped_file(corpus, capsys):
    root, good, bad = corpus
    paths = [str(p) for p in good.values()] * 5 + [str(root / n) for n in bad]
    samples = Samples(paths, [{"x"}] * len(paths))
    kept, report = check_images(samples)  # 6 bad of 46: under the 20% default
    assert len(kept) == len(good) * 5 and len(report.skipped) == len(bad)
    err = capsys.readouterr().err
    assert f"{len(bad)} of {len(paths)} images skipped" in err
    for name, reason in bad.items():
        assert name in err and reason.split()[0] in err
    assert kept.orientation[list(good).index("exif_rotated.jpg")] == 6
    ds = make_dataset(kept, LabelVocabulary().fit(kept.labels), 16, batch_size=64)
    assert next(iter(ds))[0].shape[0] == len(kept)  # nothing left that TensorFlow chokes on


def test_too_many_bad_files_or_error_policy_fail(corpus):
    root, good, bad = corpus
    paths = [str(p) for p in good.values()] + [str(root / n) for n in bad]
    samples = Samples(paths, [set()] * len(paths))
    with pytest.raises(BadImageError, match="more than max_bad_fraction=0.2"):
        check_images(samples)
    assert len(check_images(samples, max_bad_fraction=0.5)[0]) == len(good)
    with pytest.raises(BadImageError, match="empty.jpg: empty file"):
        check_images(Samples([str(root / "empty.jpg")], [set()]), on_bad_image="error")


def test_pixel_cap_is_configurable(corpus):
    root, good, _ = corpus
    with pytest.raises(BadImageError, match="60x40 pixels is over the cap of 1,000"):
        probe_image(good["plain.jpg"], max_pixels=1000)
    assert probe_image(good["plain.jpg"], max_pixels=None).width == 60


def _manifest(root, text, name="labels.csv"):
    (root / "img").mkdir(exist_ok=True)
    for i in range(4):
        _save(_rgb(), root / "img" / f"{i}.jpg", format="JPEG")
    path = root / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_manifest_with_crlf_bom_spaces_and_trailing_separators(tmp_path):
    from multilabel_keras import from_csv

    text = "\ufefffilename,labels\r\nimg/0.jpg,red  dress \r\nimg/1.jpg,\r\nimg/2.jpg,blue;shirt;\r\n"
    samples = from_csv(_manifest(tmp_path, text))
    assert samples.labels[0] == {"red", "dress"} and samples.labels[1] == set()
    text = "filename,labels\nimg/2.jpg,blue;shirt;\nimg/3.jpg,;red;;\n"
    semi = from_csv(_manifest(tmp_path, text, "semi.csv"), label_sep=";")
    assert semi.labels == [{"blue", "shirt"}, {"red"}]


def test_manifest_paths_may_not_leave_the_data_root(tmp_path):
    from multilabel_keras import from_csv

    outside = _save(_rgb(), tmp_path / "outside.jpg", format="JPEG")
    data = tmp_path / "data"
    data.mkdir()
    for name in ("../outside.jpg", "img/../../outside.jpg", str(outside)):
        path = _manifest(data, f"filename,labels\n{name},red\n")
        with pytest.raises(ValueError, match="allow_outside_root=True") as err:
            from_csv(path)
        assert "line 2" in str(err.value)
        assert from_csv(path, allow_outside_root=True).paths == [str(outside)]


def test_manifest_duplicates_and_misspellings(tmp_path):
    from multilabel_keras import from_csv

    rows = "".join(f"img/{i % 4}.jpg,dress\n" for i in range(4))
    path = _manifest(tmp_path, "filename,labels\n" + rows + "img/0.jpg,dress\n")
    with pytest.warns(UserWarning, match="1 duplicate entries kept once: img/0.jpg"):
        assert len(from_csv(path)) == 4
    path = _manifest(tmp_path, "filename,labels\nimg/0.jpg,dress\nimg/0.jpg,shirt\n", "conflict.csv")
    with pytest.raises(ValueError, match=r"img/0.jpg is listed twice with different labels \(lines 2 and 3\)"):
        from_csv(path)
    images = tmp_path / "img"
    for i in range(4, 24):
        _save(_rgb(), images / f"{i}.jpg", format="JPEG")
    rows = "".join(f"img/{i}.jpg,dress\n" for i in range(4, 24)) + "img/0.jpg,drss\n"
    path = _manifest(tmp_path, "filename,labels\n" + rows, "typo.csv")
    with pytest.warns(UserWarning, match=re.escape("label 'drss' (1 image(s)) looks like a "
                                                   "misspelling of 'dress' (20 images)")):
        from_csv(path)
