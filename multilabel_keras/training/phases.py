"""The fit loop over a run's phases, with early stopping a resumed run can pick up."""

import math

import keras

from multilabel_keras.training.compile import compile_model
from multilabel_keras.training.schedule import unfreeze_from


class Patience(keras.callbacks.Callback):
    """Early stopping whose counter can be saved and restored.

    Stops training after ``patience`` epochs in a row without a higher
    ``monitor`` value (Keras' ``EarlyStopping`` with ``mode="max"``). Its
    ``state`` goes into a run's resume file, so a run killed and resumed
    stops at the same epoch as the uninterrupted one.

    Args:
        monitor: the log key to maximise.
        patience: epochs without improvement before stopping.
        state: a ``state`` dict saved earlier, or ``None``.

    Example:
        >>> stop = Patience("val_mAP", 2)
        >>> [stop.update(value) for value in (0.5, 0.6, 0.55, 0.58)]
        [False, False, False, True]
        >>> stop.state, stop.stop
        ({'best': 0.6, 'wait': 2}, True)
    """

    def __init__(self, monitor, patience, state=None):
        super().__init__()
        self.monitor, self.patience = monitor, int(patience)
        state = state or {}
        self.best = -math.inf if state.get("best") is None else float(state["best"])
        self.wait = int(state.get("wait", 0))
        self.stop = False

    @property
    def state(self):
        return {"best": None if self.best == -math.inf else self.best, "wait": self.wait}

    def update(self, value):
        if value is not None and math.isfinite(value) and value > self.best:
            self.best, self.wait = float(value), 0
        else:
            self.wait += 1
        self.stop = self.wait >= self.patience
        return self.stop

    def on_epoch_end(self, epoch, logs=None):
        if self.update((logs or {}).get(self.monitor)):
            self.model.stop_training = True


def fit_phases(model, phases, schedule, train_data, steps, callbacks, history, loss, monitor,
               patience=None, verbose=1, validation_data=None, start_epoch=0,
               before_first_fit=None, loss_weights=None, patience_state=None, saver=None):
    """Runs the epochs of each phase, recompiling with a fresh optimizer where a phase needs one.

    Args:
        model: the compiled model (phase 1 compiled by the caller).
        phases: ``(phase, epochs, augment)`` triples (phase ``None``: no
            schedule).
        schedule: the ``TransferSchedule`` or ``None``.
        train_data: ``train_data(augment, start_batch)`` -> repeating
            dataset whose first batch is batch ``start_batch`` of the run.
        steps: batches per epoch.
        callbacks: callbacks shared by every phase.
        history: the ``HistoryCSV`` among them (gets the ``phase`` column).
        loss: the loss object (or dict of them) phase 1 was compiled with;
            later phases recompile with it through ``compile_model``.
        monitor: the key early stopping watches (maximised).
        patience: early-stopping patience per phase, or ``None``.
        verbose: Keras verbosity.
        validation_data: passed to ``fit``.
        start_epoch: epochs already done (a resumed run skips them).
        before_first_fit: called once as ``before_first_fit(fresh, at_start)``
            after the compile of the first phase that runs: ``at_start``
            is true when a resumed run starts exactly where that phase
            begins (the phase before ended by restoring its best weights),
            ``fresh`` when that phase also starts a new optimizer, so the
            saved optimizer state is not its own.
        loss_weights: per-output loss weights (several outputs).
        patience_state: the early-stopping counter of the phase being
            resumed.
        saver: a ``resume.ResumeState`` (last among the callbacks); it is
            told where each phase ends and is given the phase's
            early-stopping counter.

    Returns:
        None.

    Example:
        >>> fit_phases(model, schedule.phases(), schedule, data_fn, 10, cbs, hist,
        ...            loss, "val_mAP")  # doctest: +SKIP
    """
    done, unfrozen = 0, False
    for phase, phase_epochs, with_augmentation in phases:
        end = done + phase_epochs
        if end <= start_epoch:
            done = end
            continue
        fresh = False
        if phase is not None and phase > 1 and (not unfrozen or schedule.optimizer == "sgd"):
            # A new SGD each phase, as the published recipe; the warm-up + cosine
            # plan spans phases 2 and 3, so its optimizer carries on.
            fresh = not unfrozen and phase == 2 or schedule.optimizer == "sgd"
            if not unfrozen:
                unfreeze_from(model, schedule.unfreeze_from)
                unfrozen = True
            compile_model(model, loss=loss, optimizer=schedule.finetune_optimizer(steps),
                          loss_weights=loss_weights)
        history.extra = {"phase": phase} if phase is not None else {}
        first = max(done, start_epoch)
        stopper = None
        if patience:
            stopper = Patience(monitor, patience, patience_state if first == start_epoch else None)
        phase_callbacks = [cb for cb in callbacks if cb is not saver]
        phase_callbacks += [cb for cb in (stopper, saver) if cb is not None]
        if saver is not None:
            saver.phase_end, saver.stopper = end, stopper
        if before_first_fit is not None:
            before_first_fit(fresh and first == done, first == done)
            before_first_fit = None
        model.fit(train_data(with_augmentation, first * steps), initial_epoch=first, epochs=end,
                  steps_per_epoch=steps, callbacks=phase_callbacks, verbose=verbose, shuffle=False,
                  validation_data=validation_data)
        done = end
