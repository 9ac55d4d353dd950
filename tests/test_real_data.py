"""Acceptance on samples of the real datasets in their original formats (``../shared/data``).

Skipped, with the reason, where that folder is absent (as on a user's machine). The fast tests
index, validate and decode each dataset; the slow ones train one epoch on each at 64 px.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import REPO, compose_config
from segkit.app.run import train
from segkit.data import build_index, load_index
from segkit.data.pipeline import make_dataset

DATA = REPO.parent / "shared" / "data"
# option, root under DATA, samples per split, channels, mask values after decoding.
CASES = {
    "isic": ("isic", "isic2018_256", {"train": 510, "val": 50, "test": 90}, 3, {0, 1}),
    "isic_fullres": ("isic", "isic2018_fullres", {"train": 8, "val": 2, "test": 2}, 3, {0, 1}),
    "dsb2018": ("dsb2018", "dsb2018", {"train": 56, "val": 12, "test": 12}, 3, {0, 1}),
    "voc": (
        "voc",
        "voc2012/VOCdevkit/VOC2012",
        {"train": 120, "val": 30, "test": 0},
        3,
        set(range(21)) | {255},
    ),
    "isbi": ("isbi", "isbi2012", {"train": 22, "val": 4, "test": 4}, 1, {0, 1}),
    "isbi_png": ("isbi", "isbi2012/png", {"train": 22, "val": 4, "test": 4}, 1, {0, 1}),
}


def case_config(case: str, tmp_path, *overrides: str):
    option, folder, *_ = CASES[case]
    root = DATA / folder
    if not root.is_dir():
        pytest.skip(f"real data sample {root} is absent (only on the project's machines)")
    return compose_config(
        [
            f"dataset={option}",
            f"dataset.root={root}",
            "dataset.image_size=64",
            f"cache_dir={tmp_path / 'cache'}",
            f"output_dir={tmp_path / 'run'}",
            *overrides,
        ]
    )


@pytest.mark.parametrize("case", list(CASES))
def test_real_sample_indexes_decodes_and_batches(case, tmp_path):
    _, _, counts, channels, values = CASES[case]
    cfg = case_config(case, tmp_path, "dataset.validate=quick")
    index, report = load_index(cfg.dataset, cfg.cache_dir)
    assert index.counts() == counts and report.samples == sum(counts.values())
    ds = make_dataset(
        index.splits["train"],
        cfg.dataset,
        batch_size=4,
        training=False,
        seed=0,
        labels=index.labels,
        limit_batches=1,
        cache_dir=cfg.cache_dir,
    )
    images, masks = next(iter(ds))
    assert images.shape == (4, 64, 64, channels) and masks.shape == (4, 64, 64, 1)
    assert float(np.min(images)) >= 0.0 and float(np.max(images)) <= 1.0
    found = set(np.unique(masks.numpy()).tolist())
    assert found <= values, found
    assert len(found - {255}) >= 2  # background and some foreground


def test_real_dsb_samples_keep_their_nucleus_masks(tmp_path):
    cfg = case_config("dsb2018", tmp_path)
    samples = build_index(cfg.dataset).samples()
    assert sum(len(s.instances) for s in samples) == 3587  # every nucleus of the 80 samples


@pytest.mark.slow
@pytest.mark.parametrize("case", ["isic", "dsb2018", "voc", "isbi"])
def test_one_epoch_on_each_real_sample_at_64px(case, tmp_path):
    cfg = case_config(
        case,
        tmp_path,
        "tracking=none",
        "trainer.epochs=1",
        "trainer.batch_size=8",
        "trainer.verbose=0",
        "model.base_filters=8",
        "augment=standard",
    )
    results = train(cfg)
    assert np.isfinite(results["val/loss"]) and 0.0 <= results["val/miou"] <= 1.0
