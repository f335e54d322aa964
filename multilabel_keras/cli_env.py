"""The command line's process environment: quiet start-up, tolerant streams, signals, the backend.

Everything here is about the process, not a command: TensorFlow's start-up
lines kept off stderr, labels the terminal cannot encode printed escaped, a
closed pipe ended quietly, SIGTERM turned into the clean stop of Ctrl-C, and
an unusable Keras backend named in one line.
"""

import os
import sys


def import_tensorflow_quietly():
    """Imports TensorFlow with its start-up lines (oneDNN, absl, CPU features) kept off stderr.

    TensorFlow 2.21 prints them from C++ before ``TF_CPP_MIN_LOG_LEVEL`` is
    read, so only the file descriptor can hold them back; an import that
    fails still raises, and ``--debug`` shows everything.
    """
    if "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    except Exception:  # noqa: BLE001  ImportError, or Keras' ValueError on a bad KERAS_BACKEND
        pass  # the command that needs it says so
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _NoRetracingNotes:
    """Drops TensorFlow's "calls ... triggered tf.function retracing" notes."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def hide_retracing_notes():
    """Keeps TensorFlow's retracing notes off a command's output.

    The library predicts with several models and a smaller last batch, which
    TensorFlow reports as frequent retracing: a hint to the author of the
    functions, not something a user of the command can act on. ``--debug``
    keeps them.
    """
    import logging

    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _NoRetracingNotes) for f in logger.filters):
        logger.addFilter(_NoRetracingNotes())


def tolerant_streams():
    """A label the terminal's encoding cannot show is printed escaped, never a codec error."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass  # replaced by a caller (a test's capture) or closed


def silence_stdout():
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def terminated(signum, frame):
    raise KeyboardInterrupt  # the same clean stop as Ctrl-C: temporary files are removed


def keras_problem():
    """Why Keras cannot start here (an unknown ``KERAS_BACKEND``, a backend not installed), or None."""
    try:
        import keras  # noqa: F401
    except Exception as err:  # noqa: BLE001  Keras raises ValueError, ImportError …
        backend = os.environ.get("KERAS_BACKEND")
        where = f"KERAS_BACKEND={backend!r}" if backend is not None else "the Keras backend"
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return (f"Keras cannot start with {where}: {text}; set KERAS_BACKEND to tensorflow, jax "
                f"or torch (with its package installed)")
    return None


def is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
