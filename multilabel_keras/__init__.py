"""multilabel_keras: multi-label image classification with Keras 3.

The public API, re-exported from the modules that define it.
"""

from multilabel_keras.data import (
    LabelVocabulary,
    RandomAffine,
    Samples,
    from_celeba,
    from_csv,
    from_folders,
    from_label_files,
    from_miml,
    iterative_split,
    load_samples,
    make_dataset,
    split_samples,
    tfrecord_dataset,
    write_tfrecords,
)
from multilabel_keras.evaluation import evaluate
from multilabel_keras.inference import Predictor
from multilabel_keras.losses import PairwiseSoftmaxLoss
from multilabel_keras.metrics import mean_average_precision, multilabel_report
from multilabel_keras.models import build_model, list_models, register_model
from multilabel_keras.schedule import TransferSchedule, fine_tune, unfreeze_from
from multilabel_keras.thresholds import tune_thresholds
from multilabel_keras.training import TrainResult, compile_model, resume_training, train

__version__ = "0.1.0"

__all__ = [
    "LabelVocabulary",
    "PairwiseSoftmaxLoss",
    "Predictor",
    "RandomAffine",
    "Samples",
    "TrainResult",
    "TransferSchedule",
    "build_model",
    "compile_model",
    "evaluate",
    "fine_tune",
    "from_celeba",
    "from_csv",
    "from_folders",
    "from_label_files",
    "from_miml",
    "iterative_split",
    "list_models",
    "load_samples",
    "make_dataset",
    "mean_average_precision",
    "multilabel_report",
    "register_model",
    "resume_training",
    "split_samples",
    "tfrecord_dataset",
    "train",
    "tune_thresholds",
    "unfreeze_from",
    "write_tfrecords",
]
