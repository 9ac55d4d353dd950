"""``python -m segkit.compare experiment=isic group_by=model.name``: repeated runs (seeds, folds)
summarised per group: n, mean ± sd and a 95% t interval of each score.

Runs are pooled only where they were scored on the same test images: each training run records
a digest of its test ids (tag ``split.test.ids``); a group whose runs saw different test sets is
shown as one row per test set, and said so.
"""

from __future__ import annotations

from segkit.core import stats
from segkit.core.errors import ConfigError

TEST_IDS = "test_images"
# The scores summarised when none are named: those ending in one of these.
DEFAULT_SCORES = ("dice", "miou", "image_dice_mean", "thresholded_jaccard", "dsb_map")


def group_columns(group_by: str) -> list[str]:
    """The params named by ``group_by=a,b``."""
    names = [p.strip() for p in group_by.split(",") if p.strip()]
    if not names:
        raise ConfigError(f"group_by={group_by!r}: expected one or more params, a,b")
    return names


def summarise_groups(table, group_by: list[str], metric: str, notes: list[str]):
    """One row per group of the finished runs of ``table`` (``segkit.compare``'s table): the
    group's params, its test set when groups span several, n and ``mean ± sd [low, high]``
    per score; also the same in long form (score, n, mean, sd, min, max, low, high) for CSV.

    Args:
        table: the runs, with the ``group_by`` params and ``test_images`` as columns.
        group_by: params that define a group.
        metric: the score the table is sorted by, summarised first.
        notes: list that messages on runs left out or kept apart are appended to.

    Raises:
        ConfigError: a ``group_by`` param that no run has.
    """
    import pandas as pd  # lazy: loaded with MLflow by compare()

    for name in group_by:
        if name not in table or table[name].isna().all():
            params = [c for c in table.columns if "." in c and ":" not in c and "/" not in c]
            raise ConfigError(
                f"group_by={name}: no run has this param; e.g. {', '.join(params[:8])}"
            )
    finished = table[table["status"] == "FINISHED"]
    if len(finished) < len(table):
        notes.append(f"{len(table) - len(finished)} run(s) not FINISHED are left out")
    scores = [metric] + [c for c in finished.columns if _is_score(c) and c != metric]
    keys = [*group_by, TEST_IDS]
    filled = finished.assign(**{k: finished[k].fillna("?") for k in keys if k in finished})
    if TEST_IDS not in filled:
        filled = filled.assign(**{TEST_IDS: "?"})
    wide, long = [], []
    for values, runs in filled.groupby(keys, sort=True):
        row = dict(zip(keys, values, strict=True))
        row["n"] = len(runs)
        for score in scores:
            found = stats.summarise(runs[score].tolist())
            if found.n:
                row[score] = found.describe()
                long.append({**dict(zip(keys, values, strict=True)), "score": score, **vars(found)})
        wide.append(row)
    out = pd.DataFrame(wide)
    split_groups = out.groupby(group_by)[TEST_IDS].nunique()
    apart = split_groups[split_groups > 1]
    for group in apart.index:
        notes.append(
            f"{_label(group_by, group)}: its runs were scored on {apart[group]} different test "
            f"sets; not pooled: one row per test set ({TEST_IDS})"
        )
    if apart.empty:
        out = out.drop(columns=[TEST_IDS])
    return out, pd.DataFrame(long)


def _is_score(column: str) -> bool:
    """A final or evaluation score column of compare's table (``test/dice``, ``eval:test/dice``)."""
    return "/" in column and column.rsplit("/", 1)[-1] in DEFAULT_SCORES


def _label(group_by: list[str], values) -> str:
    values = values if isinstance(values, tuple) else (values,)
    return " ".join(f"{k}={v}" for k, v in zip(group_by, values, strict=True))
