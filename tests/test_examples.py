"""Every example script answers --help and runs end to end with --quick."""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))


def _run(script, *args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)


def test_there_is_an_example_per_recipe():
    assert {p.stem for p in EXAMPLES} >= {"fashion_classic", "inceptionv3_features",
                                          "mobilenetv2_celeba", "xception_twin"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_help(script, tmp_path):
    done = _run(script, "--help", cwd=tmp_path)
    assert done.returncode == 0 and "--quick" in done.stdout and "usage:" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_quick_run(script, tmp_path):
    done = _run(script, "--quick", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test" in done.stdout  # each reports on its held-out test split
    if script.stem != "fashion_classic":  # the others default to random backbone weights
        assert "RANDOM weights" in done.stdout
    assert not list(tmp_path.glob("*_output"))  # wrote only under --out
