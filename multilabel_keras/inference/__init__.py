"""Inference: a saved run predicts (``Predictor``), is scored (``evaluate``) and explained (Grad-CAM)."""

from multilabel_keras.inference.evaluate import evaluate
from multilabel_keras.inference.explain import explain, grad_cam
from multilabel_keras.inference.predictor import Predictor

__all__ = ["Predictor", "evaluate", "explain", "grad_cam"]
