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
