"""Progress of the long steps (validation, cache filling, evaluation, prediction).

``progress`` wraps the iterable a step loops over. What it shows follows the commands'
``progress`` setting (``ProgressMode``), which each caller passes down as an argument:

- ``auto``: a tqdm bar on stderr when stderr is a terminal, else ``log``.
- ``log``: a logging INFO line about every 10% (``validate: 30% (201/670) 12.3 s``) and a final
  line; without a known total, a line every ``LOG_EVERY_S`` seconds with the count so far.
- ``off``: nothing.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger(__name__)
# Log mode: a line per this fraction of a known total; every this many seconds without one.
LOG_STEP = 0.1
LOG_EVERY_S = 10.0


class ProgressMode(StrEnum):
    """How long steps report progress (the commands' ``progress`` key)."""

    auto = "auto"
    log = "log"
    off = "off"


def progress(
    iterable: Iterable[T],
    *,
    desc: str,
    total: int | None = None,
    mode: str = ProgressMode.off,
    stream: IO[str] | None = None,
    logger: logging.Logger | None = None,
) -> Iterator[T]:
    """Yield the items of ``iterable`` while reporting how many have been handled.

    Args:
        iterable: what the step loops over; its items are yielded unchanged.
        desc: the step's name, first on every bar and line (``validate isic``).
        total: how many items there are; None = ``len(iterable)`` where it has one, else
            unknown (the bar and the lines then show counts and time only).
        mode: ``auto``, ``log`` or ``off`` (a ``ProgressMode`` or its value).
        stream: where a bar goes and whose ``isatty`` ``auto`` asks; None = ``sys.stderr``
            at the time of the call.
        logger: where log lines go; None = this module's logger.

    Returns:
        An iterator over the items; a loop left early ends with a ``stopped at`` line.
    """
    mode = ProgressMode(str(getattr(mode, "value", mode)))
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if mode is ProgressMode.off:
        return iter(iterable)
    stream = sys.stderr if stream is None else stream
    if mode is ProgressMode.auto and _is_terminal(stream):
        return iter(tqdm(iterable, total=total, desc=desc, file=stream, dynamic_ncols=True))
    return _logged(iterable, desc, total, logger or log)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _logged(
    iterable: Iterable[T], desc: str, total: int | None, logger: logging.Logger
) -> Iterator[T]:
    """The items of ``iterable``, with INFO lines every ``LOG_STEP`` of ``total`` (or every
    ``LOG_EVERY_S`` seconds) and a last line when the loop ends, however it ends."""
    start = time.perf_counter()
    done, next_step, next_time = 0, 1, start + LOG_EVERY_S
    steps = round(1 / LOG_STEP)
    try:
        for item in iterable:
            yield item
            done += 1
            if total:
                if done < total and done * steps >= next_step * total:
                    logger.info("%s: %s", desc, _status(done, total, time.perf_counter() - start))
                    next_step = math.floor(done * steps / total) + 1
            elif (now := time.perf_counter()) >= next_time:
                logger.info("%s: %d so far, %.1f s", desc, done, now - start)
                next_time = now + LOG_EVERY_S
    finally:
        seconds = time.perf_counter() - start
        if total and done >= total:
            logger.info("%s: %s", desc, _status(done, total, seconds))
        elif total:
            logger.info("%s: stopped at %s", desc, _status(done, total, seconds))
        elif done:
            logger.info("%s: %d done, %.1f s", desc, done, seconds)


def _status(done: int, total: int, seconds: float) -> str:
    """``30% (201/670) 12.3 s``."""
    return f"{math.floor(100 * done / total)}% ({done}/{total}) {seconds:.1f} s"
