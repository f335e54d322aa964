"""Progress of long steps (checking images, extracting features, predicting, evaluating).

A bar is drawn on standard error, and only when standard error is a
terminal: in a pipe, a log file, a test or after ``quiet()`` (the command
line's ``--quiet``) nothing is written. Standard output stays for results
(``predict``'s JSON lines).
"""

import sys
import time

_QUIET = False


def quiet(on=True):
    """Turns every progress bar of this process off (or on again).

    Args:
        on: True to silence the bars.

    Returns:
        None.

    Example:
        >>> quiet(); quiet(False)
    """
    global _QUIET
    _QUIET = bool(on)


class Progress:
    """A one-line bar, ``what  37/120 [=====>      ] 12.3/s``, redrawn at most ten times a second.

    Args:
        total: the number of items (``None``: unknown; the count alone is shown).
        what: a few words naming the step.
        stream: where to draw (default: standard error, looked up when used).
        enabled: False for a bar that never draws (a caller's ``verbose=0``).

    Example:
        >>> bar = Progress(3, "checking images")
        >>> for _ in range(3):
        ...     bar.update()
        >>> bar.close()
    """

    def __init__(self, total, what, stream=None, enabled=True):
        self.total, self.what, self.done, self.enabled = total, what, 0, enabled
        self.stream = stream
        self.start = self.last = time.monotonic()
        self.shown = False

    def _out(self):
        stream = self.stream or sys.stderr
        if _QUIET or not self.enabled:
            return None
        try:
            return stream if stream.isatty() else None
        except (AttributeError, ValueError):
            return None

    def update(self, count=1):
        """Adds ``count`` finished items; redraws when a tenth of a second has passed."""
        self.done += count
        now = time.monotonic()
        if now - self.last >= 0.1 or (self.total is not None and self.done >= self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now):
        out = self._out()
        if out is None:
            return
        rate = self.done / max(now - self.start, 1e-9)
        if self.total:
            filled = int(30 * min(self.done / self.total, 1.0))
            bar = "=" * max(filled - 1, 0) + (">" if filled < 30 else "=") + " " * (30 - filled)
            text = f"{self.what} {self.done}/{self.total} [{bar[:30]}] {rate:.1f}/s"
        else:
            text = f"{self.what} {self.done} {rate:.1f}/s"
        out.write("\r" + text)
        out.flush()
        self.shown = True

    def close(self):
        """Ends the line (if a bar was drawn)."""
        if self.shown:
            out = self._out()
            if out is not None:
                out.write("\n")
                out.flush()
            self.shown = False
