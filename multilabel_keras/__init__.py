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
from multilabel_keras.decisions import choose_decision, decide, tune_thresholds
from multilabel_keras.inference import Predictor, evaluate, explain
from multilabel_keras.losses import (
    AsymmetricLoss,
    MultiLabelFocalLoss,
    PairwiseSoftmaxLoss,
    WeightedBinaryCrossentropy,
)
from multilabel_keras.metrics import mean_average_precision, multilabel_report
from multilabel_keras.models import build_model, list_models, register_model
from multilabel_keras.training import (
    TrainResult,
    TransferSchedule,
    compile_model,
    extract_features,
    fine_tune,
    resume_training,
    train,
    train_on_features,
    train_twin,
    unfreeze_from,
)

__version__ = "0.1.0"

__all__ = [
    "AsymmetricLoss",
    "LabelVocabulary",
    "MultiLabelFocalLoss",
    "PairwiseSoftmaxLoss",
    "Predictor",
    "RandomAffine",
    "Samples",
    "TrainResult",
    "TransferSchedule",
    "WeightedBinaryCrossentropy",
    "build_model",
    "choose_decision",
    "compile_model",
    "decide",
    "evaluate",
    "explain",
    "extract_features",
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
    "train_on_features",
    "train_twin",
    "tune_thresholds",
    "unfreeze_from",
    "write_tfrecords",
]
