"""K-fold cross-validation splits: dataset.split.folds and dataset.split.fold."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from omegaconf import OmegaConf

from helpers import REPO, compose_config
from segkit.app.evaluate import _dataset
from segkit.config.validate import validate
from segkit.core.errors import ConfigError, DataError
from segkit.data import load_index
from segkit.data.index import Sample
from segkit.data.splits import assemble_splits, assign_folds
from segkit.evaluation.model_source import ModelSource
from tiny_datasets import write_folder


def split(folds: int, fold: int, test: float = 0.2, seed: int = 0):
    return OmegaConf.create(
        {"val": 0.15, "test": test, "seed": seed, "files": None, "folds": folds, "fold": fold}
    )


def samples(ids) -> list[Sample]:
    return [Sample(id=str(i), image=f"{i}.png", mask=f"{i}_mask.png") for i in ids]


def ids(split_samples: list[Sample]) -> list[str]:
    return [s.id for s in split_samples]


@pytest.mark.parametrize("official_val", [False, True])
def test_every_pool_sample_validates_in_exactly_one_fold_and_the_test_split_never_moves(
    official_val,
):
    pool = samples(range(23))
    official = {"val": samples(range(100, 104))} if official_val else {}
    folds = [assemble_splits(pool, official, split(5, k), "train", [])[0] for k in range(5)]
    tests = {tuple(ids(f["test"])) for f in folds}
    assert len(tests) == 1 and len(next(iter(tests))) == round(0.2 * 23)
    test = set(next(iter(tests)))
    vals = [set(ids(f["val"])) for f in folds]
    fold_pool = {s.id for s in pool + official.get("val", [])} - test
    assert set().union(*vals) == fold_pool and sum(map(len, vals)) == len(fold_pool)
    assert max(map(len, vals)) - min(map(len, vals)) <= 1
    for f, val in zip(folds, vals, strict=True):
        assert set(ids(f["train"])) == fold_pool - val  # the other folds train
        assert not set(ids(f["train"])) & test
    _, origin = assemble_splits(pool, official, split(5, 2), "train", [])
    members = "train + official val" if official_val else "train"
    assert origin["val"] == f"fold 2 of 5 over {members} (seed 0)"


def test_an_official_test_split_is_kept_and_the_order_of_samples_does_not_matter():
    pool, official = samples(range(12)), {"test": samples(range(50, 53))}
    a, origin = assemble_splits(pool, official, split(3, 1), "train", [])
    b, _ = assemble_splits(pool[::-1], official, split(3, 1), "train", [])
    assert ids(a["test"]) == ["50", "51", "52"] and origin["test"] == "official"
    assert a == b
    other_seed, _ = assemble_splits(pool, official, split(3, 1, seed=1), "train", [])
    assert ids(other_seed["val"]) != ids(a["val"])


def test_folds_are_identical_across_processes():
    code = (
        "from omegaconf import OmegaConf\n"
        "from segkit.data.index import Sample\n"
        "from segkit.data.splits import assemble_splits\n"
        "pool = [Sample(id=f's{i}', image='x') for i in range(40)]\n"
        "cfg = OmegaConf.create({'val': 0.1, 'test': 0.1, 'seed': 7, 'files': None,"
        " 'folds': 4, 'fold': 3})\n"
        "print(','.join(s.id for s in assemble_splits(pool, {}, cfg, 'x', [])[0]['val']))\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            env={"PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)},
        ).stdout
        for seed in (1, 2)
    ]
    pool = [Sample(id=f"s{i}", image="x") for i in range(40)]
    cfg = split(4, 3, test=0.1, seed=7)
    here = ",".join(ids(assemble_splits(pool, {}, cfg, "x", [])[0]["val"]))
    assert runs[0] == runs[1] == here + "\n"


def test_more_folds_than_samples_is_one_line():
    with pytest.raises(DataError, match=r"folds=5: the train\+val pool has only 4 samples"):
        assemble_splits(samples(range(5)), {}, split(5, 0), "train", [])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["dataset.split.folds=1", "dataset.split.fold=0"], r"folds=1: expected >= 2"),
        (["dataset.split.folds=5", "dataset.split.fold=5"], r"fold=5: expected a fold in 0..4"),
        (["dataset.split.folds=5"], r"fold=None: expected a fold in 0..4.*fold=0,1,2,3,4"),
        (["dataset.split.fold=2"], r"fold=2 needs dataset.split.folds=K"),
        (
            ["dataset.split.folds=3", "dataset.split.fold=0", "dataset.split.files=/tmp/ids"],
            r"folds=3 with dataset.split.files=/tmp/ids",
        ),
    ],
)
def test_fold_settings_are_checked_at_composition(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_config(overrides))


def test_a_fold_run_trains_on_the_synthetic_dataset(tmp_path):
    from segkit.app.run import train  # the TensorFlow part, only for this test

    overrides = [
        "trainer=smoke",
        "tracking=none",
        "dataset.num_samples=12",
        "dataset.min_side=48",
        "dataset.max_side=64",
        "dataset.image_size=32",
        "model.base_filters=4",
        "model.depth=2",
        "dataset.split.folds=3",
        "dataset.split.fold=1",
        f"output_dir={tmp_path / 'out'}",
        f"cache_dir={tmp_path / 'cache'}",
    ]
    results = train(compose_config(overrides))
    assert 0.0 <= results["val/dice"] <= 1.0
    val = (tmp_path / "out" / "splits" / "val.txt").read_text().split()
    assert len(val) == 3  # 12 samples, 2 to test, 10 in 3 folds: 4, 3, 3


def test_evaluating_a_fold_run_uses_its_own_split_files(tmp_path):
    # segkit.evaluate of a run trained on a fold: the run's id lists fix the split, and the
    # folds they came from are dropped (validation refuses folds beside split.files).
    run = compose_config(["dataset.split.folds=3", "dataset.split.fold=1"])
    (tmp_path / "splits").mkdir()
    source = ModelSource(None, "run x", "x", OmegaConf.create({"dataset": run.dataset}))
    source.splits = tmp_path / "splits"
    cfg = OmegaConf.create({"dataset": None, "dataset_root": None})
    dataset = _dataset(cfg, source)
    assert dataset.split.files == str(tmp_path / "splits")
    assert dataset.split.folds is None and dataset.split.fold is None


def test_stratified_folds_share_out_small_and_large_foregrounds():
    rng = np.random.default_rng(0)
    fractions = np.sort(rng.uniform(0, 0.8, 41))[rng.permutation(41)]
    stratified = assign_folds(41, 5, seed=3, strata=fractions)
    plain = assign_folds(41, 5, seed=3)
    assert sorted(np.bincount(stratified)) == sorted(np.bincount(plain)) == [8, 8, 8, 8, 9]

    def spread(fold_of):  # how far the folds' mean fractions are apart
        means = [fractions[fold_of == k].mean() for k in range(5)]
        return max(means) - min(means)

    assert spread(stratified) < 0.05 < spread(plain)
    assert (assign_folds(41, 5, seed=3, strata=fractions) == stratified).all()


def test_a_binary_folder_dataset_is_stratified_and_a_cache_keeps_the_fractions(tmp_path):
    def mask_of(i):  # foreground from 0 to 19 rows of 24
        mask = np.zeros((24, 32), np.uint8)
        mask[: i % 20] = 255
        return mask

    root = write_folder(tmp_path / "data", n=30, mask_of=mask_of)
    base = [
        "dataset=folder",
        f"dataset.images={root / 'images'}",
        f"dataset.masks={root / 'masks'}",
        "dataset.split.folds=3",
    ]
    folds = []
    for k in range(3):
        cfg = compose_config([*base, f"dataset.split.fold={k}"])
        index, _ = load_index(cfg.dataset, tmp_path / "cache")
        assert index.origin["val"].endswith("stratified by foreground fraction")
        folds.append(index.splits["val"])
    vals = [{s.id for s in f} for f in folds]
    assert sum(map(len, vals)) == len(set().union(*vals))  # each sample validates once
    means = [np.mean([int(s.id[3:]) % 20 for s in f]) for f in folds]
    assert max(means) - min(means) < 2.5  # rows of foreground: like shares in every fold
    assert len(list((tmp_path / "cache" / "foreground").glob("*.json"))) == 1
    plain = compose_config([*base, "dataset.split.fold=0", "dataset.split.stratify=false"])
    index, _ = load_index(plain.dataset, tmp_path / "cache")
    assert "stratified" not in index.origin["val"]
