"""Files written so that a crash leaves either the old version or the new one, never a cut file.

Everything segkit writes that a later process reads back (a run's state, the best checkpoint, the
backup, decoded-sample caches, a sweep's job records) goes through ``replacing``: the content is
written to a temporary name in the same folder, flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def replacing(path: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    The temporary name ends with ``path``'s own name, so writers that choose the format by the
    suffix (Keras' ``.keras`` and ``.weights.h5``, numpy's ``.npz``) write the same format, and
    is unique, so that concurrent writers of the same file never mix their bytes. ``durable``
    flushes the file to disk before the rename (a cache that can be rebuilt may skip it). On an
    error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, value: Any) -> None:
    """``value`` as JSON in ``path``, written through ``replacing``."""
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
