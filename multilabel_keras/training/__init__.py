"""Training: settings (``TrainConfig``), transfer plans, the ``Trainer`` loop, and the three trainers."""

from multilabel_keras.training.compile import compile_model
from multilabel_keras.training.config import ConfigError, TrainConfig
from multilabel_keras.training.features import extract_features, train_on_features
from multilabel_keras.training.finish import TrainResult
from multilabel_keras.training.image import resume_training, train
from multilabel_keras.training.plans import TransferSchedule, fine_tune
from multilabel_keras.training.twin import train_twin
from multilabel_keras.models.surgery import unfreeze_from

__all__ = [
    "ConfigError",
    "TrainConfig",
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
