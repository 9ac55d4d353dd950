"""Fingerprints of a dataset's files, and the MLflow dataset inputs of a run built from them.

A fingerprint hashes each file's path, TIFF page, size and modification time: no pixel is read,
so fingerprinting thousands of files takes milliseconds, and any copy, edit or replacement of a
file changes it. The validation record (``segkit.data.validate``), the foreground-fraction cache
(``segkit.data.strata``) and the digest of each split a run logs as an MLflow dataset input all
key on it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from segkit.data.index import DatasetIndex, Sample

# MLflow's dataset digests are short (the UI shows them beside the name); 16 hex digits of
# SHA-1 keep accidental collisions out of reach for any number of dataset versions.
DIGEST_LENGTH = 16


def fingerprint(samples: Iterable[Sample], salt: str = "", masks_only: bool = False) -> str | None:
    """SHA-1 (hex) of ``salt`` and every file of ``samples``: path, page, size, mtime.

    Args:
        samples: the samples whose files are hashed, in order.
        salt: settings the fingerprinted result also depends on (a mode, a label table).
        masks_only: hash the mask files only (what a mask statistic depends on).

    Returns:
        The hex digest, or None when a file is missing (the caller then reads for real and
        reports it).
    """
    digest = hashlib.sha1(salt.encode())
    for sample in samples:
        for path in sample.mask_files if masks_only else sample.files:
            try:
                stat = os.stat(path)
            except OSError:
                return None
            digest.update(f"{path}\0{sample.page}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def dataset_inputs(index: DatasetIndex, name: str, root: str) -> list[dict]:
    """The splits of ``index`` as MLflow dataset inputs: one per non-empty split.

    Each is a dict with ``name`` (``<dataset>-<split>``), ``digest`` (the split's file
    fingerprint, so a run on changed files shows another digest), ``source`` (the dataset
    root), ``context`` (the split) and ``profile`` (sample and file counts).
    """
    inputs = []
    for split, samples in index.splits.items():
        if not samples:
            continue
        digest = fingerprint(samples) or "missing-files"
        inputs.append(
            {
                "name": f"{name}-{split}",
                "digest": digest[:DIGEST_LENGTH],
                "source": str(root),
                "context": split,
                "profile": {
                    "num_samples": len(samples),
                    "num_files": sum(len(s.files) for s in samples),
                },
            }
        )
    return inputs
