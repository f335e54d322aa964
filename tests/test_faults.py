"""Faults a user meets: file permissions, ... (issue 12)."""

import os
import stat

import pytest

from multilabel_keras.cli import main


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(folder):
    return {os.path.relpath(os.path.join(d, f), folder): stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode)
            for d, _, files in os.walk(folder) for f in files}


@pytest.mark.slow
def test_run_files_follow_the_umask(folder_data, tmp_path, umask_022):
    run = tmp_path / "run"
    assert main(["train", "--data", str(folder_data), "--epochs", "1", "--image-size", "32",
                 "--out", str(run), "--quiet"]) == 0
    modes = _modes(run)
    assert "model.keras" in modes and "labels.json" in modes
    # open(path, "w") under umask 022 gives 0644; every run file must match it.
    probe = tmp_path / "probe"
    probe.write_text("x")
    expected = stat.S_IMODE(os.stat(probe).st_mode)
    assert expected == 0o644
    assert modes == {name: expected for name in modes}


def _damaged_bodies(folder):
    """Files whose headers are sound (they pass probe_image) but whose pixels cannot be decoded."""
    import cv2
    import numpy as np

    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)

    def encoded(ext):
        return bytearray(cv2.imencode(ext, image)[1].tobytes())

    png = encoded(".png")
    start = png.index(b"IDAT") + 8
    png[start:start + 200] = bytes(200)  # compressed pixels zeroed; IEND still at the end
    jpg = encoded(".jpg")
    scan = jpg.index(b"\xff\xda") + 40
    jpg = jpg[:scan] + b"\xff\xc4" + jpg[scan:]  # a marker inside the scan data; EOI kept
    bmp = encoded(".bmp")
    gif = (b"GIF89a" + (60).to_bytes(2, "little") + (40).to_bytes(2, "little") + b"\x80\x00\x00"
           + bytes(6) + b"\x2c" + bytes(9) + b"\x02\xff\xff\xff\x3b")
    files = {"body.png": png, "body.jpg": jpg, "body.bmp": bmp[: len(bmp) // 2], "body.gif": gif}
    for name, data in files.items():
        (folder / name).write_bytes(bytes(data))
    return [str(folder / name) for name in files]


def test_a_damaged_body_is_named_before_the_run(tmp_path):
    from multilabel_keras.data.check import BadImageError, check_images, probe_image
    from multilabel_keras.data.sources import Samples

    folder = tmp_path / "bad"
    folder.mkdir()
    paths = _damaged_bodies(folder)
    for path in paths:
        probe_image(path)  # the header alone looks fine
        with pytest.raises(BadImageError, match="damaged image data") as err:
            check_images(Samples([path], [{"x"}]), on_bad_image="error")
        assert path in str(err.value) and "Op:" not in str(err.value)


@pytest.mark.slow
def test_training_skips_damaged_files_and_finishes(folder_data, tmp_path, capsys):
    paths = _damaged_bodies(folder_data / "red_square")
    run = tmp_path / "run"
    assert main(["train", "--data", str(folder_data), "--epochs", "1", "--image-size", "32",
                 "--out", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    for path in paths:
        assert f"skipped {path}: damaged image data" in err
    assert (run / "model.keras").exists()


def test_special_files_are_refused_unopened(tmp_path):
    import io
    import threading

    from multilabel_keras.data.check import check_images
    from multilabel_keras.data.sources import Samples

    fifo, zero = tmp_path / "x.jpg", tmp_path / "zero.jpg"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    log = io.StringIO()

    def check():
        kept, _ = check_images(Samples([str(fifo), str(zero)], [{"a"}, {"a"}]),
                               max_bad_fraction=1.0, log=log)
        assert len(kept) == 0

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "checking a FIFO hung"
    text = log.getvalue()
    assert f"skipped {fifo}: a named pipe" in text
    assert f"skipped {zero}: a character device" in text


def test_a_huge_file_is_refused_by_size(tmp_path, monkeypatch):
    from multilabel_keras.data import check

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4096))
    monkeypatch.setattr(check, "MAX_FILE_BYTES", 1024)
    with pytest.raises(check.BadImageError, match="big.png: .* over the 0 MiB cap"):
        check.probe_image(big)
