"""Training: one compile path, the fit loop and transfer schedule, run directories, resume."""

from multilabel_keras.training.compile import compile_model
from multilabel_keras.training.features import extract_features, train_on_features
from multilabel_keras.training.fit import train
from multilabel_keras.training.resume_run import resume_training
from multilabel_keras.training.run_dir import TrainResult
from multilabel_keras.training.schedule import TransferSchedule, fine_tune, unfreeze_from
from multilabel_keras.training.twin import train_twin

__all__ = [
    "TrainResult",
    "TransferSchedule",
    "compile_model",
    "extract_features",
    "fine_tune",
    "resume_training",
    "train",
    "train_on_features",
    "train_twin",
    "unfreeze_from",
]
