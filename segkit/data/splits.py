"""The train/val/test split of a dataset's samples: official, from id lists, or drawn by seed.

A split drawn at random is a pure function of the sample ids, the fractions and the seed, so the
same dataset splits the same way on every machine. Ids that a list file names but the dataset
lacks are recorded as problems (``segkit.data.validate`` raises them with the rest).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segkit.core.errors import DataError
from segkit.core.naming import SPLITS
from segkit.data.index import IMAGE_SUFFIXES, Sample


def assemble_splits(
    pool: list[Sample],
    official: dict[str, list[Sample]],
    split,
    source: str,
    problems: list[str],
) -> tuple[dict[str, list[Sample]], dict[str, str]]:
    """The train/val/test split of a dataset, and how each split was made.

    With ``split.files`` set, every split is read from ``<files>/<split>.txt`` (ids of ``pool``
    and ``official`` samples). Otherwise the dataset's ``official`` splits are kept and each
    missing val/test split is drawn from ``pool`` at random (``split.val``, ``split.test``,
    ``split.seed``); what is left of ``pool`` trains.

    Args:
        pool: samples that train unless drawn into val/test.
        official: splits the dataset defines itself (folders or list files).
        split: the ``dataset.split`` config node.
        source: how ``pool`` reads in the origin record, e.g. a folder name.
        problems: list that unknown ids in split files are appended to.
    """
    if split.files:
        return _splits_from_files(pool + [s for v in official.values() for s in v], split, problems)
    if split.get("folds") is not None:
        return fold_splits(pool, official, split, source)
    drawn = random_split(
        pool,
        val=0.0 if "val" in official else split.val,
        test=0.0 if "test" in official else split.test,
        seed=split.seed,
    )
    splits = {name: official.get(name, drawn[name]) for name in SPLITS}
    random_origin = f"random from {source} (seed {split.seed})"
    origin = {
        name: "official" if name in official else random_origin if splits[name] else "none"
        for name in SPLITS
    }
    # The training split is the dataset's own only if nothing was drawn out of it.
    if len(splits["train"]) == len(pool):
        origin["train"] = "official"
    return splits, origin


def random_split(
    samples: list[Sample], val: float, test: float, seed: int
) -> dict[str, list[Sample]]:
    """Deterministic split by fractions: the same ids, fractions and seed give the same split.

    The order of ``samples`` does not matter (they are sorted by id first). A non-zero fraction
    gets at least one sample, so a small dataset still validates.
    """
    ordered = sorted(samples, key=lambda s: s.id)
    order = np.random.default_rng(seed).permutation(len(ordered))
    shuffled = [ordered[i] for i in order]
    n = len(shuffled)
    n_val = max(1, round(val * n)) if val > 0 else 0
    n_test = max(1, round(test * n)) if test > 0 else 0
    if n and n - n_val - n_test < 1:
        raise DataError(
            f"dataset.split: {n} samples cannot be split into val={val} and test={test} with "
            "any left to train on"
        )
    return {
        "train": shuffled[n_val + n_test :],
        "val": shuffled[:n_val],
        "test": shuffled[n_val : n_val + n_test],
    }


def fold_splits(
    pool: list[Sample], official: dict[str, list[Sample]], split, source: str
) -> tuple[dict[str, list[Sample]], dict[str, str]]:
    """Fold ``split.fold`` of a ``split.folds``-fold cross-validation, and how it was made.

    The test split is the dataset's official one, else drawn from ``pool`` by ``split.test``
    and ``split.seed`` exactly as without folds, so it is the same for every fold. The rest of
    ``pool`` and an official val split form the fold pool (named in the origin record), cut
    into ``folds`` folds of near-equal size by ``split.seed``; fold ``fold`` validates, the
    others train. ``split.val`` does not apply.

    Raises:
        DataError: fewer samples in the fold pool than folds.
    """
    folds, fold, seed = int(split.folds), int(split.fold), int(split.seed)
    if "test" in official:
        test, rest, test_origin = official["test"], pool, "official"
    else:
        drawn = random_split(pool, val=0.0, test=split.test, seed=seed)
        test, rest = drawn["test"], drawn["train"]
        test_origin = f"random from {source} (seed {seed})" if test else "none"
    fold_pool = sorted(rest + official.get("val", []), key=lambda s: s.id)
    if len(fold_pool) < folds:
        raise DataError(
            f"dataset.split.folds={folds}: the train+val pool has only {len(fold_pool)} samples, "
            "fewer than the folds"
        )
    val, train = fold_members(fold_pool, assign_folds(len(fold_pool), folds, seed), fold)
    members = source + (" + official val" if "val" in official else "")
    origin = {
        "train": f"folds other than {fold} of {folds} over {members} (seed {seed})",
        "val": f"fold {fold} of {folds} over {members} (seed {seed})",
        "test": test_origin,
    }
    return {"train": train, "val": val, "test": test}, origin


def assign_folds(n: int, folds: int, seed: int, strata=None) -> np.ndarray:
    """The fold of each of ``n`` samples (sorted by id), near-equal folds drawn by ``seed``.

    With ``strata`` (a value per sample, e.g. its foreground fraction), the samples are
    ranked by it and each run of ``folds`` neighbours in that order is dealt one to a fold in a
    random order: every fold gets a like share of low and high values.
    """
    # A stream of its own (seed and K), so the folds do not depend on how the test was drawn.
    rng = np.random.default_rng([seed, folds])
    fold_of = np.empty(n, np.int64)
    if strata is None:
        for k, part in enumerate(np.array_split(rng.permutation(n), folds)):
            fold_of[part] = k
        return fold_of
    # Stable sort: ties keep the id order, so the same pool gives the same folds everywhere.
    ranked = np.argsort(np.asarray(strata, np.float64), kind="stable")
    for start in range(0, n, folds):
        block = ranked[start : start + folds]
        fold_of[block] = rng.permutation(folds)[: len(block)]
    return fold_of


def fold_members(
    pool: list[Sample], fold_of: np.ndarray, fold: int
) -> tuple[list[Sample], list[Sample]]:
    """(validation, training) samples of ``fold`` given each pool sample's fold."""
    val = [s for s, k in zip(pool, fold_of, strict=True) if k == fold]
    return val, [s for s, k in zip(pool, fold_of, strict=True) if k != fold]


