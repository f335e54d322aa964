"""multilabel_keras: multi-label image classification with Keras 3.

The public API, re-exported from the modules that define it.
"""

import importlib

# Where each public name lives. The package imports nothing heavy itself (PEP 562):
# ``multilabel-keras --help`` and ``--version`` answer without loading TensorFlow,
# and ``import multilabel_keras`` costs nothing until a name is used.
_HOMES = {
    "multilabel_keras.data": (
        "LabelVocabulary", "RandomAffine", "Samples", "from_celeba", "from_csv", "from_folders",
        "from_label_files", "from_miml", "iterative_split", "load_samples", "make_dataset",
        "split_samples", "tfrecord_dataset", "write_tfrecords",
    ),
    "multilabel_keras.decisions": ("choose_decision", "decide", "tune_thresholds"),
    "multilabel_keras.estimator": ("MultiLabelImageClassifier",),
    "multilabel_keras.data.diagnostics": ("inspect_data",),
    "multilabel_keras.inference": ("Predictor", "evaluate", "explain"),
    "multilabel_keras.inference.export": ("export_run",),
    "multilabel_keras.inference.preset": ("load_preset", "save_preset", "upload_preset"),
    "multilabel_keras.inference.report": ("write_report",),
    "multilabel_keras.models.weights_from_model": ("backbone_weights_from_h5",),
    "multilabel_keras.losses": (
        "AsymmetricLoss", "MultiLabelFocalLoss", "PairwiseSoftmaxLoss", "WeightedBinaryCrossentropy",
    ),
    "multilabel_keras.metrics": ("mean_average_precision", "multilabel_report"),
    "multilabel_keras.models": ("build_model", "list_models", "register_model"),
    "multilabel_keras.runs": ("RunDir",),
    "multilabel_keras.training": (
        "ConfigError", "TrainConfig", "TrainResult", "TransferSchedule", "compile_model", "extract_features", "fine_tune",
        "resume_training", "train", "train_on_features", "train_twin", "unfreeze_from",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name):
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'multilabel_keras' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOME_OF))


__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "RunDir",
    "TrainConfig",
    "AsymmetricLoss",
    "LabelVocabulary",
    "MultiLabelFocalLoss",
    "MultiLabelImageClassifier",
    "PairwiseSoftmaxLoss",
    "Predictor",
    "RandomAffine",
    "Samples",
    "TrainResult",
    "TransferSchedule",
    "WeightedBinaryCrossentropy",
    "backbone_weights_from_h5",
    "build_model",
    "choose_decision",
    "compile_model",
    "decide",
    "evaluate",
    "explain",
    "export_run",
    "extract_features",
    "fine_tune",
    "from_celeba",
    "from_csv",
    "from_folders",
    "from_label_files",
    "from_miml",
    "inspect_data",
    "iterative_split",
    "list_models",
    "load_preset",
    "load_samples",
    "make_dataset",
    "mean_average_precision",
    "multilabel_report",
    "register_model",
    "resume_training",
    "save_preset",
    "split_samples",
    "tfrecord_dataset",
    "train",
    "train_on_features",
    "train_twin",
    "tune_thresholds",
    "unfreeze_from",
    "upload_preset",
    "write_report",
    "write_tfrecords",
]
