"""The foreground fraction of each sample, what k-fold splits of a binary dataset are
stratified by (``segkit.data.splits.assign_folds``).

A fraction is the share of a mask's pixels whose class is 1, read through the dataset's label
table from the mask's histogram (so a mask with invalid values does not fail here: the dataset
validation reports it with the rest). Reading every mask of a full-size dataset takes a while,
so the fractions are cached under ``<cache_dir>/foreground/``, keyed by the mask files' paths,
sizes and modification times and the label table: a sweep's folds read the masks once.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from segkit.core.atomic import write_json
from segkit.data.decode import read_mask
from segkit.data.fingerprint import fingerprint
from segkit.data.index import DatasetIndex, Sample
from segkit.data.labels import LabelMap, histogram
from segkit.data.splits import assign_folds, fold_members

log = logging.getLogger(__name__)


def foreground_fractions(
    samples: list[Sample], labels: LabelMap, cache_dir: str | os.PathLike | None = None
) -> np.ndarray:
    """The share of class-1 pixels of each sample's mask (instance masks: their union)."""
    path = _cache_file(samples, labels, cache_dir) if cache_dir is not None else None
    if path is not None and path.is_file():
        return np.asarray(json.loads(path.read_text()), np.float64)
    foreground = np.asarray(labels.table) == 1
    fractions = []
    for sample in samples:
        counts = histogram(read_mask(sample))
        fractions.append(float(counts[foreground].sum() / max(1, counts.sum())))
    if path is not None:
        try:
            write_json(path, fractions)
        except OSError as error:  # a full or read-only cache_dir: computed again next time
            log.warning("cache_dir: cannot keep the foreground fractions (%s)", error.strerror)
    return np.asarray(fractions, np.float64)


def stratify_folds(index: DatasetIndex, split, cache_dir=None) -> None:
    """Redraw the train/val folds of ``index`` (a fold split of a binary dataset) stratified by
    foreground fraction; the test split is left as it is."""
    folds, fold, seed = int(split.folds), int(split.fold), int(split.seed)
    pool = sorted(index.splits["train"] + index.splits["val"], key=lambda s: s.id)
    strata = foreground_fractions(pool, index.labels, cache_dir)
    val, train = fold_members(pool, assign_folds(len(pool), folds, seed, strata), fold)
    index.splits["val"], index.splits["train"] = val, train
    for name in ("train", "val"):
        index.origin[name] += ", stratified by foreground fraction"


def _cache_file(samples: list[Sample], labels: LabelMap, cache_dir) -> Path | None:
    digest = fingerprint(samples, repr(labels.table), masks_only=True)
    if digest is None:  # a mask vanished: read for real, which will say so
        return None
    return Path(cache_dir).expanduser() / "foreground" / f"{digest[:24]}.json"