def read_ids(path: Path) -> list[str]:
    """Sample ids from a list file: one per line, or the first column of a CSV.

    Blank lines and ``#`` comments are skipped; a first line ``id``/``image``/``name`` is a CSV
    header. An id may carry a file extension (``a.png`` is id ``a``).

    Raises:
        DataError: the file does not exist.
    """
    if not path.is_file():
        raise DataError(f"{path}: list file not found")
    ids = []
    for line in path.read_text().splitlines():
        value = line.split(",")[0].strip().strip('"')
        if not value or value.startswith("#"):
            continue
        if Path(value).suffix.lower() in IMAGE_SUFFIXES:
            value = Path(value).stem
        ids.append(value)
    if ids and ids[0].lower() in ("id", "ids", "image", "image_id", "name", "filename"):
        ids = ids[1:]
    return ids


def _splits_from_files(
    samples: list[Sample], split, problems: list[str]
) -> tuple[dict[str, list[Sample]], dict[str, str]]:
    folder = Path(split.files).expanduser()
    by_id = {s.id: s for s in samples}
    splits: dict[str, list[Sample]] = {}
    origin: dict[str, str] = {}
    for name in SPLITS:
        path = folder / f"{name}.txt"
        if name == "test" and not path.exists():
            splits[name], origin[name] = [], f"none ({path} absent)"
            continue
        try:
            ids = read_ids(path)
        except DataError as error:
            problems.append(f"dataset.split.files: {error}")
            ids = []
        problems += [f"{path}: id {i} is not in the dataset" for i in ids if i not in by_id]
        splits[name] = [by_id[i] for i in ids if i in by_id]
        origin[name] = f"file {path}"
    return splits, origin
