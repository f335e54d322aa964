"""Long steps draw a progress bar on a terminal, and nothing in a pipe, a file or with --quiet.

Oracle: what a stream that says it is a terminal receives, against one that
does not, with the item counts done by hand.
"""

import io

import pytest

from conftest import make_folder_data
from multilabel_keras import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def _loud():
    progress.quiet(False)
    yield
    progress.quiet(False)


def test_a_bar_draws_only_on_a_terminal_and_not_when_quiet():
    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        bar = progress.Progress(4, "checking images", stream=stream)
        for _ in range(4):
            bar.update()
        bar.close()
        assert ("checking images 4/4 [" in stream.getvalue()) is drawn
        assert stream.getvalue().endswith("\n") is drawn
    progress.quiet()
    stream = Terminal()
    bar = progress.Progress(2, "x", stream=stream)
    bar.update(2)
    bar.close()
    assert stream.getvalue() == ""


def test_checking_extracting_and_evaluating_show_their_counts_on_a_terminal(tmp_path, monkeypatch):
    import sys
    import warnings

    from multilabel_keras import evaluate, extract_features, from_folders, train
    from multilabel_keras.data.check import check_images

    samples = from_folders(make_folder_data(tmp_path / "data", per_folder=3))  # 12 images
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    check_images(samples)
    assert "checking images 12/12" in terminal.getvalue()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random backbone weights
        extract_features(samples, tmp_path / "features", "mobilenetv2", weights=None,
                         image_size=32, verbose=1)
    assert "extracting features 12/12" in terminal.getvalue()
    train(samples, tmp_path / "run", image_size=32, epochs=1, verbose=0)
    evaluate(str(tmp_path / "run"), samples)
    assert "evaluating 12/12" in terminal.getvalue()
    progress.quiet()  # what --quiet does
    before = terminal.getvalue()
    check_images(samples)
    assert terminal.getvalue() == before
