"""What the CLI shows while it waits: a spinner before the first event, a line per retry.

The spinner is drawn only on a terminal (never into a pipe or a log file)
and erased before anything else is written. Retries are invisible in the
event stream (see ``_runtime/fallback.py``); the fallback loop logs each one
on the ``modelwire.retry`` logger, which :func:`retry_lines` prints.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Waiting", "retry_lines"]

_FRAMES = "|/-\\"


class Waiting:
    """A spinner on ``stream`` from :meth:`start` to the first :meth:`stop`; a no-op off a terminal."""

    def __init__(self, stream: TextIO, enabled: bool = True, label: str = "waiting for the first token") -> None:
        isatty = getattr(stream, "isatty", None)
        self.stream = stream
        self.enabled = enabled and bool(isatty and isatty())
        self.label = label
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="modelwire-spinner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    break
                self.stream.write(f"\r{_FRAMES[n % len(_FRAMES)]} {self.label}")
                self.stream.flush()
            n += 1
            self._stop.wait(0.1)

    def stop(self) -> None:
        """Erase the spinner (idempotent); call before writing anything else."""
        if self._thread is None or self._stop.is_set():
            self._stop.set()
            return
        with self._lock:
            self._stop.set()
            self.stream.write("\r" + " " * (len(self.label) + 2) + "\r")
            self.stream.flush()
        self._thread.join()


class _LineHandler(logging.Handler):
    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.INFO)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            isatty = getattr(self.stream, "isatty", None)
            erase = "\r\x1b[K" if isatty and isatty() else ""  # over the spinner, if any
            self.stream.write(f"{erase}{record.getMessage()}\n")
            self.stream.flush()
        except Exception:  # pragma: no cover - logging must never break a call
            self.handleError(record)


@contextmanager
def retry_lines(stream: TextIO) -> Iterator[None]:
    """Print each ``modelwire.retry`` record as one line on ``stream`` while the block runs."""
    logger = logging.getLogger("modelwire.retry")
    handler = _LineHandler(stream)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
