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


@contextlib.contextmanager
def creating(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """``replacing`` for a file that must not exist yet: the name is claimed by an exclusive
    create first, so a file that appeared meanwhile (anyone's) is never replaced.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if overwrite:
        with replacing(path) as tmp:
            yield tmp
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb"):  # the claim: empty, and ours
        pass
    try:
        with replacing(path) as tmp:
            yield tmp
    except BaseException:
        path.unlink(missing_ok=True)  # only the empty claim: the rename is the last step
        raise


def write_json(path: str | os.PathLike, value: Any) -> None:
    """``value`` as JSON in ``path``, written through ``replacing``."""
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
