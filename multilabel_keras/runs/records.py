"""The formats of a run's records: thresholds with their decision rule, calibration, epoch history.

``RunDir`` knows where these records live; this module knows what is in them.
"""

import csv
import io
import math
import os

import numpy as np

from multilabel_keras.decisions import DEFAULT_THRESHOLD, POLICIES
from multilabel_keras.io import atomic_path, read_json, read_regular, write_json

def save_thresholds(path, thresholds, class_names, source, rule=None):
    """Writes ``thresholds.json``: one threshold per label name.

    Args:
        path: destination file.
        thresholds: ``L`` floats.
        class_names: ``L`` label names, in vocabulary order.
        source: how they were chosen (e.g. ``"f1 on validation split"``).
        rule: the decision rule from ``choose_decision`` (default
            per-label thresholds).

    Returns:
        None.

    Example:
        >>> save_thresholds("run/thresholds.json", [0.4, 0.6], ["a", "b"],
        ...                 "default")
        >>> read_json("run/thresholds.json", "thresholds")["thresholds"]
        {'a': 0.4, 'b': 0.6}
    """
    thresholds = [float(t) for t in thresholds]
    if len(thresholds) != len(class_names):
        raise ValueError(f"{len(thresholds)} thresholds for {len(class_names)} labels")
    write_json(path, {"source": source, "rule": rule or {"policy": "f1"},
                      "thresholds": dict(zip(class_names, thresholds))})


def load_rule(path):
    """Reads the decision rule of a ``thresholds.json`` (per-label thresholds if absent).

    Args:
        path: the ``thresholds.json`` file.

    Returns:
        The rule dict (``{"policy": "f1"}``, ``{"policy": "top_k", "k": 2}`` …).

    Example:
        >>> load_rule("run/thresholds.json")
        {'policy': 'f1'}
    """
    if not os.path.lexists(path):
        return {"policy": "fixed"}
    rule = read_json(path, "thresholds file").get("rule") or {"policy": "f1"}
    if not isinstance(rule, dict) or rule.get("policy") not in POLICIES:
        raise ValueError(f"thresholds file {path}: 'rule' must name a policy in {POLICIES}")
    if rule["policy"] == "top_k" and not (isinstance(rule.get("k"), int) and rule["k"] >= 1):
        raise ValueError(f"thresholds file {path}: top_k needs an integer k >= 1")
    return rule


def load_thresholds(path, class_names):
    """Reads ``thresholds.json`` and orders it like ``class_names``.

    A missing file means the default 0.5 for every label.

    Args:
        path: the ``thresholds.json`` file.
        class_names: the vocabulary's label names.

    Returns:
        ``np.ndarray`` of ``L`` thresholds.

    Example:
        >>> labels = read_json("run/labels.json", "labels")["classes"]
        >>> load_thresholds("run/thresholds.json", labels).shape
        (6,)
    """
    if not os.path.lexists(path):
        return np.full(len(class_names), DEFAULT_THRESHOLD)
    data = read_json(path, "thresholds file")
    table = data.get("thresholds") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise ValueError(f"thresholds file {path} must hold {{'thresholds': {{label: value}}}}")
    missing = [name for name in class_names if name not in table]
    extra = sorted(set(table) - set(class_names))
    if missing or extra:
        raise ValueError(
            f"thresholds file {path} does not match the labels: "
            f"missing {missing}, unknown {extra}"
        )
    values = [table[name] for name in class_names]
    bad = [(n, v) for n, v in zip(class_names, values)
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1]
    if bad:
        shown = ", ".join(f"{n!r}: {v!r}" for n, v in bad[:5])
        raise ValueError(f"thresholds file {path}: thresholds must be numbers in [0, 1], got "
                         f"{shown}")
    return np.asarray(values, dtype=np.float64)


def save_calibration(path, temperatures, class_names, errors):
    """Writes ``calibration.json``: one temperature per label name, and what it changed.

    Args:
        path: destination file.
        temperatures: ``L`` temperatures (see ``decisions.fit_temperatures``).
        class_names: ``L`` label names, in vocabulary order.
        errors: ``{"ece_before": x, "ece_after": y}`` on the validation split.

    Returns:
        None.

    Example:
        >>> save_calibration("run/calibration.json", [1.0, 2.5], ["a", "b"],
        ...                  {"ece_before": 0.2, "ece_after": 0.05})
        >>> load_calibration("run/calibration.json", ["a", "b"]).tolist()
        [1.0, 2.5]
    """
    temperatures = [float(t) for t in temperatures]
    if len(temperatures) != len(class_names):
        raise ValueError(f"{len(temperatures)} temperatures for {len(class_names)} labels")
    write_json(path, {"method": "temperature",
                      "applies": "score = sigmoid(logit(p) / temperature), per label",
                      "fitted_on": "the validation split", **errors,
                      "temperatures": dict(zip(class_names, temperatures))})


def load_calibration(path, class_names):
    """Reads ``calibration.json`` ordered like ``class_names``; ``None`` when the run has none.

    Args:
        path: the ``calibration.json`` file.
        class_names: the vocabulary's label names.

    Returns:
        ``np.ndarray`` of ``L`` temperatures, or ``None``.

    Example:
        >>> load_calibration("run/none.json", ["a"]) is None
        True
    """
    if not os.path.lexists(path):
        return None
    data = read_json(path, "calibration file")
    table = data.get("temperatures") if isinstance(data, dict) else None
    if not isinstance(table, dict) or data.get("method") != "temperature":
        raise ValueError(f"calibration file {path} must hold {{'method': 'temperature', "
                         f"'temperatures': {{label: value}}}}")
    missing = [name for name in class_names if name not in table]
    extra = sorted(set(table) - set(class_names))
    if missing or extra:
        raise ValueError(f"calibration file {path} does not match the labels: "
                         f"missing {missing}, unknown {extra}")
    values = [table[name] for name in class_names]
    bad = [n for n, v in zip(class_names, values)
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf]
    if bad:
        raise ValueError(f"calibration file {path}: temperatures for {bad} are not finite numbers > 0")
    return np.asarray(values, dtype=np.float64)


def write_history(path, rows):
    """Writes history rows (dicts) to a CSV file atomically.

    Args:
        path: destination file.
        rows: list of dicts; the header is the union of their keys.

    Returns:
        None.

    Example:
        >>> write_history("run/log.csv", [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}])
        >>> open("run/log.csv").read().splitlines()
        ['epoch,loss', '1,0.5', '2,0.4']
    """
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)


def read_history(path):
    """Reads a history CSV into a list of dicts of floats.

    Args:
        path: a ``history.csv`` file.

    Returns:
        List of dicts (empty cells become ``nan``; ``epoch`` and ``phase``
        are integers, so rows written back read the same).

    Example:
        >>> rows = read_history("run/history.csv")
        >>> [row["epoch"] for row in rows], isinstance(rows[0]["val_mAP"], float)
        ([1, 2], True)
    """
    if not os.path.lexists(path):
        return []
    text = read_regular(path, "history file").decode("utf-8", errors="replace")
    try:
        rows = [
            {k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
            for row in csv.DictReader(io.StringIO(text, newline=""))
        ]
    except (TypeError, ValueError, csv.Error) as err:
        raise ValueError(f"history file {path} is not a history written by training: {err}") from None
    for row in rows:
        for key in ("epoch", "phase"):
            if key in row and math.isfinite(row[key]) and row[key] == int(row[key]):
                row[key] = int(row[key])
    return rows
