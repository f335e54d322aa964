"""The run report: one self-contained HTML page to look at a run (no network, images embedded).

Per label: support, AP, F1, the tuned threshold, and a slider that moves the
threshold and shows precision and recall computed in the page from the
embedded scores; galleries of the most confident misses and false alarms,
each with the label's Grad-CAM; the run's PR curves and reliability
diagram; label co-occurrence.
"""

import base64
import html
import json
import os
import tempfile

import cv2
import numpy as np

from multilabel_keras.data.check import check_images
from multilabel_keras.data.images import load_images
from multilabel_keras.inference.predictor import Predictor
from multilabel_keras.io import atomic_path, check_new_path
from multilabel_keras.metrics import multilabel_report
from multilabel_keras.runs import RunDir

THUMB = 96  # gallery thumbnail side, pixels

_SCRIPT = """
const data = JSON.parse(document.getElementById("scores").textContent);
function show(j) {
  const t = parseFloat(document.getElementById("slider-" + j).value);
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < data.y.length; i++) {
    const on = data.scores[i][j] >= t, pos = data.y[i][j] === 1;
    if (on && pos) tp++; else if (on && data.y[i][j] === 0) fp++; else if (!on && pos) fn++;
  }
  document.getElementById("threshold-" + j).textContent = t.toFixed(2);
  document.getElementById("precision-" + j).textContent = tp + fp ? (tp / (tp + fp)).toFixed(4) : "-";
  document.getElementById("recall-" + j).textContent = tp + fn ? (tp / (tp + fn)).toFixed(4) : "-";
}
for (let j = 0; j < data.labels.length; j++) {
  document.getElementById("slider-" + j).addEventListener("input", () => show(j));
}
// #threshold-2=0.35 sets a slider as a user would drag it (and lets a test do so).
for (const part of location.hash.slice(1).split("&")) {
  const [key, value] = part.split("=");
  const slider = key && document.getElementById(key.replace("threshold-", "slider-"));
  if (slider && value !== undefined) { slider.value = value; }
}
for (let j = 0; j < data.labels.length; j++) { show(j); }
"""

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; }
.gallery img { margin: 2px; border: 2px solid #ccc; } .gallery figure { display: inline-block;
margin: 2px; font-size: 11px; text-align: center; } img.plot { max-width: 900px; }
"""


def write_report(run, samples=None, out=None, overwrite=False, per_gallery=6):
    """Writes the run's report page.

    Args:
        run: a run folder.
        samples: labelled ``Samples`` to look at (a test set); without them
            the page shows the run's own validation metrics and plots, and
            no galleries or sliders.
        out: the HTML file (default ``<run>/report.html``).
        overwrite: replace an existing ``out`` given by the caller (the
            run's own report is always replaced).
        per_gallery: images per gallery.

    Returns:
        The path written.

    Example:
        >>> from multilabel_keras import from_folders
        >>> write_report("runs/fashion", from_folders("data/test"))
        'runs/fashion/report.html'
    """
    folder = RunDir(run)
    if out is None:
        out = folder.file(folder.REPORT)
    else:
        check_new_path(out, overwrite)
    predictor = Predictor.load(folder.path)
    names = list(predictor.vocabulary.classes_)
    parts = [f"<h1>Run {html.escape(os.path.abspath(folder.path))}</h1>"]
    if samples is not None:
        samples, _ = check_images(samples)
        scores = predictor.predict_scores(samples.paths)
        y = predictor.vocabulary.transform(samples.labels, samples.unknown)
        metrics = multilabel_report(y, scores, predictor.thresholds, names, predictor.rule)
        parts.append(f"<p>{len(samples)} images: mAP {metrics['mAP']:.4f}, micro-F1 "
                     f"{metrics['micro_f1']:.4f}, macro-F1 {metrics['macro_f1']:.4f}</p>")
        parts.append(_label_table(names, metrics, predictor.thresholds, sliders=True))
        parts.append(_galleries(predictor, samples.paths, y, scores, per_gallery))
        parts.append(_cooccurrence(samples, predictor.vocabulary))
        data = {"labels": names, "y": y.tolist(),
                "scores": np.round(scores, 6).tolist()}
        script = (f'<script type="application/json" id="scores">{_json(data)}</script>'
                  f"<script>{_SCRIPT}</script>")
    else:
        metrics = folder.read_json(folder.METRICS, "run metrics") if folder.has(
            folder.METRICS) else {}
        parts.append("<p>The run's validation metrics (give data for galleries and sliders).</p>")
        parts.append(_label_table(names, metrics, predictor.thresholds, sliders=False))
        script = ""
    for name, title in ((folder.PR_CURVES, "Precision-recall on validation"),
                        (folder.RELIABILITY, "Reliability before and after calibration"),
                        (folder.PLOT, "Training history")):
        if folder.has(name):
            with open(folder.checked(name, title), "rb") as f:
                parts.append(f"<h2>{title}</h2>" + _img(f.read(), "plot"))
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Run report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}{script}</body></html>")
    with atomic_path(out) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
    return os.fspath(out)


def _json(data):
    # Inside <script>: "</" must not close the element.
    return json.dumps(data).replace("</", "<\\/")


def _img(png, cls=""):
    return (f'<img class="{cls}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def _label_table(names, metrics, thresholds, sliders):
    rows = ["<h2>Labels</h2><table id='labels'><tr><th>label</th><th>support</th><th>AP</th>"
            "<th>F1</th><th>threshold</th>" + ("<th>move it</th><th>precision</th><th>recall</th>"
                                               if sliders else "") + "</tr>"]
    per_label = metrics.get("per_label", {})
    for j, name in enumerate(names):
        row = per_label.get(name, {})
        cells = [html.escape(name), row.get("support", "-"), _num(row.get("ap")),
                 _num(row.get("f1")), f"<span id='threshold-{j}'>{thresholds[j]:.2f}</span>"]
        if sliders:
            cells += [f"<input type='range' id='slider-{j}' min='0' max='1' step='0.01' "
                      f"value='{thresholds[j]:.2f}'>", f"<span id='precision-{j}'>-</span>",
                      f"<span id='recall-{j}'>-</span>"]
        rows.append("<tr class='label-row'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(rows) + "</table>"


def _num(value):
    return "-" if value is None else f"{value:.3f}"


def _galleries(predictor, paths, y, scores, per_gallery):
    """For each label: the positives it scored lowest below threshold, the negatives highest above.

    Each thumbnail carries the label's Grad-CAM heat map where the model
    has a feature map to explain (every built-in image model); otherwise
    the plain image is shown.
    """
    names, thresholds = predictor.vocabulary.classes_, predictor.thresholds
    parts = ["<h2>Most confident mistakes</h2><p>Thumbnails carry the label's Grad-CAM heat map "
             "(red: where its evidence is strongest) where the model allows it.</p>"]
    for j, name in enumerate(names):
        on = scores[:, j] >= thresholds[j]
        misses = np.flatnonzero((y[:, j] == 1) & ~on)
        alarms = np.flatnonzero((y[:, j] == 0) & on)
        misses = misses[np.argsort(scores[misses, j])][:per_gallery]
        alarms = alarms[np.argsort(-scores[alarms, j])][:per_gallery]
        parts.append(f"<h3>{html.escape(name)}</h3>")
        for kind, chosen in (("missed", misses), ("false alarms", alarms)):
            pictures = _thumbnails(predictor, [paths[i] for i in chosen], j)
            figures = "".join(
                f"<figure>{_img(png)}<figcaption>{scores[i, j]:.2f} "
                f"{html.escape(os.path.basename(paths[i]))}</figcaption></figure>"
                for i, png in zip(chosen, pictures))
            parts.append(f"<div class='gallery' data-label='{html.escape(name)}' "
                         f"data-kind='{kind}'><b>{kind}</b> ({len(chosen)}): "
                         f"{figures or 'none'}</div>")
    return "".join(parts)


def _thumbnails(predictor, paths, label_index):
    """PNG thumbnails of ``paths``, with the label's Grad-CAM where the model allows it."""
    if not paths:
        return []
    images = load_images(paths, THUMB)
    try:
        from multilabel_keras.inference.explain import grad_cam

        heat, _ = grad_cam(predictor.model, load_images(paths, predictor.image_size), label_index)
        heat = [cv2.resize(np.asarray(h, np.float32), (THUMB, THUMB)) for h in heat]
    except (ValueError, TypeError):  # no 4-D feature layer to explain: plain thumbnails
        heat = [None] * len(paths)
    pictures = []
    for image, h in zip(images, heat):
        bgr = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2BGR)
        if h is not None:
            colours = cv2.applyColorMap(np.uint8(255 * np.clip(h, 0, 1)), cv2.COLORMAP_JET)
            bgr = cv2.addWeighted(bgr, 0.6, colours, 0.4, 0)
        ok, png = cv2.imencode(".png", bgr)
        pictures.append(png.tobytes() if ok else b"")
    return pictures


def _cooccurrence(samples, vocabulary):
    from multilabel_keras.data.diagnostics import label_statistics, plot_cooccurrence

    stats = label_statistics(samples, vocabulary)
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "cooccurrence.png")
        plot_cooccurrence(stats["cooccurrence"], stats["cooccurrence_labels"], path)
        with open(path, "rb") as f:
            return "<h2>Label co-occurrence</h2>" + _img(f.read(), "plot")

