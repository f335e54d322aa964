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


def _one_line(err):
    lines = [line for line in err.strip().splitlines() if line.startswith("multilabel-keras")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("flags, says", [
    (["--head", "softmax2"], "has no option 'head'"),
    (["--model", "mlp", "--head", "softmax2"], "has no option 'head'"),
    (["--loss", "softmax2"], "needs the 2-way softmax head"),
])
def test_incompatible_model_head_and_loss_fail_before_the_run_folder(folder_data, tmp_path, capsys,
                                                                    flags, says):
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder_data), "--out", str(out), "--epochs", "1",
                 "--image-size", "32", "--quiet", *flags]) == 2
    assert says in _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_ctrl_c_says_how_to_resume(folder_data, tmp_path, capsys, monkeypatch):
    from multilabel_keras.training.trainer import Trainer

    def interrupt(self, logs=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "end_epoch", interrupt)
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder_data), "--out", str(out), "--epochs", "2",
                 "--image-size", "32", "--quiet"]) == 130
    line = _one_line(capsys.readouterr().err)
    assert line.endswith(f"interrupted; continue with: multilabel-keras train --resume {out}")


def test_a_read_only_parent_is_one_line(folder_data, tmp_path, capsys, monkeypatch):
    import errno

    from multilabel_keras.runs import folder

    # Tests may run as root, which writes anywhere: the refusal is the operating system's.
    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(folder.os, "makedirs", refuse)
    out = tmp_path / "locked" / "run"
    assert main(["train", "--data", str(folder_data), "--out", str(out), "--epochs", "1",
                 "--image-size", "32", "--quiet"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "Permission denied" in line and str(out) in line


def test_disk_full_is_one_line_naming_the_file(folder_data, tmp_path, capsys, monkeypatch):
    import errno

    from multilabel_keras.runs import resume_state as resume

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "run" / "x"))

    monkeypatch.setattr(resume, "save_state", full)
    assert main(["train", "--data", str(folder_data), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--image-size", "32", "--quiet"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "No space left on device" in line and "--resume" in line


def test_an_unexpected_error_is_one_line_and_debug_shows_it(tmp_path, capsys, monkeypatch):
    from multilabel_keras import cli

    def boom(args):
        raise TypeError("hostile\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "list-models", boom)
    assert main(["list-models"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "TypeError: hostile" in line and "--debug" in line
    with pytest.raises(TypeError):
        main(["--debug", "list-models"])
