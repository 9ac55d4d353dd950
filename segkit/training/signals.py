"""SIGTERM handled like Ctrl-C, so that runs and sweeps end their MLflow runs when stopped, and
during training both stop at the next step, after a backup
(``segkit.training.callbacks.StopOnSignal``)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Raise ``KeyboardInterrupt`` on SIGTERM (Slurm's pre-emption notice, `kill`) meanwhile.

    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopRequest:
    """Set by Ctrl-C or SIGTERM during training: ``signum`` is the signal, None until then."""

    def __init__(self) -> None:
        self.signum: int | None = None


@contextlib.contextmanager
def stop_at_next_step(request: StopRequest) -> Iterator[StopRequest]:
    """Turn the first SIGINT/SIGTERM into a request to stop (``StopOnSignal`` acts on it at the
    next training step, after a backup); a second signal interrupts at once.

    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def note(signum, frame):
        if request.signum is not None:
            raise KeyboardInterrupt(f"signal {signum}")
        request.signum = signum

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
