"""``Trainer``: runs a run's phases and owns its state (epoch, phase, best, patience, resume point).

Keras callbacks read the trainer; nothing outside it assigns its state. The
image, twin and feature-head trainers all run their epochs through it:
after every epoch it keeps the best weights (and saves them as the run's
model), appends the history row, counts early-stopping patience, and
writes the resume state, in that order.
"""

import math
import warnings

import keras
import numpy as np

from multilabel_keras.hints import Setting, hinted
from multilabel_keras.io import atomic_path
from multilabel_keras.models.precision import with_policy
from multilabel_keras.models.surgery import unfreeze_from
from multilabel_keras.runs import RunDir, resume_state
from multilabel_keras.training.compile import compile_model


class Trainer:
    """The state of one training run and the loop over its phases.

    Args:
        model: the model whose best weights are kept and saved (the whole
            model, also when a part of it is fitted).
        monitor: the log key that decides the best epoch (maximised).
        run: the ``RunDir`` to write (``None``: keep everything in memory).
        model_file: the run file the best model is saved to (``None``:
            not saved; nothing is saved without a ``run``).
        patience: stop a phase after this many epochs without a better
            ``monitor`` (``None``: never).
        resumable: write ``resume/state.npz`` after every epoch.

    Attributes:
        epochs_done: epochs finished, all phases together.
        phase: the phase now running (``None`` without a plan).
        best, best_epoch, best_weights: the best monitored value so far, its
            epoch (1-based) and the weights it had.
        wait: epochs of this phase since the monitored value last improved.
        rows: the history, one dict per epoch.
        facts: JSON facts kept with every resume state (the linear probe's
            result, say).

    Example:
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> trainer = Trainer(model, "val_mAP", patience=2)
        >>> for value in (0.5, 0.6, 0.55, 0.58):
        ...     trainer.end_epoch({"val_mAP": value})
        >>> trainer.best, trainer.best_epoch, trainer.wait, trainer.stopped
        (0.6, 2, 2, True)
    """

    def __init__(self, model, monitor, run=None, model_file=RunDir.MODEL, patience=None,
                 resumable=False):
        self.model, self.monitor, self.run = model, monitor, run
        self.model_file = model_file if run is not None else None
        self.patience, self.resumable = patience, resumable
        self.epochs_done, self.phase, self.phase_end = 0, None, None
        self.best, self.best_epoch, self.best_weights = -math.inf, None, None
        self.wait, self.phase_best, self.stopped = 0, -math.inf, False
        self.rows, self.facts = [], {}
        self.fit_model = model
        self._saved_copy = None
        self._resume = None

    # What each epoch does.

    def end_epoch(self, logs):
        """Takes one finished epoch's logs: best, history, patience, resume state."""
        logs = dict(logs or {})
        value = logs.get(self.monitor)
        self.epochs_done += 1
        if _finite(value) and value > self.best:
            self.offer_best(value)
        row = {"epoch": len(self.rows) + 1}
        if self.phase is not None:
            row["phase"] = self.phase
        for key, item in logs.items():
            row[key] = float(np.asarray(item)) if not isinstance(item, str) else item
        self.rows.append(row)
        if self.run is not None:
            self.run.write_history(self.rows)
        if self.patience:
            if _finite(value) and value > self.phase_best:
                self.phase_best, self.wait = float(value), 0
            else:
                self.wait += 1
            self.stopped = self.wait >= self.patience
            if self.stopped:
                self.fit_model.stop_training = True
        if self.resumable:
            self.save_state()

    def offer_best(self, value, epoch=None):
        """Makes the model's current weights the best, at ``epoch`` (default: the last one done).

        The linear probe offers its head as epoch 0: fine-tuning is kept
        only where it beats it.
        """
        self.best = float(value)
        self.best_epoch = self.epochs_done if epoch is None else epoch
        self.best_weights = [np.array(w) for w in self.model.get_weights()]
        if self.model_file is not None:
            self._save_model(self.model)

    def keep_fact(self, key, value):
        """Keeps a JSON fact with every resume state from now on (the linear probe's result)."""
        self.facts[key] = value

    def save_state(self):
        """Writes everything a resumed run needs (see ``runs.resume_state``)."""
        done = self.phase_end if self.stopped and self.phase_end else self.epochs_done
        meta = {
            "epochs_done": done,
            "history_rows": len(self.rows),
            "best": None if self.best_epoch is None else self.best,
            "best_epoch": self.best_epoch,
            "patience": (None if not self.patience or self.stopped else
                         {"best": None if self.phase_best == -math.inf else self.phase_best,
                          "wait": self.wait}),
            **self.facts,
            "facts": sorted(self.facts),
        }
        resume_state.save_state(self.run, self.fit_model, meta, self.best_weights)

    def resume_from(self, state, rows):
        """Takes up a killed run's state (``runs.resume_state.load_resume``) and its history rows."""
        state = state or {}
        self.epochs_done = int(state.get("epochs_done", 0))
        self.rows = list(rows[:state.get("history_rows", 0)]) if self.epochs_done else []
        if state.get("best_epoch") is not None:
            self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        patience = state.get("patience") or {}
        self.phase_best = -math.inf if patience.get("best") is None else float(patience["best"])
        self.wait = int(patience.get("wait", 0))
        # States written before facts were listed hold these two.
        kept = state.get("facts")
        if not isinstance(kept, list):
            kept = ("linear_probe", "learning_rate_range_test")
        self.facts = {k: state[k] for k in kept if isinstance(k, str) and k in state}
        self._resume = self.epochs_done if self.epochs_done else None

    # The loop.

    def fit_phases(self, fit_model, phases, train_data, steps, loss, callbacks=(), verbose=1,
                   validation_data=None, loss_weights=None):
        """Runs the epochs of each phase, unfreezing and recompiling where a phase says so.

        Args:
            fit_model: the compiled model to fit (phase 1 compiled by the
                caller); it is ``model`` or shares its layers.
            phases: the plan's ``Phase`` list (see ``plans.Plan.phases``).
            train_data: ``train_data(augment, start_batch)`` -> repeating
                dataset whose first batch is batch ``start_batch`` of the run.
            steps: batches per epoch (``None``: one pass over a finite dataset).
            loss: the loss (or dict of them) phase 1 was compiled with.
            callbacks: callbacks that add to the epoch logs (``ExactMAP``),
                run before the trainer reads them.
            verbose: Keras verbosity.
            validation_data: passed to ``fit``.
            loss_weights: per-output loss weights (several outputs).

        Returns:
            None; afterwards the model holds the best weights.
        """
        self.fit_model = fit_model
        start = self._resume or 0
        done, skipped = 0, None
        for phase in phases:
            end = done + phase.epochs
            if phase.unfreeze_from is not None:
                unfreeze_from(fit_model, phase.unfreeze_from)
            if end <= start:  # done before the run was killed: only its set-up is repeated
                done, skipped = end, phase.optimizer or skipped
                continue
            optimizer, skipped = phase.optimizer or skipped, None
            if optimizer is not None:
                compile_model(fit_model, loss=loss, optimizer=optimizer, loss_weights=loss_weights)
            first = max(done, start)
            self.phase, self.phase_end = phase.number, end
            if first == done:  # a phase starts: its early-stopping count starts too
                self.phase_best, self.wait, self.stopped = -math.inf, 0, False
            if self._resume is not None:
                self._restore(phase.optimizer is not None and first == done, first == done)
            fit_model.fit(train_data(phase.augment, first * (steps or 0)), initial_epoch=first,
                          epochs=end, steps_per_epoch=steps, verbose=verbose, shuffle=False,
                          callbacks=[*callbacks, _TrainerCallback(self)],
                          validation_data=validation_data)
            self.epochs_done = self.phase_end if self.stopped else self.epochs_done
            done = end
        if self._resume is not None:
            self._restore(True, True)  # killed after its last epoch: only the files were left

    def _restore(self, fresh_optimizer, at_phase_start):
        self._resume = None
        best = resume_state.restore(self.fit_model, self.run, fresh_optimizer)
        if best is not None:
            self.best_weights = best
            if at_phase_start:  # as the uninterrupted run, whose last phase ended on its best
                self.model.set_weights(best)

    def end_phase(self):
        """At the end of each ``fit``: the model goes back to its best weights so far."""
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def finish(self):
        """After the last phase: the model holds its best weights, and the model file exists.

        The file is written with the last weights when no epoch was ever
        best (the monitored value was never finite: a validation split
        without positives, say); the run still needs its model.
        """
        self.end_phase()
        if self.best_weights is None and self.model_file is not None:
            self._save_model(self.model)
        if self.still_improving():
            warnings.warn(hinted(
                UserWarning, f"{self.monitor} was still improving at the last epoch "
                f"({self.best_epoch} of {self.epochs_done}): the model is likely under-trained; "
                f"more epochs would likely help (", Setting("epochs", 2 * self.epochs_done), ")"),
                stacklevel=3)

    def still_improving(self):
        """Whether a run's validation score was best at its last epoch, with no early stop.

        Only for a run folder's trainer (a user's run, not an inner fit)
        with at least 3 epochs and a validation score to judge by.

        Example:
            >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            >>> trainer = Trainer(model, "val_mAP", run=None)
            >>> for value in (0.5, 0.6, 0.7):
            ...     trainer.end_epoch({"val_mAP": value})
            >>> trainer.run = RunDir("run")  # only a run folder's trainer advises
            >>> trainer.still_improving()
            True
        """
        return (self.run is not None and self.monitor.startswith("val_") and not self.stopped
                and self.epochs_done >= 3 and self.best_epoch == self.epochs_done)

    def _save_model(self, model):
        # An uncompiled float32 copy: a third of the size, no optimizer, loads with safe_mode.
        if self._saved_copy is None:
            self._saved_copy = inference_copy(model) or model
        target = self._saved_copy
        if target is not model:
            target.set_weights(model.get_weights())
        with atomic_path(self.run.file(self.model_file)) as tmp:
            target.save(tmp)


class _TrainerCallback(keras.callbacks.Callback):
    """Hands each epoch's logs to the trainer (placed after the callbacks that add to them)."""

    def __init__(self, trainer):
        super().__init__()
        self.trainer = trainer

    def on_epoch_end(self, epoch, logs=None):
        self.trainer.end_epoch(logs)

    def on_train_end(self, logs=None):
        self.trainer.end_phase()


def inference_copy(model):
    """An uncompiled float32 copy of a functional model (same layers, fresh variables).

    Returns:
        The copy, or ``None`` for a subclassed model without ``get_config``
        (it is saved as it is).

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> inference_copy(model).output_shape
        (None, 2)
    """
    # clone_model would carry the compile state over; from_config does not.
    try:
        copy = model.__class__.from_config(model.get_config())
    except (NotImplementedError, TypeError, ValueError):
        return None
    # A model trained in bfloat16 is saved computing in float32, as every run's model is.
    return with_policy(copy, "float32")


def _finite(value):
    return value is not None and math.isfinite(value)
