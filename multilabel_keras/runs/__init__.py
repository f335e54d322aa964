"""The run folder: its files, bounded reads, atomic writes, lock and resume state."""

from multilabel_keras.runs.folder import RunDir

__all__ = ["RunDir"]
