"""The run report: a self-contained page, checked in a real browser (headless Chromium).

Oracles: the run's labels (one table row each), scikit-learn's
``precision_score`` / ``recall_score`` at the threshold a slider is moved
to (the page computes them in JavaScript from its embedded scores), and the
page's bytes (no network reference).
"""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from conftest import make_folder_data
from multilabel_keras.cli import main

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
    "google-chrome")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from multilabel_keras import Predictor, from_folders, train

    root = tmp_path_factory.mktemp("report")
    samples = from_folders(make_folder_data(root / "data", per_folder=5))
    train(samples, root / "run", image_size=32, epochs=2, batch_size=8, verbose=0)
    assert main(["report", "--run", str(root / "run"), "--data", str(root / "data"),
                 "--out", str(root / "report.html"), "--quiet"]) == 0
    predictor = Predictor.load(root / "run")
    scores = predictor.predict_scores(samples.paths)
    y = predictor.vocabulary.transform(samples.labels)
    return root / "report.html", predictor, scores, y


def test_the_page_is_self_contained_with_a_row_per_label_and_galleries(report):
    page_path, predictor, _, _ = report
    page = page_path.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=['\"]https?:", page)  # nothing fetched from a network
    assert page.count("class='label-row'") == predictor.vocabulary.num_labels
    assert page.count("class='gallery'") == 2 * predictor.vocabulary.num_labels
    assert page.count("data:image/png;base64,") >= 3
    # Gallery thumbnails carry the label's Grad-CAM: none equals a plain thumbnail of the data.
    import base64

    import cv2

    from multilabel_keras.data.images import load_images

    figure = re.search(r"<figure><img class=\"\" src=\"data:image/png;base64,([^\"]+)\">", page)
    assert figure is not None
    shown = cv2.imdecode(np.frombuffer(base64.b64decode(figure.group(1)), np.uint8),
                         cv2.IMREAD_COLOR)[..., ::-1]
    plain = load_images(sorted((page_path.parent / "data").rglob("*.jpg")), 96)
    assert shown.shape == (96, 96, 3)
    assert min(np.abs(shown.astype(float) - p).mean() for p in plain) > 5


def test_an_existing_out_is_refused(report, capsys):
    page_path, _, _, _ = report
    before = page_path.read_bytes()
    run = page_path.parent / "run"
    assert main(["report", "--run", str(run), "--out", str(page_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert page_path.read_bytes() == before


def _dom(page_path, fragment=""):
    done = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=5000", "--dump-dom",
                           f"file://{page_path}{fragment}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no Chromium here: apt-get install chromium "
                                            "(CI installs it)")
def test_in_headless_chromium_the_slider_shows_sklearns_precision_and_recall(report, tmp_path):
    from sklearn.metrics import precision_score, recall_score

    page_path, predictor, scores, y = report
    j, threshold = 1, 0.3
    dom = _dom(page_path, f"#threshold-{j}={threshold}")
    shown = dict(re.findall(rf"id=\"(precision|recall)-{j}\">([0-9.\-]+)<", dom))
    on = (scores[:, j] >= threshold).astype(int)
    assert float(shown["precision"]) == pytest.approx(precision_score(y[:, j], on), abs=1e-4)
    assert float(shown["recall"]) == pytest.approx(recall_score(y[:, j], on), abs=1e-4)
    assert re.search(rf"id=\"threshold-{j}\">0\.30<", dom)
    # Untouched sliders stay at the tuned thresholds.
    assert re.search(rf"id=\"threshold-0\">{predictor.thresholds[0]:.2f}<", dom)
    assert dom.count("<figure>") > 0
    shot = tmp_path / "report.png"
    done = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                           f"--screenshot={shot}", "--window-size=1200,1600",
                           f"file://{page_path}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.asarray(y).shape, scores.shape)
    os.makedirs("/tmp/report_shot", exist_ok=True)
    shutil.copy(shot, "/tmp/report_shot/report.png")  # for a person to look at
